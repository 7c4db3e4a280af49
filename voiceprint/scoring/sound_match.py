"""Scoring a query sound against stored sounds from block vectors (pure numpy).

A sound is described by ``n >= 1`` block vectors (L2-normalised rows, one per
2.3 s block of the aisfx encoder) and a file vector (their normalised mean).
Every score here is a **cosine similarity in [-1, 1]** (or a mean of such),
higher meaning more alike:

* ``file``: cosine of the two file vectors;
* ``block_max``: the best cosine between any query block and any block of the
  stored sound (a fragment matches the part of the file it came from);
* ``block_mean_max``: for each query block its best cosine among the stored
  sound's blocks, averaged over the query's blocks (every part of the query
  must be found in the stored sound; a "sum of top matches" per query block).

With landmark fingerprints (:mod:`voiceprint.audio.landmarks`) a second,
independent piece of evidence is the **aligned landmark count** of a stored
sound: how many of the query's peak pairs recur in it at one time offset (a
count >= 0, no upper bound). :func:`fused_order` ranks sounds with enough of
them first (they contain the query, whatever the noise or band limit), then
the rest by cosine; :func:`is_near_duplicate` flags a stored sound when either
piece of evidence passes its measured threshold.

Stored blocks are given as one ``(n_blocks, dim)`` array whose rows are grouped
by sound, with ``starts[i]`` the first row of sound ``i`` (``starts[0] == 0``,
increasing, every group non-empty).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

#: aligned landmarks from which a stored sound ranks above every cosine-only match
#: (``python -m eval.sounds``: 8 gives the best top-3 rates on real game sounds)
MIN_LANDMARKS_RANK = 8
#: aligned landmarks from which an insert is a near-duplicate: 0.3% of 1,333 real game sounds
#: reach it against a distinct sound (no shared recording)
MIN_LANDMARKS_DUPLICATE = 17

__all__ = ["MIN_LANDMARKS_RANK", "MIN_LANDMARKS_DUPLICATE", "group_starts", "file_scores", "block_max_scores", "block_mean_max_scores",
           "AGGREGATIONS", "rank_of", "fused_order", "is_near_duplicate"]


def group_starts(counts: Sequence[int]) -> np.ndarray:
    """``starts`` for groups of ``counts`` rows each (every count >= 1)."""
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 1 or (c < 1).any():
        raise ValueError("every sound needs at least one block")
    return np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64)


def _check_rows(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {a.shape}")
    return a


def file_scores(query_file: np.ndarray, files: np.ndarray) -> np.ndarray:
    """Cosine of the query's file vector ``(dim,)`` with each stored file vector ``(n, dim)``."""
    return _check_rows(files, "files") @ np.asarray(query_file, dtype=np.float32).reshape(-1)


def _per_block_best(query_blocks: np.ndarray, blocks: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``(m, n_sounds)``: each query block's best cosine within each stored sound."""
    q = _check_rows(query_blocks, "query_blocks")
    b = _check_rows(blocks, "blocks")
    s = np.asarray(starts, dtype=np.int64)
    if s.size == 0 or s[0] != 0 or (np.diff(s) <= 0).any() or s[-1] >= b.shape[0]:
        raise ValueError("starts must begin at 0, increase strictly and stay within the blocks")
    sims = q @ b.T
    return np.maximum.reduceat(sims, s, axis=1)


def block_max_scores(query_blocks: np.ndarray, blocks: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per stored sound, the best cosine over all (query block, stored block) pairs."""
    return _per_block_best(query_blocks, blocks, starts).max(axis=0)


def block_mean_max_scores(query_blocks: np.ndarray, blocks: np.ndarray,
                          starts: np.ndarray) -> np.ndarray:
    """Per stored sound, the mean over query blocks of each one's best cosine in that sound."""
    return _per_block_best(query_blocks, blocks, starts).mean(axis=0)


#: name -> f(query_file, query_blocks, files, blocks, starts) -> (n_sounds,) scores
AGGREGATIONS: dict[str, Callable[..., np.ndarray]] = {
    "file": lambda qf, qb, files, blocks, starts: file_scores(qf, files),
    "block_max": lambda qf, qb, files, blocks, starts: block_max_scores(qb, blocks, starts),
    "block_mean_max": lambda qf, qb, files, blocks, starts: block_mean_max_scores(qb, blocks, starts),
}


def rank_of(scores: np.ndarray, target: int) -> int:
    """1-based rank of ``target`` in ``scores`` (higher first); ties count against it."""
    s = np.asarray(scores, dtype=np.float64)
    return int(np.count_nonzero(s >= s[target]))


def fused_order(cosines: np.ndarray, landmark_counts: np.ndarray, min_landmarks: int) -> np.ndarray:
    """Indices of stored sounds, best first: those with ``landmark_counts >= min_landmarks``
    by count (ties by cosine), then all others by cosine."""
    c = np.asarray(cosines, dtype=np.float64)
    n = np.asarray(landmark_counts, dtype=np.int64)
    if c.shape != n.shape:
        raise ValueError("cosines and landmark_counts differ in shape")
    matched = n >= int(min_landmarks)
    # lexsort: last key is primary
    return np.lexsort((-c, -np.where(matched, n, 0), ~matched))


def is_near_duplicate(cosine: float, landmark_count: int, *, min_cosine: float,
                      min_landmarks: int) -> bool:
    """True when the cosine or the aligned landmark count reaches its threshold."""
    return bool(cosine >= min_cosine or landmark_count >= min_landmarks)
