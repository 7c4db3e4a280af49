"""Open-set identification on held-out speakers: observed vs predicted false identifications.

Used by ``python -m eval.calibration``. The held-out speakers are split in
two: *enrolled* (their first ``enroll_clips`` clips make a voiceprint in the
gallery) and *never enrolled* (unknown callers: each of their probes is one
chance of a false identification); then the roles are swapped and both
runs pooled.

Galleries up to the number of real enrolled speakers are real (random
subsets, several draws). Larger ones (N = 100, 1000) need speakers this
project does not have, so they are filled in two ways that bracket reality:

* ``embedding``: synthetic speaker models, a smoothed bootstrap of the real
  models of every speaker who is not an unknown caller,
  ``m = mu + (x - mu + h * L @ eps) / sqrt(1 + h**2)`` (``L @ L.T`` = their
  covariance), L2-normalised, with ``h > 0`` chosen on the *calibration*
  speakers so that probe-vs-synthetic scores match probe-vs-real impostor
  scores in the upper tail. Such models are perturbed copies of ~50 real
  voices, closer to them than a new real speaker would be (reported), so the
  best score over many of them grows more slowly than over new people:
  **optimistic**;
* ``score``: the extra comparisons' scores drawn independently from the
  held-out impostor scores (real probes against real models of other
  held-out speakers). Independent draws ignore that a caller who resembles
  one voice tends to resemble many: **pessimistic** where callers differ.

For every N and target rate: the threshold from
``voiceprint.scoring.open_set.open_set_point`` (caller-offset and
independent models, fitted on the calibration half), the observed rate of
unknown callers' probes whose best score reaches it, with an exact 95 %
interval on the effective count (clustered by caller speaker), and, for
contrast, the observed rate at the calibrated fixed ``far_1pct`` threshold.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from voiceprint.scoring.calibration import score_trials
from voiceprint.scoring.cosine import centroid, cosine_matrix, l2_normalize
from voiceprint.scoring.intervals import clustered_clopper_pearson
from voiceprint.scoring.open_set import open_set_point

BANDWIDTHS = (0.1, 0.25, 0.5, 0.75, 1.0)
TAIL_QUANTILES = (0.9, 0.99, 0.999)
NN_QUANTILES = (0.1, 0.5, 0.9)
DRAWS = {10: 20, 100: 10, 1000: 5}


def smoothed_bootstrap(pool: np.ndarray, n: int, h: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` synthetic L2-normalised speaker models around the real models ``pool`` (k, d)."""
    mu = pool.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(pool.T))
    root = v * np.sqrt(np.clip(w, 0.0, None))
    x = pool[rng.integers(len(pool), size=n)]
    noise = rng.standard_normal((n, pool.shape[1])) @ root.T
    return l2_normalize(mu + (x - mu + h * noise) / np.sqrt(1.0 + h * h))


