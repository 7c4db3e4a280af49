"""Calibration maths: trials from per-speaker embeddings, operating points with their trust.

From a labelled set of speakers: the first ``enroll_clips`` clips of each
speaker form its model (the service's mean voiceprint), every other clip is
a probe scored against every model. A probe against its own speaker's model
is a genuine trial, against any other model an impostor trial, so ``S``
speakers with ``P`` probes each give ``S * P`` genuine and ``S * (S-1) * P``
impostor trials.

Every operating point carries the trial counts it was measured on, its
false-accept / false-reject rates and their exact 95 % intervals, and
whether the impostor trials can resolve the rate asked for (rule of three,
see :mod:`voiceprint.scoring.intervals`). A point that cannot be resolved
gets the more conservative (higher) of the measured threshold and the one
extrapolated from the impostor tail (:mod:`voiceprint.scoring.tail`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from voiceprint.errors import VoiceprintError
from voiceprint.scoring.cosine import centroid, cosine_matrix
from voiceprint.scoring.intervals import (RULE_OF_THREE, clopper_pearson, clustered_clopper_pearson,
                                          min_trials)
from voiceprint.scoring.metrics import compute_eer, compute_min_dcf, threshold_at_far
from voiceprint.scoring.normalization import as_norm, as_norm_trials_excluding_pairs, top_n_stats
from voiceprint.scoring.points import DEFAULT_TARGET_FARS, far_point_name, parse_far_name
from voiceprint.scoring.samples import ScoreSample
from voiceprint.scoring.tail import ImpostorModel

__all__ = ["COHORT_TOP_N", "Trials", "TrialClusters", "split_models_probes", "score_trials", "between_scores",
           "describe_point", "calibrate_scores", "point_from_results", "MIN_DCF_P_TARGET"]

#: AS-norm statistics use each side's top-N cohort scores
COHORT_TOP_N = 200
MIN_DCF_P_TARGET = 0.01


@dataclass
class Trials:
    """Scores of every probe against every speaker model (cosine or AS-norm)."""

    scores: np.ndarray  # (n_probes, n_models)
    labels: np.ndarray  # (n_probes, n_models) 1 = same speaker

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scores.ravel(), self.labels.ravel()


def split_models_probes(embeddings: dict[str, np.ndarray], enroll_clips: int
                        ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Speaker models (centroid of the first ``enroll_clips`` rows) and probes (the rest).

    Returns (speakers, models (S, d), probes (P, d), probe_speaker_index (P,)).
    Speakers with fewer than ``enroll_clips + 1`` clips are skipped.
    """
    if enroll_clips < 1:
        raise VoiceprintError("enroll_clips must be >= 1", reason="bad_calibration_data")
    names, models, probes, owner = [], [], [], []
    for name in sorted(embeddings):
        e = embeddings[name]
        if len(e) <= enroll_clips:
            continue
        names.append(name)
        models.append(centroid(e[:enroll_clips]))
        probes.append(e[enroll_clips:])
        owner += [len(names) - 1] * (len(e) - enroll_clips)
    if len(names) < 2:
        raise VoiceprintError("calibration needs at least 2 speakers with more than "
                              f"{enroll_clips} clips each", reason="too_few_speakers")
    return names, np.stack(models), np.concatenate(probes), np.array(owner)


def score_trials(models: np.ndarray, probes: np.ndarray, owner: np.ndarray,
                 cohort: np.ndarray | None = None, cohort_owner: np.ndarray | None = None,
                 top_n: int = COHORT_TOP_N) -> Trials:
    """Raw cosine trials, or AS-norm trials when ``cohort`` is given.

    ``cohort_owner`` (speaker index per cohort row, ``-1`` for speakers that
    are neither probes' nor models' speakers) says the cohort holds the trial
    speakers: then every trial's statistics leave out both of its speakers
    (:func:`~voiceprint.scoring.normalization.as_norm_trials_excluding_pairs`).
    Without it the cohort must be disjoint from the trial speakers.
    """
    raw = cosine_matrix(probes, models)
    labels = (owner[:, None] == np.arange(len(models))[None, :]).astype(np.int8)
    if cohort is None:
        return Trials(raw, labels)
    if cohort_owner is not None:
        return Trials(as_norm_trials_excluding_pairs(raw, models, probes, owner, cohort,
                                                     np.asarray(cohort_owner), top_n), labels)
    m_mean, m_std = top_n_stats(models, cohort, top_n)
    p_mean, p_std = top_n_stats(probes, cohort, top_n)
    return Trials(as_norm(raw, m_mean[None, :], m_std[None, :], p_mean[:, None], p_std[:, None]),
                  labels)


def between_scores(scores: np.ndarray, threshold: float) -> float:
    """Move a threshold that sits on an observed score half-way down to the next lower one.

    The metric functions return observed scores; on new data a threshold
    exactly at the lowest accepted sample rejects about half of its
    neighbours. The move changes no decision on the calibration data.
    """
    lower = scores[scores < threshold]
    return float(threshold if lower.size == 0 else (threshold + lower.max()) / 2)


