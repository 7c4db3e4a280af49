"""Speaker verification scores of a CN-Celeb trial list: EER and minDCF, cosine and AS-norm.

Scoring comes from :mod:`voiceprint.scoring` (cosine of L2-normalised rows,
the centroid voiceprint, AS-norm), so the eval judges exactly as the service.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from eval.cnceleb_corpus import Corpus, EmbeddingCache
from voiceprint.scoring.cosine import centroid, cosine_matrix
from voiceprint.scoring.metrics import compute_eer, compute_min_dcf
from voiceprint.scoring.normalization import as_norm, top_n_stats


def _as_norm(scores: np.ndarray, E: np.ndarray, T: np.ndarray, ei: np.ndarray, ti: np.ndarray,
             cohort: np.ndarray, top_n: int) -> tuple[np.ndarray | None, str]:
    """AS-norm scores of the trials.

    Cohort statistics are computed once per enrollment model (rows of ``E``)
    and per test clip (rows of ``T``), then indexed per trial (``ei``, ``ti``).
    """
    n = max(1, min(top_n, len(cohort)))
    e_mean, e_std = top_n_stats(E, cohort, n)
    t_mean, t_std = top_n_stats(T, cohort, n)
    out = as_norm(scores, e_mean[ei], e_std[ei], t_mean[ti], t_std[ti])
    return np.asarray(out, dtype=np.float64), f"cohort {len(cohort)} speaker means, top_n {n}"


def score_trials(corpus: Corpus, key_vectors: dict[str, np.ndarray],
                 cohort: np.ndarray | None, top_n: int = 300) -> dict[str, Any]:
    """Cosine scores of the trial list -> EER / minDCF (and AS-norm when available)."""
    enroll_ids = sorted({e for e, _, _ in corpus.trials})
    enroll_vec = {}
    for e in enroll_ids:
        vs = [key_vectors[EmbeddingCache.key(p)] for p in corpus.enroll[e]]
        vs = [v for v in vs if np.isfinite(v).all()]
        if vs:
            enroll_vec[e] = centroid(np.stack(vs))
    trials = [(e, EmbeddingCache.key(t), y) for e, t, y in corpus.trials
              if e in enroll_vec and np.isfinite(key_vectors[EmbeddingCache.key(t)]).all()]
    if not trials:
        return {"trials": 0, "note": "no scorable trials"}
    e_index = {e: i for i, e in enumerate(sorted({t[0] for t in trials}))}
    t_index = {k: i for i, k in enumerate(sorted({t[1] for t in trials}))}
    E = np.stack([enroll_vec[e] for e in e_index])
    T = np.stack([key_vectors[k] for k in t_index])
    full = cosine_matrix(E, T)
    ei = np.array([e_index[t[0]] for t in trials])
    ti = np.array([t_index[t[1]] for t in trials])
    scores = full[ei, ti].astype(np.float64)
    labels = np.array([t[2] for t in trials])
    out: dict[str, Any] = {"trials": len(trials), "targets": int(labels.sum()),
                           "enrollments": len(e_index), "test_clips": len(t_index)}
    if labels.all() or not labels.any():
        out["note"] = "trial list has only one class; no EER"
        return out
    eer, thr = compute_eer(scores, labels)
    dcf, _ = compute_min_dcf(scores, labels, p_target=0.01)
    out.update({"eer_cosine": eer, "eer_threshold_cosine": thr, "min_dcf_0.01_cosine": dcf})
    if cohort is not None and len(cohort):
        normed, note = _as_norm(scores, E, T, ei, ti, cohort, top_n)
        out["as_norm"] = note
        if normed is not None and normed.shape == scores.shape:
            eer_n, _ = compute_eer(normed, labels)
            dcf_n, _ = compute_min_dcf(normed, labels, p_target=0.01)
            out.update({"eer_as_norm": eer_n, "min_dcf_0.01_as_norm": dcf_n})
    return out
