"""What a decision is judged by: the operating point, its normalisation, and where it came from.

Resolution order (one direction: decisions -> calibration -> scoring):

1. the point name is validated first (``voiceprint.scoring.points``: default,
   eer, min_dcf, far_<x>pct), so a bad name is a 422 with or without a
   calibration;
2. without a calibration for the encoder, the ``default`` point answers:
   ``VOICEPRINT_DEFAULT_THRESHOLD`` or the encoder's measured default
   (cosine, ``calibrated: false``);
3. with one, the normalisation is what the setting says: ``auto`` = what
   the calibration chose on held-out folds, ``none``/``asnorm`` = forced;
   the point comes from that normalisation's stored results.

Thresholds are cosine similarities in [-1, 1] for normalisation "none" and
AS-norm units for "asnorm". Identify can size its threshold to the gallery
(:func:`open_set_basis`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.errors import VoiceprintError
from voiceprint.scoring.calibration import point_from_results
from voiceprint.scoring.defaults import encoder_defaults, measured_default_thresholds
from voiceprint.scoring.enrollment_consistency import ConsistencyRule
from voiceprint.scoring.open_set import open_set_point
from voiceprint.scoring.points import OperatingPoint, validate_point_name
from voiceprint.services.calibration import latest_calibration
from voiceprint.stores.records import speakers, voiceprints

__all__ = ["OperatingPoint", "DEFAULT_THRESHOLDS", "NORMALIZATION_SETTINGS", "DecisionBasis",
           "default_operating_point", "effective_normalization", "decision_basis",
           "resolve_operating_point", "open_set_basis", "enrolled_count", "consistency_rule",
           "active_summary"]

#: uncalibrated cosine thresholds per encoder (until EncoderSpec.default_threshold exists):
#: measured ones come from voiceprint/scoring/encoder_defaults.json (threshold at FAR 0.1 %
#: on FSDD + synthesised voices, see notes/calib.md); ecapa_tdnn has no real weights here,
#: its 0.30 is the old first guess, not a measurement
DEFAULT_THRESHOLDS: dict[str, float] = {"ecapa_tdnn": 0.30, **measured_default_thresholds()}
FALLBACK_THRESHOLD = 0.5
NORMALIZATION_SETTINGS = ("auto", "none", "asnorm")


@dataclass(frozen=True)
class DecisionBasis:
    """The point in force, the calibration behind it (None = uncalibrated) and why."""

    point: OperatingPoint
    calibration_id: int | None
    setting: str  # the configured VOICEPRINT_SCORE_NORMALIZATION
    normalization_reason: str

    @property
    def normalization(self) -> str:
        return self.point.normalization

    @property
    def needs_cohort(self) -> bool:
        return self.point.normalization == "asnorm"


def default_operating_point(encoder: str, override: float | None = None,
                            requested: str | None = None) -> OperatingPoint:
    """The uncalibrated point (cosine): ``override`` or the encoder's measured default."""
    req = requested if requested not in (None, "default") else None
    if override is not None:
        return OperatingPoint(name="default", threshold=float(override), calibrated=False,
                              source="VOICEPRINT_DEFAULT_THRESHOLD", requested=req)
    measured = encoder_defaults(encoder)
    return OperatingPoint(
        name="default", threshold=DEFAULT_THRESHOLDS.get(encoder, FALLBACK_THRESHOLD),
        calibrated=False, source="built-in default", requested=req,
        target_far=float(measured["target_far"]) if measured else None)


def effective_normalization(setting: str, results: dict[str, Any]) -> tuple[str, str]:
    """(normalisation to use, why) for a calibration's ``results`` and the configured setting."""
    if setting not in NORMALIZATION_SETTINGS:
        raise VoiceprintError(f"VOICEPRINT_SCORE_NORMALIZATION must be one of "
                              f"{', '.join(NORMALIZATION_SETTINGS)}; got {setting!r}",
                              reason="bad_configuration", status=500)
    if setting in ("none", "asnorm"):
        if setting == "asnorm" and "asnorm" not in results:
            return "none", "asnorm forced, but the calibration has no AS-norm results"
        choice = results.get("normalization", {}).get("active")
        note = f" (calibration chose {choice})" if choice and choice != setting else ""
        return setting, f"forced by VOICEPRINT_SCORE_NORMALIZATION={setting}{note}"
    choice = results.get("normalization")
    if choice is None:  # stored before the choice was made: raw cosine is the safe reading
        return "none", "calibration predates the held-out comparison; raw cosine"
    return choice["active"], choice["reason"]


def _calibrated_point(row: Any, name: str, norm: str) -> OperatingPoint:
    per_norm = row.results.get(norm) or {}
    p = point_from_results(per_norm, name)
    if p is None:
        raise VoiceprintError(f"calibration {row.id} did not measure {name}; run "
                              "`voiceprint calibrate` again", reason="unknown_operating_point",
                              status=422)
    return OperatingPoint(
        name=name, threshold=float(p["threshold"]), calibrated=True, normalization=norm,
        expected_far=float(p["expected_far"]), expected_frr=float(p["expected_frr"]),
        far_upper_95=float(p["far_ci_95"][1]), frr_upper_95=float(p["frr_ci_95"][1]),
        resolvable=bool(p["resolvable"]), target_far=p.get("target_far"),
        trials=dict(p["trials"]), source=f"calibration {row.id}")