@dataclass(frozen=True)
class TrialClusters:
    """Which trials move together: impostor trials by speaker pair, genuine ones by speaker."""

    impostor_scores: np.ndarray
    impostor_cluster: np.ndarray
    genuine_scores: np.ndarray
    genuine_cluster: np.ndarray

    @classmethod
    def of(cls, trials: "Trials") -> "TrialClusters":
        s, y = trials.scores, trials.labels.astype(bool)
        n_models = s.shape[1]
        owner = np.broadcast_to(y.argmax(axis=1)[:, None], s.shape)
        model = np.broadcast_to(np.arange(n_models)[None, :], s.shape)
        pair = np.minimum(owner, model) * n_models + np.maximum(owner, model)
        return cls(s[~y].astype(np.float64), pair[~y], s[y].astype(np.float64), owner[y])

    def interval(self, threshold: float, kind: str) -> tuple[float, float, float]:
        """(low, high, effective trials) of the FAR (``kind="impostor"``) or FRR at ``threshold``."""
        if kind == "impostor":
            errors, cluster = self.impostor_scores >= threshold, self.impostor_cluster
        else:
            errors, cluster = self.genuine_scores < threshold, self.genuine_cluster
        _, idx = np.unique(cluster, return_inverse=True)
        return clustered_clopper_pearson(np.bincount(idx, weights=errors.astype(float)),
                                         np.bincount(idx))


def describe_point(threshold: float, genuine: ScoreSample, impostor: ImpostorModel,
                   target_far: float | None = None, clusters: TrialClusters | None = None,
                   design_effects: dict[str, float] | None = None,
                   resolvable: bool | None = None) -> dict[str, Any]:
    """Everything a decision needs to say about ``threshold`` (JSON-ready).

    ``far``/``frr`` are the measured fractions; ``expected_far`` equals
    ``far`` inside the measured range of the impostor scores and the
    extrapolated tail rate beyond it (never 0). ``far_ci_95``/``frr_ci_95``
    are exact 95 % intervals on the effective trial counts (speaker-pair /
    speaker clusters measured from ``clusters``, or the stored
    ``design_effects``); ``*_ci_95_iid`` count every trial as independent
    (narrower). ``resolvable`` (for a ``target_far``: effective impostor
    trials >= 3 / target; else >= 3 effective false accepts) can be imposed
    by the caller, e.g. when a threshold was moved because its target was
    not resolvable.
    """
    n_imp, n_gen = impostor.trials.n, genuine.n
    fa = int(round(impostor.trials.count_at_or_above(threshold)))
    fr = int(round(genuine.count_below(threshold)))
    far, frr = fa / n_imp, fr / n_gen
    tail_far = float(impostor.far.rate(threshold)[0])
    d = design_effects or {}
    deff_imp = max(impostor.design_effect, float(d.get("impostor", 1.0)))
    deff_gen = float(d.get("genuine", 1.0))
    # a design effect measured at this threshold only where >= 3 effective errors were seen;
    # elsewhere the calibration's largest one (a few errors say nothing about clustering)
    if clusters is not None and fa >= RULE_OF_THREE * deff_imp:
        far_lo, far_hi, n_imp_eff = clusters.interval(threshold, "impostor")
    else:
        far_lo, far_hi, n_imp_eff = clustered_clopper_pearson([fa], [n_imp], deff=deff_imp)
    if clusters is not None and fr >= RULE_OF_THREE:
        frr_lo, frr_hi, n_gen_eff = clusters.interval(threshold, "genuine")
    else:
        frr_lo, frr_hi, n_gen_eff = clustered_clopper_pearson([fr], [n_gen], deff=deff_gen)
    n_eff = n_imp_eff
    if resolvable is None:
        resolvable = (n_eff >= min_trials(target_far) if target_far is not None
                      else far * n_eff >= RULE_OF_THREE)
    extrapolated = impostor.far.extrapolated(threshold)
    return {
        "threshold": float(threshold), "far": far, "frr": frr,
        "expected_far": tail_far if extrapolated or fa == 0 else far, "expected_frr": frr,
        "far_ci_95": [float(far_lo), float(far_hi)], "frr_ci_95": [float(frr_lo), float(frr_hi)],
        "far_ci_95_iid": list(clopper_pearson(fa, n_imp)),
        "frr_ci_95_iid": list(clopper_pearson(fr, n_gen)),
        "trials": {"genuine": n_gen, "impostor": n_imp, "false_accepts": fa, "false_rejects": fr,
                   "impostor_effective": round(float(n_imp_eff), 1),
                   "genuine_effective": round(float(n_gen_eff), 1)},
        "resolvable": bool(resolvable), "target_far": target_far,
        "extrapolated": bool(extrapolated),
    }


