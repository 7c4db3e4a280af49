"""Operating points: the threshold a score is judged against, and where it came from.

Scores are cosine similarities in [-1, 1]. Until ``voiceprint calibrate``
has measured thresholds for the active encoder, the encoder's default
threshold (or ``Config.DEFAULT_THRESHOLD``) is used and responses say
``calibrated: false``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Connection

#: first-guess cosine thresholds per encoder (replaced by calibration)
DEFAULT_THRESHOLDS: dict[str, float] = {"ecapa_tdnn": 0.30, "ge2e": 0.75}


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float
    calibrated: bool
    normalization: str = "none"
    expected_far: float | None = None
    expected_frr: float | None = None
    source: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_operating_point(encoder: str, override: float | None = None) -> OperatingPoint:
    """The uncalibrated point: ``override`` (``VOICEPRINT_DEFAULT_THRESHOLD``) or the encoder's default."""
    if override is not None:
        return OperatingPoint(name="default", threshold=override, calibrated=False,
                              source="VOICEPRINT_DEFAULT_THRESHOLD")
    return OperatingPoint(name="default", threshold=DEFAULT_THRESHOLDS.get(encoder, 0.5),
                          calibrated=False, source="built-in default")


def resolve_operating_point(conn: Connection, encoder: str, name: str,
                            normalization: str = "none",
                            default_threshold: float | None = None) -> OperatingPoint:
    """The calibrated point ``name`` for ``encoder`` and ``normalization``, else the default.

    The default is always on raw cosine scores (``normalization == "none"``).
    """
    from voiceprint.services.calibration import stored_operating_point  # avoids an import cycle

    point = stored_operating_point(conn, encoder, name, normalization)
    return point if point is not None else default_operating_point(encoder, default_threshold)
