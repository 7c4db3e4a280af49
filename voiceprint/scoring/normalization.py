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


def top_n_stats(embeddings: np.ndarray, cohort: np.ndarray, top_n: int,
                exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each row's ``top_n`` cosine scores against ``cohort``.

    ``embeddings`` (m, d) and ``cohort`` (c, d) are L2-normalised.
    ``exclude`` (m, c) bool masks cohort entries that must not count for a
    row (e.g. the speaker's own utterances). Returns two arrays of shape (m,).
    """
    scores = np.asarray(embeddings, np.float32) @ np.asarray(cohort, np.float32).T
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
