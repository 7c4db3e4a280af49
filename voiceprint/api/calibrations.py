"""/calibrations: the measured operating points (read-only over HTTP).

Calibrating reads a labelled folder on the server, which the HTTP API never
does: run ``voiceprint calibrate --data DIR`` on the host.
"""
from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import abort

from voiceprint.api import runtime, tenant_id
from voiceprint.api.auth import requires
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.services.decisions import default_operating_point
from voiceprint.stores.records import calibrations

blp = VoiceprintBlueprint("calibrations", __name__, url_prefix="/calibrations",
                description="Operating points measured by `voiceprint calibrate`")


class CalibrationSchema(ma.Schema):
    id = ma.fields.Integer()
    encoder = ma.fields.String()
    created_at = ma.fields.DateTime()
    source = ma.fields.String()
    cohort_count = ma.fields.Integer()
    results = ma.fields.Dict(metadata={"description": (
        "per normalisation ('none' = cosine, 'asnorm'): eer, min_dcf and points "
        "{name: {threshold, far, frr}} measured on held-out trials")})


class ActiveSchema(ma.Schema):
    encoder = ma.fields.String()
    calibrated = ma.fields.Boolean()
    normalization = ma.fields.String()
    operating_point = ma.fields.String()
    calibration = ma.fields.Nested(CalibrationSchema, allow_none=True)
    default = ma.fields.Dict()


def _columns() -> list[Any]:
    return [c for c in calibrations.c if c.name != "cohort"]


@blp.route("")
class Calibrations(MethodView):
    @requires("admin")
    @blp.response(200, CalibrationSchema(many=True))
    def get(self) -> Any:
        """All calibrations, newest first."""
        with runtime().engine.connect() as conn:
            return conn.execute(sa.select(*_columns()).where(calibrations.c.tenant_id == tenant_id())
                                .order_by(calibrations.c.id.desc())).all()


@blp.route("/active")
class Active(MethodView):
    @requires("admin")
    @blp.response(200, ActiveSchema)
    def get(self) -> Any:
        """What identify/verify judge by now for the active encoder."""
        rt = runtime()
        enc = rt.config.SPEAKER_ENCODER
        with rt.engine.connect() as conn:
            row = conn.execute(sa.select(*_columns()).where(calibrations.c.encoder == enc,
                                                            calibrations.c.tenant_id == tenant_id())
                               .order_by(calibrations.c.id.desc()).limit(1)).first()
        return {"encoder": enc, "calibrated": row is not None,
                "normalization": rt.config.SCORE_NORMALIZATION,
                "operating_point": rt.config.OPERATING_POINT, "calibration": row,
                "default": default_operating_point(enc, rt.config.DEFAULT_THRESHOLD).to_dict()}


@blp.route("/<id:calibration_id>")
class Calibration(MethodView):
    @requires("admin")
    @blp.response(200, CalibrationSchema)
    def get(self, calibration_id: int) -> Any:
        with runtime().engine.connect() as conn:
            row = conn.execute(sa.select(*_columns())
                               .where(calibrations.c.id == calibration_id,
                                      calibrations.c.tenant_id == tenant_id())).first()
        if row is None:
            abort(404, message=f"calibration {calibration_id} does not exist")
        return row
