"""Open-set identification thresholds sized to the gallery.

Identify compares a caller with all ``N`` enrolled speakers and names the
best one if its score reaches the threshold. For a caller who is *not*
enrolled, every comparison is an impostor trial, so the chance of a false
identification is that of the *maximum* of ``N`` impostor scores reaching
the threshold. With a fixed per-comparison FAR that chance grows with N
(about ``1 - (1 - FAR) ** N``: 1 % FAR against 100 speakers falsely
identifies 63 % of unknown callers). So the identify threshold is derived
from a target false-identification rate and N:

* the per-comparison FAR such a rate allows under independence is
  ``1 - (1 - rate) ** (1 / N)`` (:func:`per_comparison_far`);
* the threshold is where the calibrated impostor scores (measured, then
  the extrapolated tail) give that rate for the best of N comparisons
  (:meth:`voiceprint.scoring.tail.ImpostorModel.open_set_threshold`; by
  default with independent comparisons, which held on held-out speakers
  where the caller-offset model did not), so it grows with N. Beyond the
  impostor trials' reach (per-comparison FAR < 3 / trials) the point says
  ``resolvable: false``.

Scores and thresholds are on the calibration's scale (cosine in [-1, 1] or
AS-norm units).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from voiceprint.scoring.calibration import describe_point
from voiceprint.scoring.intervals import min_trials
from voiceprint.scoring.points import OperatingPoint
from voiceprint.scoring.samples import ScoreSample
from voiceprint.scoring.tail import ImpostorModel

__all__ = ["per_comparison_far", "open_set_rate", "open_set_point"]


def per_comparison_far(target_rate: float, n_enrolled: int) -> float:
    """FAR per comparison that gives ``target_rate`` false identifications over ``n_enrolled``
    independent comparisons: ``1 - (1 - rate) ** (1 / N)`` (about ``rate / N``)."""
    if not 0.0 < target_rate < 1.0:
        raise ValueError("target_rate must be within (0, 1)")
    if n_enrolled < 1:
        raise ValueError("n_enrolled must be >= 1")
    return float(-np.expm1(np.log1p(-target_rate) / n_enrolled))


def open_set_rate(per_comparison: float, n_enrolled: int) -> float:
    """False-identification rate of ``n_enrolled`` independent comparisons at a per-comparison FAR."""
    return float(-np.expm1(n_enrolled * np.log1p(-min(per_comparison, 1.0 - 1e-15))))


def open_set_point(per_norm: dict[str, Any], n_enrolled: int, target_rate: float, *,
                   normalization: str = "none", calibrated: bool = True,
                   source: str = "calibration", model: str = "independent") -> OperatingPoint:
    """The identify operating point for ``n_enrolled`` speakers and a target false-ID rate.

    ``per_norm``: one normalisation's calibration results (needs its
    ``samples``: the stored genuine and impostor scores). The point's
    ``expected_far``/``far_upper_95`` are per comparison, its ``open_set``
    dict gives the rate it aims at, the rate the model predicts at the
    threshold, an upper bound (independence on the per-comparison upper
    bound), N and the model used. ``resolvable`` says whether the effective
    impostor trials resolve the per-comparison FAR this needs
    (trials / design effect >= 3 / FAR).
    """
    genuine = ScoreSample.from_json(per_norm["samples"]["genuine"])
    impostor = ImpostorModel.from_json(per_norm["samples"]["impostor"])
    n = max(int(n_enrolled), 1)
    used = impostor.model_name(model)
    threshold = impostor.open_set_threshold(n, target_rate, used)
    p = describe_point(threshold, genuine, impostor, design_effects=per_norm.get("design_effect"))
    far_needed = per_comparison_far(target_rate, n)
    per_comp = float(p["expected_far"])
    return OperatingPoint(
        name="open_set", threshold=float(threshold), calibrated=calibrated,
        normalization=normalization, expected_far=per_comp, expected_frr=p["expected_frr"],
        far_upper_95=p["far_ci_95"][1], frr_upper_95=p["frr_ci_95"][1],
        resolvable=bool(impostor.trials.n / impostor.design_effect >= min_trials(max(per_comp, 1e-300))),
        target_far=None, trials=p["trials"], source=source,
        open_set={"n_enrolled": int(n_enrolled), "target_rate": float(target_rate), "model": used,
                  "predicted_rate": impostor.false_identification_rate(threshold, n, used),
                  "rate_upper_95": open_set_rate(p["far_ci_95"][1], n),
                  "per_comparison_far": per_comp,
                  "per_comparison_far_independent": far_needed,
                  "extrapolated": bool(p["extrapolated"])})
