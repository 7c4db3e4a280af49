"""Operating points: a threshold, what it was measured on, and how far that can be trusted.

Vocabulary of point names (the same with or without a calibration, so a
request is valid or invalid whatever state the install is in):

* ``default`` -- the encoder's built-in threshold (or
  ``VOICEPRINT_DEFAULT_THRESHOLD``); never calibrated;
* ``eer`` -- where false accepts and false rejects are equally frequent;
* ``min_dcf`` -- minimum NIST detection cost at p_target 0.01;
* ``far_<x>pct`` -- the lowest threshold whose false-accept rate is <= x %,
  for any 0 < x < 100 (``far_1pct``, ``far_0.1pct``, ``far_0.01pct``, ...).

Without a calibration every valid name answers the ``default`` point with
``calibrated: false`` (and ``requested`` naming what was asked); any other
name is a 422 ``unknown_operating_point``, before and after calibrating.

Rates are fractions in [0, 1]. ``expected_far`` is the point estimate, never
a bare 0 when nothing was observed (then it is the extrapolated impostor
tail); ``far_upper_95`` the upper end of its exact 95 % interval.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from voiceprint.errors import VoiceprintError

__all__ = ["OperatingPoint", "DEFAULT_TARGET_FARS", "FIXED_POINT_NAMES", "far_point_name",
           "parse_far_name", "validate_point_name", "UnknownOperatingPoint"]

#: target FARs every calibration stores (others are derived on request)
DEFAULT_TARGET_FARS: tuple[float, ...] = (0.01, 0.001, 0.0001)
FIXED_POINT_NAMES: tuple[str, ...] = ("default", "eer", "min_dcf")
_FAR_NAME = re.compile(r"^far_(\d+(?:\.\d+)?|\.\d+)pct$")


class UnknownOperatingPoint(VoiceprintError):
    status = 422
    reason = "unknown_operating_point"


def far_point_name(far: float) -> str:
    """0.01 -> 'far_1pct', 0.001 -> 'far_0.1pct' (``far`` a fraction in (0, 1))."""
    if not 0.0 < far < 1.0:
        raise ValueError("far must be within (0, 1)")
    return f"far_{far * 100:g}pct"


def parse_far_name(name: str) -> float | None:
    """'far_0.1pct' -> 0.001; None when ``name`` is not a far_<x>pct name in (0, 100) %."""
    m = _FAR_NAME.match(name)
    if not m:
        return None
    pct = float(m.group(1))
    return pct / 100.0 if 0.0 < pct < 100.0 else None


def validate_point_name(name: str) -> str:
    """The canonical form of a valid point name; raises a 422 for anything else."""
    if name in FIXED_POINT_NAMES:
        return name
    far = parse_far_name(name)
    if far is None:
        raise UnknownOperatingPoint(
            f"unknown operating point {name!r}: use default, eer, min_dcf or far_<x>pct "
            "(e.g. far_1pct, far_0.1pct)",
            details={"operating_point": name[:64]})
    return far_point_name(far)


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold a score is judged against (accept iff score >= threshold).

    ``threshold`` is on the scale of ``normalization`` ("none": cosine in
    [-1, 1]; "asnorm": AS-norm units). Rates are fractions; the bounds are
    exact (Clopper-Pearson) 95 % limits from ``trials``. ``resolvable`` is
    False when the impostor trials were too few for the false-accept rate
    asked for (fewer than 3 / FAR): the threshold is then extrapolated from
    the impostor score tail and ``far_upper_95`` is what the data can vouch for.
    """

    name: str
    threshold: float
    calibrated: bool
    normalization: str = "none"
    expected_far: float | None = None
    expected_frr: float | None = None
    far_upper_95: float | None = None
    frr_upper_95: float | None = None
    resolvable: bool | None = None
    target_far: float | None = None
    #: {"genuine", "impostor", "false_accepts", "false_rejects"} counted at calibration
    trials: dict[str, float] | None = None
    source: str = "default"
    #: the name the caller asked for when another point answers (uncalibrated install)
    requested: str | None = None
    #: open-set sizing: {"n_enrolled", "target_rate", "per_comparison_far", "model", ...}
    open_set: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
