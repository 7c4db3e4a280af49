"""The impostor score distribution, measured and extrapolated, for single and max statistics.

Scores are on the calibration's scale (cosine similarity in [-1, 1], or
AS-norm units). ``accept iff score >= threshold``.

Single comparisons (verification): the false-accept rate at a threshold is
the measured fraction of impostor trials at or above it, as long as the
trials above it count as at least
:data:`~voiceprint.scoring.intervals.RULE_OF_THREE` *effective* trials
(``3 * design_effect`` trials: impostor trials between the same two
speakers move together, see :mod:`voiceprint.scoring.intervals`). Beyond
that the data say little, so the rate continues as a Gaussian tail (mean and
standard deviation of all impostor scores) scaled to meet the measured rate
there: a continuous, decreasing curve, marked extrapolated. On held-out
speakers (README "Decisions") this errs towards higher thresholds for GE2E but
not always for CAM++, whose held-out impostors reached higher scores than
any calibration impostor: an extrapolated point is a guess with a stated
``resolvable: false``, never a measurement. Thresholds are not capped: on
the cosine scale one above 1.0 accepts nothing.

Open-set identification against ``N`` enrolled speakers: an unknown caller
is falsely identified when the *best* of its ``N`` impostor scores reaches
the threshold. Two models of that maximum:

* ``independent`` (the default): ``1 - (1 - FAR(t)) ** N``, every
  comparison independent;
* ``caller``: a caller's impostor scores share an offset (some voices
  resemble many others). Each calibration probe ``c`` gets its mean
  impostor score ``m_c``; the residuals ``s - m_c`` of all probes form one
  pooled distribution ``R``; then ``P(false id) = mean_c [1 - (1 - R(t - m_c)) ** N]``.

On held-out real speakers (README "Decisions") the caller model predicted fewer
false identifications than observed (5 % predicted, 15 % observed at N = 10)
while the independent one stayed within its interval (8 % [4 %, 15 %]), so
the independent model is the default; the caller model is kept for study.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from voiceprint.scoring.intervals import RULE_OF_THREE
from voiceprint.scoring.samples import ScoreSample

__all__ = ["Exceedance", "ImpostorModel", "MAX_CALLERS"]

#: caller means kept per calibration (a random subsample beyond this)
MAX_CALLERS = 2_000


@dataclass(frozen=True)
class Exceedance:
    """``P(score >= t)`` from a score sample: measured, then a Gaussian-shaped tail.

    ``design_effect`` (>= 1): how many trials count as one independent one.
    """

    sample: ScoreSample
    design_effect: float = 1.0

    @property
    def _gauss(self) -> tuple[float, float]:
        m, s = self.sample.mean_std()
        return m, max(s, 1e-6)

    @property
    def last_resolved(self) -> float:
        """The score with ``RULE_OF_THREE * design_effect`` trials at or above it (end of the
        measured range)."""
        k = min(int(np.ceil(RULE_OF_THREE * max(self.design_effect, 1.0))) - 1, self.sample.n - 1)
        return self.sample.score_at_upper_rank(k)

    def rate(self, t: float | np.ndarray) -> np.ndarray:
        """Exceedance probability at threshold(s) ``t`` (never 0)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        n = self.sample.n
        t3 = self.last_resolved
        measured = np.atleast_1d(self.sample.count_at_or_above(np.minimum(t, t3))) / n
        m, s = self._gauss
        anchor = max(float(norm.sf((t3 - m) / s)), 1e-300)
        k3 = self.sample.count_at_or_above(t3) / n
        tail = k3 * norm.sf((t - m) / s) / anchor
        return np.where(t > t3, np.minimum(tail, k3), measured)

    def extrapolated(self, t: float) -> bool:
        return bool(t > self.last_resolved)

    def measured_threshold(self, rate: float) -> float:
        """Lowest threshold with at most ``floor(rate * n)`` trials at or above it, half-way
        between observed scores (just above the maximum when that allows none)."""
        n = self.sample.n
        allowed = int(np.floor(rate * n + 1e-9))
        if allowed >= n:
            return self.sample.min
        lo = self.sample.score_at_upper_rank(allowed)
        hi = self.sample.score_at_upper_rank(allowed - 1) if allowed > 0 else None
        return float(lo + (hi - lo) / 2) if hi is not None and hi > lo else float(np.nextafter(lo, np.inf))

    def threshold(self, rate: float) -> float:
        """Lowest threshold whose exceedance is <= ``rate``: measured inside the measured
        range, else from the extrapolated tail."""
        if not 0.0 < rate < 1.0:
            raise ValueError("rate must be within (0, 1)")
        t3 = self.last_resolved
        k3 = self.sample.count_at_or_above(t3) / self.sample.n
        if rate >= k3:
            return self.measured_threshold(rate)
        m, s = self._gauss
        anchor = float(norm.sf((t3 - m) / s))
        return float(m + s * norm.isf(rate / k3 * anchor))


