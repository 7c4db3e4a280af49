"""/calibrations: the measured operating points (read-only over HTTP).

Calibrating reads a labelled folder on the server, which the HTTP API never
does: run ``voiceprint calibrate --data DIR`` on the host. Results are served
without the stored score samples (kept for open-set sizing and derived
points; they are large and base64).
"""
from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import abort

from voiceprint.api.context import runtime, tenant_id
from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.services.decisions import active_summary
from voiceprint.stores.records import calibrations

blp = VoiceprintBlueprint("calibrations", __name__, url_prefix="/calibrations",
                          description="Operating points measured by `voiceprint calibrate` "
                                      "(admin)")

POINT_DOC = ("an operating point: threshold (accept iff score >= threshold; cosine in [-1, 1] "
             "for normalization 'none', AS-norm units for 'asnorm'), calibrated, "
             "expected_far/expected_frr (point estimates, fractions), far_upper_95/frr_upper_95 "
             "(exact 95% upper bounds), resolvable (enough impostor trials for the FAR asked: "
             ">= 3/FAR), trials (counts), source")


class CalibrationSchema(ma.Schema):
    id = ma.fields.Integer()
    encoder = ma.fields.String()
    created_at = ma.fields.DateTime()
    source = ma.fields.String(metadata={"description": "name of the folder calibrated on"})
    cohort_count = ma.fields.Integer()
    results = ma.fields.Method("_results", metadata={"description": (
        "per normalisation ('none' = cosine, 'asnorm'): eer, min_dcf and points "
        "{name: {threshold, far, frr, expected_far, far_ci_95, frr_ci_95, trials, resolvable, "
        "target_far}}; normalization: which one is active and why (held-out folds); "
        "trusted, warnings, unresolved (how much more data each target FAR needs)")})

    def _results(self, row: Any) -> dict[str, Any]:
        results = dict(row.results or {})
        for norm in ("none", "asnorm"):
            if isinstance(results.get(norm), dict):
                results[norm] = {k: v for k, v in results[norm].items() if k != "samples"}
        return results


class ActiveSchema(ma.Schema):
    encoder = ma.fields.String()
    calibrated = ma.fields.Boolean(metadata={"description": "a calibration exists for the encoder"})
    calibration_id = ma.fields.Integer(allow_none=True, metadata={
        "description": "the calibration the verify point comes from (null: built-in default)"})
    trusted = ma.fields.Boolean(allow_none=True, metadata={
        "description": "the calibration met the trust rule (>= 10 speakers, >= 30 genuine, "
                       ">= 300 effective impostor trials)"})
    warnings = ma.fields.List(ma.fields.String())
    normalization = ma.fields.String(metadata={"description": "what decisions use now: none | asnorm"})
    normalization_setting = ma.fields.String(metadata={"description": "auto | none | asnorm"})
    normalization_reason = ma.fields.String()
    operating_point = ma.fields.String(metadata={"description": "the configured point name"})
    verify = ma.fields.Dict(metadata={"description": "the point verify judges by: " + POINT_DOC})
    identify = ma.fields.Dict(metadata={
        "description": "the point identify judges by: with an open-set target rate configured, "
                       "sized to the current number of enrolled speakers (open_set: n_enrolled, "
                       "target_rate, predicted_rate, rate_upper_95); else the verify point"})
    default = ma.fields.Dict(metadata={"description": "the uncalibrated point"})
    enrollment_consistency = ma.fields.Dict(allow_none=True, metadata={
        "description": "cosine thresholds that flag enrollment clips disagreeing with the others"})


def _columns() -> list[Any]:
    return [c for c in calibrations.c if c.name != "cohort"]


@blp.route("")
class Calibrations(MethodView):
    @requires("admin")
    @blp.response(200, CalibrationSchema(many=True))
    def get(self) -> Any:
        """The tenant's calibrations, newest first."""
        with runtime().engine.connect() as conn:
            return conn.execute(sa.select(*_columns()).where(calibrations.c.tenant_id == tenant_id())
                                .order_by(calibrations.c.id.desc())).all()


@blp.route("/active")
class Active(MethodView):
    @requires("admin")
    @blp.response(200, ActiveSchema)
    def get(self) -> Any:
        """Exactly what identify/verify judge by now for the active encoder."""
        rt = runtime()
        cfg = rt.config
        with rt.engine.connect() as conn:
            return active_summary(conn, cfg.SPEAKER_ENCODER, cfg.SCORE_NORMALIZATION,
                                  cfg.OPERATING_POINT, cfg.DEFAULT_THRESHOLD,
                                  cfg.OPEN_SET_FALSE_ID_RATE, tenant_id=tenant_id())


@blp.route("/<id:calibration_id>")
class Calibration(MethodView):
    @requires("admin")
    @blp.response(200, CalibrationSchema)
    def get(self, calibration_id: int) -> Any:
        """One of the tenant's calibrations."""
        with runtime().engine.connect() as conn:
            row = conn.execute(sa.select(*_columns())
                               .where(calibrations.c.id == calibration_id,
                                      calibrations.c.tenant_id == tenant_id())).first()
        if row is None:
            abort(404, message=f"calibration {calibration_id} does not exist")
        return row
