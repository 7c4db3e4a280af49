"""A stored sample of trial scores that can still count errors at any threshold.

A calibration keeps its genuine and impostor scores so that later questions
(a false-accept rate nobody asked for at calibration time, the threshold for
an open-set gallery of N speakers, the genuine score a consistent enrollment
clip reaches) are answered from the measured data, with trial counts.

Up to :data:`MAX_EXACT` scores are kept exactly. Larger samples keep the
:data:`TAIL` lowest and highest scores exactly (where false rejects and false
accepts are counted) and a quantile grid in between, each kept score with its
rank, so counts in the middle are interpolated (error below one grid step,
i.e. < 1/:data:`GRID` of the trials). Stored as JSON with base64 float32.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ScoreSample", "MAX_EXACT", "TAIL", "GRID"]

MAX_EXACT = 5_000
TAIL = 1_500
GRID = 501


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _unb64(s: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=dtype).copy()


@dataclass(frozen=True)
class ScoreSample:
    """Sorted scores of ``n`` trials; ``ranks[i]`` = how many trials score below ``values[i]``.

    Exact samples hold every score (``ranks`` is ``0..n-1``).
    """

    n: int
    values: np.ndarray  # ascending float64
    ranks: np.ndarray  # int64, strictly increasing, ranks[0] == 0, ranks[-1] == n - 1

    @classmethod
    def of(cls, scores: np.ndarray) -> "ScoreSample":
        """Summarise 1-D finite scores (exact up to :data:`MAX_EXACT`)."""
        s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
        if s.size == 0:
            raise ValueError("no scores")
        if not np.isfinite(s).all():
            raise ValueError("scores contain NaN or Inf")
        n = int(s.size)
        if n <= MAX_EXACT:
            return cls(n, s, np.arange(n, dtype=np.int64))
        grid = np.unique(np.round(np.linspace(TAIL, n - TAIL - 1, GRID)).astype(np.int64))
        idx = np.unique(np.concatenate([np.arange(TAIL), grid, np.arange(n - TAIL, n)]))
        return cls(n, s[idx], idx)

    @property
    def exact(self) -> bool:
        return len(self.values) == self.n

    @property
    def max(self) -> float:
        return float(self.values[-1])

    @property
    def min(self) -> float:
        return float(self.values[0])

    def count_below(self, threshold: float | np.ndarray) -> float | np.ndarray:
        """Trials scoring strictly below ``threshold`` (interpolated between grid points).

        Accepts a scalar (returns a float) or an array of thresholds.
        """
        v, r = self.values, self.ranks.astype(np.float64)
        t = np.asarray(threshold, dtype=np.float64)
        i = np.searchsorted(v, t, side="left")
        inner = np.clip(i, 1, len(v) - 1)
        lo_v, hi_v = v[inner - 1], v[inner]
        lo_r, hi_r = r[inner - 1], r[inner]
        gap = hi_r - lo_r
        width = np.where(hi_v > lo_v, hi_v - lo_v, 1.0)
        # unseen scores between two kept ones are taken as evenly spread
        frac = np.clip((t - lo_v) / width, 0.0, 1.0)
        between = np.where(gap == 1, hi_r, lo_r + 1 + frac * (gap - 1))
        out = np.where(i == 0, 0.0, np.where(i == len(v), float(self.n), between))
        return float(out) if out.ndim == 0 else out

    def count_at_or_above(self, threshold: float | np.ndarray) -> float | np.ndarray:
        """Trials scoring ``>= threshold`` (accepted, when accept iff score >= threshold)."""
        return self.n - self.count_below(threshold)

    def score_at_upper_rank(self, k: int) -> float:
        """The ``k``-th highest score (``k = 0`` the maximum); interpolated off the grid."""
        if not 0 <= k < self.n:
            raise ValueError(f"rank {k} outside 0..{self.n - 1}")
        return float(np.interp(self.n - 1 - k, self.ranks, self.values))

    def mean_std(self) -> tuple[float, float]:
        """Mean and standard deviation (weighted by the ranks each kept score stands for)."""
        if self.exact:
            return float(self.values.mean()), float(self.values.std())
        w = np.gradient(self.ranks.astype(np.float64))
        m = float(np.average(self.values, weights=w))
        return m, float(np.sqrt(np.average((self.values - m) ** 2, weights=w)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "values": _b64(self.values, "<f4")}
        if not self.exact:
            out["ranks"] = _b64(self.ranks, "<i4")
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ScoreSample":
        values = _unb64(data["values"], "<f4").astype(np.float64)
        n = int(data["n"])
        ranks = (_unb64(data["ranks"], "<i4").astype(np.int64) if "ranks" in data
                 else np.arange(n, dtype=np.int64))
        if len(ranks) != len(values):
            raise ValueError("stored score sample is corrupt")
        return cls(n, values, ranks)
