"""Score normalisation, as small pure numpy functions.

Adaptive symmetric normalisation (AS-norm, Matejka et al. 2017): a raw
cosine score ``s`` between an enrollment model ``e`` and a test embedding
``t`` becomes::

    0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

where ``mu_e, sd_e`` are the mean and standard deviation of the ``top_n``
highest scores of ``e`` against a cohort of impostor embeddings, and
``mu_t, sd_t`` the same for ``t``. Normalised scores are unitless (roughly
standard deviations above the impostor mean), not cosines.
"""
from __future__ import annotations

import numpy as np

from voiceprint.scoring.cosine import cosine_matrix

__all__ = ["top_n_stats", "as_norm", "as_norm_trials_excluding_pairs"]


def top_n_stats(embeddings: np.ndarray, cohort: np.ndarray, top_n: int,
                exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each row's ``top_n`` cosine scores against ``cohort``.

    ``embeddings`` (m, d) and ``cohort`` (c, d) are L2-normalised.
    ``exclude`` (m, c) bool masks cohort entries that must not count for a
    row (e.g. the speaker's own utterances). Returns two arrays of shape (m,).
    """
    scores = cosine_matrix(embeddings, cohort)
    if exclude is not None:
        scores = np.where(exclude, -np.inf, scores)
    n = max(1, min(top_n, scores.shape[1]))
    top = -np.sort(-scores, axis=1)[:, :n]
    if exclude is not None:
        top = np.where(np.isfinite(top), top, np.nan)
        return np.nanmean(top, axis=1), np.maximum(np.nanstd(top, axis=1), 1e-6)
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)


def as_norm(scores: np.ndarray, enroll_mean: np.ndarray, enroll_std: np.ndarray,
            test_mean: np.ndarray, test_std: np.ndarray) -> np.ndarray:
    """AS-norm of raw scores; all arguments broadcast against ``scores``."""
    return 0.5 * ((scores - enroll_mean) / enroll_std + (scores - test_mean) / test_std)


def _masked_top_stats(scores: np.ndarray, excluded: np.ndarray, top_n: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Mean/std of each row's ``top_n`` scores among the entries not ``excluded``."""
    x = np.where(excluded, -np.inf, scores)
    avail = (~excluded).sum(axis=1)
    n = max(1, min(top_n, x.shape[1]))
    top = -np.partition(-x, n - 1, axis=1)[:, :n] if n < x.shape[1] else x
    top = np.where(np.isfinite(top), top, np.nan)
    top[avail == 0] = 0.0  # nothing left to compare with: neutral statistics
    mean, std = np.nanmean(top, axis=1), np.nanstd(top, axis=1)
    return mean, np.where(avail > 1, np.maximum(std, 1e-6), 1.0)


def as_norm_trials_excluding_pairs(raw: np.ndarray, models: np.ndarray, probes: np.ndarray,
                                   owner: np.ndarray, cohort: np.ndarray,
                                   cohort_owner: np.ndarray, top_n: int) -> np.ndarray:
    """AS-norm of a trial matrix whose cohort holds the trial speakers themselves.

    ``raw`` (P, S): cosine of probe ``p`` (speaker ``owner[p]``) with model
    ``b`` (speaker ``b``). For every trial, the cohort statistics of *both*
    sides leave out both speakers of the trial, as in service, where neither
    the enrolled speaker nor the caller is part of the calibration cohort.
    (Leaving out only each side's own speaker lets an impostor's clips into
    the other side's top-N and makes similar-voice impostor scores look
    lower than they will be: optimistic thresholds.)
    """
    n_models = len(models)
    cp = cosine_matrix(probes, cohort)  # (P, C)
    cm = cosine_matrix(models, cohort)  # (S, C)
    own_p = owner[:, None] == cohort_owner[None, :]
    own_m = np.arange(n_models)[:, None] == cohort_owner[None, :]
    p_mean = np.empty(raw.shape, np.float64)
    p_std = np.empty(raw.shape, np.float64)
    m_mean = np.empty((n_models, n_models), np.float64)  # [probe speaker a, model b]
    m_std = np.empty((n_models, n_models), np.float64)
    for b in range(n_models):
        p_mean[:, b], p_std[:, b] = _masked_top_stats(cp, own_p | (cohort_owner == b)[None, :], top_n)
    for a in range(n_models):
        m_mean[a], m_std[a] = _masked_top_stats(cm, own_m | (cohort_owner == a)[None, :], top_n)
    mm, ms = m_mean[owner], m_std[owner]  # (P, S)
    return as_norm(raw, mm, ms, p_mean, p_std)
