"""Frame-level helpers (pure numpy): hysteresis, gap filling, runs, top-k selection.

All masks are 1-D (or frames-first 2-D) arrays over a regular frame grid;
durations are given in frames by the caller, which owns the frame step.
"""
from __future__ import annotations

import numpy as np


def hysteresis(scores: np.ndarray, onset: float, offset: float) -> np.ndarray:
    """Binarise ``scores`` (1-D) with hysteresis.

    A frame becomes active when its score is above ``onset`` and stays active
    until a score falls below ``offset`` (``offset <= onset``); frames in
    between keep the previous state. The state before the first frame is
    inactive. Returns a bool array.
    """
    if offset > onset:
        raise ValueError(f"offset ({offset}) must not exceed onset ({onset})")
    s = np.asarray(scores, dtype=np.float64)
    decided = np.where(s > onset, 1, np.where(s < offset, 0, -1))
    idx = np.where(decided >= 0, np.arange(len(s)), -1)
    last = np.maximum.accumulate(idx) if len(s) else idx
    return np.where(last >= 0, decided[np.maximum(last, 0)] == 1, False)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as ``(start, stop)`` frame indices, stop exclusive."""
    m = np.asarray(mask, dtype=bool).astype(np.int8)
    if not m.size:
        return []
    edges = np.diff(np.concatenate([[0], m, [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def fill_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Set inner runs of False no longer than ``max_gap`` frames to True (edges untouched)."""
    out = np.asarray(mask, dtype=bool).copy()
    if max_gap <= 0:
        return out
    for a, b in runs(~out):
        if a > 0 and b < len(out) and b - a <= max_gap:
            out[a:b] = True
    return out


def remove_short(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Set runs of True shorter than ``min_run`` frames to False."""
    out = np.asarray(mask, dtype=bool).copy()
    if min_run <= 1:
        return out
    for a, b in runs(out):
        if b - a < min_run:
            out[a:b] = False
    return out


def select_top(activations: np.ndarray, count: np.ndarray) -> np.ndarray:
    """For each frame, mark the ``count[t]`` columns with the highest activation.

    ``activations`` (frames, k) floats, ``count`` (frames,) non-negative ints
    (clipped to k). Ties are broken by column order. Returns (frames, k) bool.
    """
    a = np.asarray(activations, dtype=np.float64)
    frames, k = a.shape
    c = np.clip(np.asarray(count, dtype=np.int64), 0, k)
    order = np.argsort(-a, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(k)[None, :].repeat(frames, axis=0), axis=1)
    return ranks < c[:, None]


def overlap_add(target: np.ndarray, weight: np.ndarray, values: np.ndarray,
                start_frames: np.ndarray) -> None:
    """Add chunk-level ``values`` (chunks, frames, ...) into ``target`` at ``start_frames``.

    ``weight`` (total_frames,) counts how many chunks covered each frame.
    Both are updated in place; frames past the end of ``target`` are dropped.
    """
    total = target.shape[0]
    for chunk, start in zip(values, start_frames):
        stop = min(total, int(start) + chunk.shape[0])
        if stop <= start:
            continue
        target[start:stop] += chunk[:stop - start]
        weight[start:stop] += 1