def decision_basis(conn: Connection, encoder: str, point_name: str, setting: str = "auto",
                   default_threshold: float | None = None, *,
                   tenant_id: int) -> DecisionBasis:
    """The operating point ``point_name`` for ``encoder`` under the normalisation ``setting``."""
    name = validate_point_name(point_name)
    row = latest_calibration(conn, encoder, tenant_id)
    if row is None or name == "default":
        why = "no calibration: raw cosine" if row is None else "the default point is raw cosine"
        return DecisionBasis(default_operating_point(encoder, default_threshold, point_name),
                             None, setting, why)
    norm, why = effective_normalization(setting, row.results)
    return DecisionBasis(_calibrated_point(row, name, norm), row.id, setting, why)


def resolve_operating_point(conn: Connection, encoder: str, name: str,
                            normalization: str = "none",
                            default_threshold: float | None = None, *,
                            tenant_id: int) -> OperatingPoint:
    """The point ``name`` with an explicit normalisation ("none"/"asnorm"); see :func:`decision_basis`."""
    return decision_basis(conn, encoder, name, normalization, default_threshold,
                          tenant_id=tenant_id).point


def enrolled_count(conn: Connection, encoder: str, tenant_id: int) -> int:
    """The tenant's speakers enrolled (searchable) with ``encoder``: the gallery size N of identify."""
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(voiceprints)
        .join(speakers, speakers.c.id == voiceprints.c.speaker_id)
        .where(voiceprints.c.encoder == encoder, voiceprints.c.enrolled.is_(True),
               speakers.c.tenant_id == tenant_id)).scalar_one())


def open_set_basis(conn: Connection, encoder: str, n_enrolled: int, target_rate: float,
                   setting: str = "auto", default_threshold: float | None = None, *,
                   tenant_id: int) -> DecisionBasis:
    """The identify point: false identifications of unknown callers at ``target_rate`` for N enrolled.

    Uncalibrated, the encoder's measured default score samples are used
    (``calibrated: false``); ``VOICEPRINT_DEFAULT_THRESHOLD`` (an explicit
    threshold) or an encoder without measured defaults gives the default point.
    """
    row = latest_calibration(conn, encoder, tenant_id)
    if row is not None:
        norm, why = effective_normalization(setting, row.results)
        per_norm = row.results.get(norm) or {}
        if "samples" in per_norm:
            point = open_set_point(per_norm, n_enrolled, target_rate, normalization=norm,
                                   source=f"calibration {row.id}")
            return DecisionBasis(point, row.id, setting, why)
        return decision_basis(conn, encoder, "far_0.1pct", setting, default_threshold,
                              tenant_id=tenant_id)
    measured = encoder_defaults(encoder)
    if default_threshold is not None or measured is None:
        return DecisionBasis(default_operating_point(encoder, default_threshold, "open_set"), None,
                             setting, "no calibration: raw cosine")
    point = open_set_point(measured, n_enrolled, target_rate, calibrated=False,
                           source="built-in default")
    return DecisionBasis(point, None, setting, "no calibration: raw cosine")


def consistency_rule(conn: Connection, encoder: str, tenant_id: int) -> ConsistencyRule | None:
    """The enrollment consistency rule from the calibration's (else the default's) raw-cosine
    genuine scores; None when neither exists."""
    row = latest_calibration(conn, encoder, tenant_id)
    if row is not None and "samples" in (row.results.get("none") or {}):
        return ConsistencyRule.from_samples(row.results["none"]["samples"], f"calibration {row.id}")
    measured = encoder_defaults(encoder)
    if measured is None:
        return None
    return ConsistencyRule.from_samples(measured["samples"], "built-in default")


def active_summary(conn: Connection, encoder: str, setting: str, point_name: str,
                   default_threshold: float | None, open_set_rate: float | None, *,
                   tenant_id: int) -> dict[str, Any]:
    """Everything the tenant's identify/verify judge by now, for ``GET /calibrations/active``."""
    verify = decision_basis(conn, encoder, point_name, setting, default_threshold,
                            tenant_id=tenant_id)
    row = latest_calibration(conn, encoder, tenant_id)
    out: dict[str, Any] = {
        "encoder": encoder, "calibrated": row is not None, "calibration_id": verify.calibration_id,
        "normalization": verify.normalization, "normalization_setting": setting,
        "normalization_reason": verify.normalization_reason, "operating_point": point_name,
        "verify": verify.point.to_dict(),
        "default": default_operating_point(encoder, default_threshold).to_dict(),
        "trusted": None, "warnings": [],
    }
    if row is not None:
        out["trusted"] = row.results.get("trusted")
        out["warnings"] = list(row.results.get("warnings", []))
        if "version" not in row.results:
            out["warnings"].append("stored by an older version: no trial samples; re-run "
                                   "`voiceprint calibrate` for bounds and open-set sizing")
    if open_set_rate is not None:
        n = enrolled_count(conn, encoder, tenant_id)
        out["identify"] = open_set_basis(conn, encoder, n, open_set_rate, setting,
                                         default_threshold, tenant_id=tenant_id).point.to_dict()
    else:  # identify judges by the same per-comparison point as verify
        out["identify"] = out["verify"]
    rule = consistency_rule(conn, encoder, tenant_id)
    out["enrollment_consistency"] = rule.to_dict() if rule else None
    return out