def calibrate_scores(trials: Trials, fars: Iterable[float] = DEFAULT_TARGET_FARS) -> dict[str, Any]:
    """Operating points (eer, min_dcf, far_<x>pct) and the stored score samples for one scale.

    Two passes: the design effect (how strongly impostor trials cluster by
    speaker pair) is measured at the measured thresholds first; it then sets
    how far the impostor tail counts as measured, which points are
    resolvable, and where the unresolvable far points' thresholds go (the
    higher of the measured and the extrapolated one).
    """
    scores, labels = trials.flat()
    scores = scores.astype(np.float64)
    genuine = ScoreSample.of(scores[labels == 1])
    impostor = ImpostorModel.fit(trials.scores, trials.labels)
    clusters = TrialClusters.of(trials)
    eer, eer_thr = compute_eer(scores, labels)
    min_dcf, dcf_thr = compute_min_dcf(scores, labels, p_target=MIN_DCF_P_TARGET)
    fars = sorted(set(fars), reverse=True)
    measured = {"eer": between_scores(scores, eer_thr), "min_dcf": between_scores(scores, dcf_thr)}
    measured.update({far_point_name(f): between_scores(scores, threshold_at_far(scores, labels, f))
                     for f in fars})
    first = {n: describe_point(t, genuine, impostor, None, clusters) for n, t in measured.items()}
    deff = {"impostor": max(p["trials"]["impostor"] / max(p["trials"]["impostor_effective"], 1e-9)
                            for p in first.values()),
            "genuine": max(p["trials"]["genuine"] / max(p["trials"]["genuine_effective"], 1e-9)
                           for p in first.values())}
    impostor = impostor.with_design_effect(deff["impostor"])
    points = {n: describe_point(measured[n], genuine, impostor, None, clusters)
              for n in ("eer", "min_dcf")}
    for far in fars:
        name = far_point_name(far)
        p = describe_point(measured[name], genuine, impostor, far, clusters)
        if not p["resolvable"]:
            p = describe_point(max(measured[name], impostor.far.threshold(far)), genuine, impostor,
                               far, clusters, resolvable=False)
        points[name] = p
    return {"eer": float(eer), "min_dcf": float(min_dcf), "points": points,
            "n_genuine": genuine.n, "n_impostor": impostor.trials.n,
            "genuine_mean": float(scores[labels == 1].mean()),
            "impostor_mean": float(scores[labels == 0].mean()),
            "design_effect": {k: round(v, 3) for k, v in deff.items()},
            "samples": {"genuine": genuine.to_json(), "impostor": impostor.to_json()}}


def point_from_results(per_norm: dict[str, Any], name: str) -> dict[str, Any] | None:
    """Point ``name`` of one normalisation's results: stored, or derived for far_<x>pct.

    Returns None when it cannot be had (a calibration stored before score
    samples were kept, asked for a point it did not measure).
    """
    stored = per_norm.get("points", {}).get(name)
    if stored is not None and "trials" in stored:
        return stored
    samples = per_norm.get("samples")
    if samples is None:
        return _legacy_point(name, stored, per_norm) if stored is not None else None
    genuine = ScoreSample.from_json(samples["genuine"])
    impostor = ImpostorModel.from_json(samples["impostor"])
    far = parse_far_name(name)
    if far is None:
        return None
    deffs = per_norm.get("design_effect")
    measured = impostor.far.measured_threshold(far)
    p = describe_point(measured, genuine, impostor, target_far=far, design_effects=deffs)
    if p["resolvable"]:
        return p
    return describe_point(max(measured, impostor.far.threshold(far)), genuine, impostor,
                          target_far=far, design_effects=deffs, resolvable=False)


def _legacy_point(name: str, point: dict[str, Any], per_norm: dict[str, Any]) -> dict[str, Any]:
    """A point stored before counts were (threshold, far, frr only): add counts and bounds.

    With no false accept observed the estimate is the median-unbiased
    ``1 - 0.5 ** (1 / n)`` (about 0.69 / n), not 0.
    """
    n_imp, n_gen = int(per_norm.get("n_impostor", 0)), int(per_norm.get("n_genuine", 0))
    fa, fr = int(round(point["far"] * n_imp)), int(round(point["frr"] * n_gen))
    far_ci, frr_ci = clopper_pearson(fa, n_imp), clopper_pearson(fr, n_gen)
    target = parse_far_name(name)
    return {**point, "expected_far": point["far"] if fa else 1.0 - 0.5 ** (1.0 / max(n_imp, 1)),
            "expected_frr": point["frr"], "far_ci_95": list(far_ci), "frr_ci_95": list(frr_ci),
            "trials": {"genuine": n_gen, "impostor": n_imp, "false_accepts": fa, "false_rejects": fr},
            "resolvable": (n_imp >= min_trials(target)) if target else fa >= 3,
            "target_far": target, "extrapolated": False}