def _models_probes(embs: dict[str, np.ndarray], enroll: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(models, probes, probe owner index) for speakers in sorted order."""
    names = sorted(embs)
    return (np.stack([centroid(embs[n][:enroll]) for n in names]),
            np.concatenate([embs[n][enroll:] for n in names]),
            np.concatenate([[i] * (len(embs[n]) - enroll) for i, n in enumerate(names)]))


def choose_bandwidth(cal: dict[str, np.ndarray], enroll: int, rng: np.random.Generator
                     ) -> tuple[float, dict[str, Any]]:
    """Bandwidth whose synthetic models best match real impostor scores' upper tail.

    Calibration speakers are split in halves A and B; synthetic models made
    from A's models are scored against B's probes and compared with A's real
    models (quantiles 0.9, 0.99, 0.999). Also reported: how close synthetic
    and real B models come to their nearest A model.
    """
    names = sorted(cal)
    a, b = {n: cal[n] for n in names[0::2]}, {n: cal[n] for n in names[1::2]}
    models_a, _, _ = _models_probes(a, enroll)
    models_b, probes_b, _ = _models_probes(b, enroll)
    real_tail = np.quantile(cosine_matrix(probes_b, models_a), TAIL_QUANTILES)
    real_nn = np.quantile(cosine_matrix(models_b, models_a).max(axis=1), NN_QUANTILES)
    fit, cost = {}, {}
    for h in BANDWIDTHS:
        synth = smoothed_bootstrap(models_a, 2000, h, rng)
        tail = np.quantile(cosine_matrix(probes_b, synth), TAIL_QUANTILES)
        nn = np.quantile(cosine_matrix(synth, models_a).max(axis=1), NN_QUANTILES)
        fit[str(h)] = {"tail": tail.tolist(), "nearest": nn.tolist()}
        cost[h] = float(np.sum((tail - real_tail) ** 2))
    best = min(cost, key=cost.__getitem__)
    return best, {"quantiles": list(TAIL_QUANTILES), "nearest_quantiles": list(NN_QUANTILES),
                  "real": {"tail": real_tail.tolist(), "nearest": real_nn.tolist()},
                  "synthetic": fit, "bandwidth": best}


def _scores(models: np.ndarray, probes: np.ndarray, norm: str, cohort: np.ndarray) -> np.ndarray:
    owner = np.full(len(probes), -1)
    return score_trials(models, probes, owner, *((cohort, None) if norm == "asnorm" else ())).scores


def _max_of_draws(pool_sorted: np.ndarray, m: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The maximum of ``m`` independent draws from an empirical sample, ``size`` times."""
    u = rng.random(size) ** (1.0 / m)
    idx = np.minimum((u * len(pool_sorted)).astype(int), len(pool_sorted) - 1)
    return pool_sorted[idx]


def _runs(test: dict[str, np.ndarray], cal_models: np.ndarray, enroll: int, n: int, kind: str,
          h: float, norm: str, cohort: np.ndarray, rng: np.random.Generator
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per gallery draw and role swap: (best score of each unknown probe, its caller id)."""
    names = sorted(test)
    out = []
    for swap in (0, 1):
        enrolled, unknown = names[swap::2], names[1 - swap::2]
        e_models, _, _ = _models_probes({x: test[x] for x in enrolled}, enroll)
        _, u_probes, u_owner = _models_probes({x: test[x] for x in unknown}, enroll)
        caller = np.array([names.index(unknown[i]) for i in u_owner])
        real_scores = _scores(e_models, u_probes, norm, cohort)  # (U, E)
        if kind == "score":
            all_m, all_p, all_o = _models_probes(test, enroll)
            s = _scores(all_m, all_p, norm, cohort)
            pool = np.sort(s[all_o[:, None] != np.arange(len(all_m))[None, :]])
        for _ in range(DRAWS.get(n, 5)):
            if kind == "real":
                pick = rng.choice(len(enrolled), n, replace=False)
                best = real_scores[:, pick].max(axis=1)
            elif kind == "embedding":
                synth = smoothed_bootstrap(np.concatenate([cal_models, e_models]),
                                           n - len(enrolled), h, rng)
                best = np.maximum(real_scores.max(axis=1), _scores(synth, u_probes, norm, cohort).max(axis=1))
            else:
                best = np.maximum(real_scores.max(axis=1),
                                  _max_of_draws(pool, n - len(enrolled), len(u_probes), rng))
            out.append((best, caller))
    return out


def _observed(runs: list[tuple[np.ndarray, np.ndarray]], threshold: float) -> dict[str, Any]:
    hit = np.concatenate([best >= threshold for best, _ in runs]).astype(float)
    caller = np.concatenate([c for _, c in runs])
    _, idx = np.unique(caller, return_inverse=True)
    lo, hi, n_eff = clustered_clopper_pearson(np.bincount(idx, weights=hit), np.bincount(idx))
    return {"observed_rate": float(hit.mean()), "observed_ci_95": [lo, hi],
            "unknown_trials": int(hit.size), "effective_trials": round(n_eff, 1)}


def evaluate_open_set(calibration: dict[str, Any], cal: dict[str, np.ndarray],
                      test: dict[str, np.ndarray], enroll: int, norm: str, cohort: np.ndarray,
                      ns: tuple[int, ...] = (10, 100, 1000), targets: tuple[float, ...] = (0.01, 0.05),
                      seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    h, fit = choose_bandwidth(cal, enroll, rng)
    cal_models, _, _ = _models_probes(cal, enroll)
    per_norm = calibration[norm]
    fixed = per_norm["points"]["far_1pct"]["threshold"]
    n_real = len(test) // 2
    out: dict[str, Any] = {"normalization": norm, "held_out_speakers": len(test),
                           "real_gallery_max": n_real, "synthetic_gallery": fit, "rows": []}
    for n in ns:
        kinds = ["real"] if n <= n_real else ["embedding", "score"]
        for kind in kinds:
            runs = _runs(test, cal_models, enroll, n, kind, h, norm, cohort, rng)
            for target in targets:
                for model in ("caller", "independent"):
                    point = open_set_point(per_norm, n, target, normalization=norm, model=model)
                    out["rows"].append({
                        "n_enrolled": n, "gallery": kind, "target_rate": target, "model": model,
                        "threshold": point.threshold,
                        "predicted_rate": point.open_set["predicted_rate"],
                        "per_comparison_far": point.expected_far, "resolvable": point.resolvable,
                        **_observed(runs, point.threshold)})
            out["rows"].append({"n_enrolled": n, "gallery": kind, "target_rate": None,
                                "model": "fixed far_1pct", "threshold": fixed,
                                **_observed(runs, fixed)})
    return out