@dataclass(frozen=True)
class ImpostorModel:
    """Impostor scores of a calibration: pooled trials and, when fitted, per-caller offsets."""

    trials: ScoreSample
    caller_means: np.ndarray | None = None  # one per calibration probe (its mean impostor score)
    residuals: ScoreSample | None = None  # score - caller mean, pooled
    design_effect: float = 1.0  # measured on the calibration's speaker-pair clusters

    def with_design_effect(self, design_effect: float) -> "ImpostorModel":
        return ImpostorModel(self.trials, self.caller_means, self.residuals, max(1.0, design_effect))

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, seed: int = 0) -> "ImpostorModel":
        """From a trial matrix ``scores`` (probes, models) and its 0/1 ``labels``.

        The caller model needs at least two impostor models per probe.
        """
        scores = np.asarray(scores, dtype=np.float64)
        impostor = np.asarray(labels) == 0
        trials = ScoreSample.of(scores[impostor])
        per_row = impostor.sum(axis=1)
        if scores.ndim != 2 or per_row.min() < 2:
            return cls(trials)
        means = np.where(impostor, scores, 0.0).sum(axis=1) / per_row
        residuals = ScoreSample.of((scores - means[:, None])[impostor])
        if len(means) > MAX_CALLERS:
            means = np.random.default_rng(seed).choice(means, MAX_CALLERS, replace=False)
        return cls(trials, means, residuals)

    @property
    def far(self) -> Exceedance:
        return Exceedance(self.trials, self.design_effect)

    def false_identification_rate(self, threshold: float, n_enrolled: int,
                                  model: str = "independent") -> float:
        """P(an unknown caller's best score among ``n_enrolled`` impostors >= ``threshold``)."""
        if n_enrolled < 1:
            return 0.0
        use = self.model_name(model)
        if use == "independent":
            return float(-np.expm1(n_enrolled * np.log1p(-self.far.rate(threshold)[0])))
        assert self.caller_means is not None and self.residuals is not None
        q = Exceedance(self.residuals, self.design_effect).rate(threshold - self.caller_means)
        return float(np.mean(-np.expm1(n_enrolled * np.log1p(-np.minimum(q, 1 - 1e-15)))))

    def model_name(self, model: str = "independent") -> str:
        if model not in ("caller", "independent"):
            raise ValueError("model must be 'independent' or 'caller'")
        if model == "caller" and self.caller_means is None:
            raise ValueError("the caller model was not fitted (needs >= 3 speakers)")
        return model

    def open_set_threshold(self, n_enrolled: int, target_rate: float,
                           model: str = "independent") -> float:
        """Lowest threshold whose false-identification rate for ``n_enrolled`` is <= ``target_rate``."""
        if not 0.0 < target_rate < 1.0:
            raise ValueError("target_rate must be within (0, 1)")
        if n_enrolled < 1:
            raise ValueError("n_enrolled must be >= 1")
        lo = self.trials.min - 1.0
        hi = self.trials.max + 1.0
        while self.false_identification_rate(hi, n_enrolled, model) > target_rate:
            hi += hi - lo
        for _ in range(60):  # bisection: the rate falls as the threshold rises
            mid = (lo + hi) / 2
            if self.false_identification_rate(mid, n_enrolled, model) > target_rate:
                lo = mid
            else:
                hi = mid
        return float(hi)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trials": self.trials.to_json(), "design_effect": self.design_effect}
        if self.caller_means is not None and self.residuals is not None:
            out["caller_means"] = base64.b64encode(
                np.asarray(self.caller_means, "<f4").tobytes()).decode("ascii")
            out["residuals"] = self.residuals.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImpostorModel":
        means = residuals = None
        if "caller_means" in data:
            means = np.frombuffer(base64.b64decode(data["caller_means"]), "<f4").astype(np.float64)
            residuals = ScoreSample.from_json(data["residuals"])
        return cls(ScoreSample.from_json(data["trials"]), means, residuals,
                   float(data.get("design_effect", 1.0)))
