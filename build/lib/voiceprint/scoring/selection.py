"""Turn AS-norm on only where it measurably helps: held-out folds split by speaker.

AS-norm standardises a raw cosine against the top-N scores of a cohort of
impostor embeddings. With a small cohort those statistics are noisy and
dominated by a few speakers, and it can make decisions worse (an outside
test saw EER 4.7 % with AS-norm against 0.9 % for plain cosine on a
4-speaker cohort). So calibration activates it only when both hold:

1. **the cohort is large enough**: at least :data:`COHORT_MIN_SPEAKERS`
   speakers and :data:`COHORT_MIN_EMBEDDINGS` embeddings (= the top-N used
   for the statistics, 200: with fewer, "top 200" is the whole cohort and
   the adaptive part is lost; with fewer than 20 speakers a handful of
   voices make up the top-N, so the statistics describe them and not the
   impostor population);
2. **it wins on held-out speakers**: the speakers are split into
   ``n_folds`` folds (at least 2 speakers each). For each fold, thresholds
   are calibrated on the other folds (whose embeddings are also the AS-norm
   cohort, so a fold's speakers never sit in their own cohort) and applied
   to the fold. AS-norm *wins a fold* when its minDCF (p_target 0.01) on
   the fold is lower than raw cosine's AND its actual DCF at the min_dcf
   threshold carried over from the other folds is not higher (it separates
   better and its threshold transfers). It is activated when it wins
   more than half of the folds and its mean actual DCF over folds is lower.

The observed FAR on each fold at the transferred ``far_1pct`` threshold is
recorded too (reported, not part of the rule: with a few hundred impostor
trials per fold it is too noisy to rank on).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from voiceprint.scoring.calibration import (COHORT_TOP_N, MIN_DCF_P_TARGET, Trials, between_scores,
                                            score_trials, split_models_probes)
from voiceprint.scoring.metrics import (compute_eer, compute_min_dcf, detection_cost,
                                        rates_at_threshold, threshold_at_far)

__all__ = ["COHORT_MIN_SPEAKERS", "COHORT_MIN_EMBEDDINGS", "RULE", "cohort_large_enough",
           "choose_normalization"]

COHORT_MIN_SPEAKERS = 20
COHORT_MIN_EMBEDDINGS = COHORT_TOP_N
RULE = (f"AS-norm is active only with a cohort of >= {COHORT_MIN_SPEAKERS} speakers and "
        f">= {COHORT_MIN_EMBEDDINGS} embeddings, and when it beats raw cosine on more than half "
        "of the held-out speaker folds (lower minDCF(0.01) and no higher actual DCF at the "
        "transferred min_dcf threshold) with a lower mean actual DCF")


def cohort_large_enough(n_speakers: int, n_embeddings: int) -> bool:
    return n_speakers >= COHORT_MIN_SPEAKERS and n_embeddings >= COHORT_MIN_EMBEDDINGS


def _folds(names: list[str], n_folds: int, seed: int) -> list[list[str]]:
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    k = min(n_folds, len(names) // 2)
    return [sorted(order[i::k]) for i in range(k)] if k >= 2 else []


def _trials(embs: dict[str, np.ndarray], enroll_clips: int, cohort: dict[str, np.ndarray] | None,
            exclude_own: bool, top_n: int) -> Trials:
    names, models, probes, owner = split_models_probes(embs, enroll_clips)
    if cohort is None:
        return score_trials(models, probes, owner)
    rows = sorted(cohort)
    stacked = np.concatenate([cohort[n] for n in rows])
    index = {n: i for i, n in enumerate(names)}
    c_owner = np.concatenate([[index.get(n, -1)] * len(cohort[n]) for n in rows]) if exclude_own else None
    return score_trials(models, probes, owner, stacked, c_owner, top_n)


def _fold_scores(train: dict[str, np.ndarray], test: dict[str, np.ndarray], enroll_clips: int,
                 norm: str, top_n: int) -> dict[str, float]:
    cohort = train if norm == "asnorm" else None
    s_tr, y_tr = _trials(train, enroll_clips, cohort, True, top_n).flat()
    s_te, y_te = _trials(test, enroll_clips, cohort, False, top_n).flat()
    dcf_thr = between_scores(s_tr, compute_min_dcf(s_tr, y_tr, MIN_DCF_P_TARGET)[1])
    far_thr = between_scores(s_tr, threshold_at_far(s_tr, y_tr, 0.01))
    return {"min_dcf": compute_min_dcf(s_te, y_te, MIN_DCF_P_TARGET)[0],
            "actual_dcf": detection_cost(s_te, y_te, dcf_thr, MIN_DCF_P_TARGET),
            "eer": compute_eer(s_te, y_te)[0],
            "far_at_far_1pct": rates_at_threshold(s_te, y_te, far_thr)[0],
            "impostor_trials": int((y_te == 0).sum())}


def choose_normalization(embeddings: dict[str, np.ndarray], enroll_clips: int,
                         top_n: int = COHORT_TOP_N, n_folds: int = 4, seed: int = 0) -> dict[str, Any]:
    """Which normalisation calibration activates, and the evidence (JSON-ready).

    ``embeddings``: speaker -> (clips, d) L2-normalised; the whole set is the
    cohort the service would keep. Returns ``{"active", "reason", "rule",
    "cohort": {...}, "folds": [...], "asnorm_wins": int}``.
    """
    names = sorted(n for n, e in embeddings.items() if len(e) > enroll_clips)
    n_emb = int(sum(len(embeddings[n]) for n in embeddings))
    big = cohort_large_enough(len(embeddings), n_emb)
    out: dict[str, Any] = {"rule": RULE, "cohort": {"speakers": len(embeddings), "embeddings": n_emb,
                                                   "large_enough": big},
                           "folds": [], "asnorm_wins": 0}
    folds = _folds(names, n_folds, seed)
    for fold in folds:
        test = {n: embeddings[n] for n in fold}
        train = {n: embeddings[n] for n in names if n not in test}
        rec: dict[str, Any] = {"speakers": len(fold)}
        for norm in ("none", "asnorm"):
            rec[norm] = _fold_scores(train, test, enroll_clips, norm, top_n)
        rec["asnorm_wins"] = bool(rec["asnorm"]["min_dcf"] < rec["none"]["min_dcf"]
                                  and rec["asnorm"]["actual_dcf"] <= rec["none"]["actual_dcf"])
        out["folds"].append(rec)
    wins = sum(f["asnorm_wins"] for f in out["folds"])
    out["asnorm_wins"] = wins
    if out["folds"]:
        mean_act = {n: float(np.mean([f[n]["actual_dcf"] for f in out["folds"]])) for n in ("none", "asnorm")}
        out["mean_actual_dcf"] = mean_act
        better = wins * 2 > len(out["folds"]) and mean_act["asnorm"] < mean_act["none"]
    else:
        better = False
    if not big:
        out["active"] = "none"
        out["reason"] = (f"cohort too small for AS-norm ({len(embeddings)} speakers, {n_emb} "
                         f"embeddings; needs >= {COHORT_MIN_SPEAKERS} and >= {COHORT_MIN_EMBEDDINGS})")
    elif not folds:
        out["active"] = "none"
        out["reason"] = "too few speakers for held-out folds"
    elif better:
        out["active"] = "asnorm"
        out["reason"] = f"AS-norm won {wins} of {len(folds)} held-out folds"
    else:
        out["active"] = "none"
        out["reason"] = (f"AS-norm won {wins} of {len(folds)} held-out folds; raw cosine kept")
    return out
