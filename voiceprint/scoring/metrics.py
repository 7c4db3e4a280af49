"""Speaker-verification and nearest-neighbour metrics (pure numpy).

Conventions, used by every function here:

* ``scores``: 1-D floats, higher means "more likely the same speaker"
  (e.g. cosine similarity in [-1, 1]);
* ``labels``: 1-D, 1 (or True) for a target/genuine trial, 0 for a
  non-target/impostor trial;
* a trial is **accepted iff score >= threshold**.

Operating points are evaluated only at the distinct observed scores plus one
"reject everything" threshold just above the maximum score, so trials with
tied scores are always accepted or rejected together (no arbitrary tie
breaking by sort order). The error rates are fractions in [0, 1], not
percentages.

The detection cost follows NIST SRE (and wespeaker's ``score_metrics.py``)::

    DCF(t)  = c_miss * P_miss(t) * p_target + c_fa * P_fa(t) * (1 - p_target)
    minDCF  = min_t DCF(t) / min(c_miss * p_target, c_fa * (1 - p_target))

so a system that always accepts or always rejects has a normalised cost of
at most 1.
"""
from __future__ import annotations

import numpy as np

__all__ = ["det_curve", "compute_eer", "compute_min_dcf", "detection_cost", "threshold_at_far",
           "rates_at_threshold", "recall_at_k"]


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length ({s.size} vs {y.size})")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or Inf")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (non-target) or 1 (target)")
    y = y.astype(bool)
    if not y.any() or y.all():
        raise ValueError("need at least one target (1) and one non-target (0) trial")
    return s, y


def det_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-accept and false-reject rates at every distinct threshold.

    Returns ``(fpr, fnr, thresholds)``, three 1-D arrays of equal length with
    ``thresholds`` strictly increasing: the distinct scores, then one value
    just above the largest score (``np.nextafter(max, inf)``) at which
    everything is rejected. ``fpr`` (false accept rate, non-targets with
    score >= t) falls from 1 to 0 and ``fnr`` (false reject rate, targets
    with score < t) rises from 0 to 1.
    """
    s, y = _check(scores, labels)
    order = np.argsort(s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    n_target = int(y.sum())
    n_nontarget = y.size - n_target
    # index of the first trial of each run of equal scores
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    # number of targets / non-targets strictly below each distinct score
    targets_below = np.r_[0, np.cumsum(y_sorted)][starts]
    nontargets_below = starts - targets_below
    thresholds = np.r_[s_sorted[starts], np.nextafter(s_sorted[-1], np.inf)]
    fnr = np.r_[targets_below, n_target] / n_target
    fpr = np.r_[n_nontarget - nontargets_below, 0] / n_nontarget
    return fpr.astype(np.float64), fnr.astype(np.float64), thresholds


def compute_eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold.

    The DET curve is taken as the polyline through the operating points of
    :func:`det_curve`; the EER is where that polyline crosses
    ``fpr == fnr`` (the same value as intersecting sklearn's ROC polyline
    with ``tpr = 1 - fpr``). The threshold returned is that of the operating
    point nearer the crossing (on an exact half-way crossing, the lower
    threshold). Returns ``(eer, threshold)``, ``eer`` in [0, 1].
    """
    fpr, fnr, thr = det_curve(scores, labels)
    i = int(np.argmax(fnr >= fpr))  # fnr[-1] = 1 > fpr[-1] = 0, so a crossing exists
    if fnr[i] == fpr[i] or i == 0:
        return float(fnr[i]), float(thr[i])
    gap_before = fpr[i - 1] - fnr[i - 1]  # > 0
    gap_after = fnr[i] - fpr[i]  # > 0
    t = gap_before / (gap_before + gap_after)
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    return float(eer), float(thr[i - 1] if t <= 0.5 else thr[i])


def compute_min_dcf(scores: np.ndarray, labels: np.ndarray, p_target: float = 0.01,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> tuple[float, float]:
    """Normalised minimum detection cost and the threshold reaching it.

    Minimum over the operating points of :func:`det_curve`; on ties the
    lowest such threshold. Returns ``(min_dcf, threshold)``.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError("p_target must be within (0, 1)")
    fpr, fnr, thr = det_curve(scores, labels)
    dcf = c_miss * fnr * p_target + c_fa * fpr * (1.0 - p_target)
    i = int(np.argmin(dcf))
    c_def = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(dcf[i] / c_def), float(thr[i])


def detection_cost(scores: np.ndarray, labels: np.ndarray, threshold: float,
                   p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised detection cost at a fixed ``threshold`` (the "actual" DCF).

    Same normalisation as :func:`compute_min_dcf`; the gap between the two
    measures how well a threshold chosen elsewhere transfers to these trials.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError("p_target must be within (0, 1)")
    far, frr = rates_at_threshold(scores, labels, threshold)
    c_def = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float((c_miss * frr * p_target + c_fa * far * (1.0 - p_target)) / c_def)


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Smallest threshold whose false accept rate is <= ``far``.

    Candidates are the distinct observed scores and the "reject all"
    threshold just above the largest score, so the result is always an
    observed score or that value. Non-targets tied at the chosen score
    count as accepted (accept iff score >= threshold): if letting a tied
    group in would exceed ``far``, the threshold moves above the whole group.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError("far must be within [0, 1]")
    fpr, _, thr = det_curve(scores, labels)
    return float(thr[int(np.argmax(fpr <= far))])  # fpr[-1] == 0, so one always fits


def rates_at_threshold(scores: np.ndarray, labels: np.ndarray,
                       threshold: float) -> tuple[float, float]:
    """``(far, frr)`` when accepting iff score >= ``threshold``."""
    s, y = _check(scores, labels)
    accept = s >= threshold
    far = float(np.mean(accept[~y]))
    frr = float(np.mean(~accept[y]))
    return far, frr


def recall_at_k(found_ids: np.ndarray, true_ids: np.ndarray, k: int) -> float:
    """ANN-benchmark recall: mean over queries of ``|found[:k] ∩ true[:k]| / k``.

    ``found_ids`` has shape (n, k') and ``true_ids`` (n, k'') with
    k'' >= k. Missing results (k' < k, or negative padding ids where a
    search returned fewer hits) count as misses. Ids are non-negative
    integers; a found id repeated in a row is counted once.
    """
    found = np.atleast_2d(np.asarray(found_ids))
    true = np.atleast_2d(np.asarray(true_ids))
    if k < 1:
        raise ValueError("k must be >= 1")
    if found.shape[0] != true.shape[0]:
        raise ValueError(f"found_ids has {found.shape[0]} rows, true_ids {true.shape[0]}")
    if true.shape[1] < k:
        raise ValueError(f"true_ids has {true.shape[1]} columns, need k={k}")
    if found.shape[0] == 0:
        raise ValueError("no queries")
    f = found[:, :k].astype(np.int64)
    t = true[:, :k].astype(np.int64)
    f = np.where(f < 0, -1, f)
    hit = (t[:, :, None] == f[:, None, :]).any(axis=2) & (t >= 0)
    return float(hit.sum(axis=1).mean() / k)
