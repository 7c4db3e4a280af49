"""Liveness and readiness (public): database, vector store and the configured models.

``GET /health`` always answers 200 with ``status`` ``ok`` or ``degraded``;
``GET /health/ready`` answers 503 when degraded, for load balancers and
orchestrators. Neither names hosts, ports or paths (the log has the details).
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView

from voiceprint.api.context import runtime
from voiceprint.api.auth import public
from voiceprint.api.blueprint import VoiceprintBlueprint
from voiceprint.api.schemas import HealthSchema

log = logging.getLogger(__name__)
blp = VoiceprintBlueprint("health", __name__, url_prefix="/health", description="Service status")


def _status() -> dict[str, Any]:
    rt = runtime()
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        db = "ok"
    except sa.exc.SQLAlchemyError:
        log.exception("health: database unavailable")
        db = "unavailable"
    try:
        rt.vectors.collections(rt.config.MILVUS_COLLECTION_PREFIX)
        vectors = "ok"
    except Exception:  # a health check reports, it never fails
        log.exception("health: vector store unavailable")
        vectors = "unavailable"
    state = rt.models.status()
    encoders = {}
    for name in (rt.config.SPEAKER_ENCODER, rt.config.SOUND_ENCODER):
        s = state.get(name)  # absent: not asked for yet (VOICEPRINT_PRELOAD_MODELS=0)
        encoders[name] = "not loaded" if s is None else ("ok" if s["loaded"] else "unavailable")
    auth = current_app.extensions["voiceprint_access"]
    degraded = db != "ok" or vectors != "ok" or "unavailable" in encoders.values()
    return {"status": "degraded" if degraded else "ok", "database": db, "vectors": vectors,
            "encoders": encoders, "speaker_encoder": rt.config.SPEAKER_ENCODER,
            "sound_encoder": rt.config.SOUND_ENCODER,
            "auth": "required" if rt.config.AUTH == "required" or auth.any_active() else "open"}


@blp.route("")
class Health(MethodView):
    @public
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """Liveness and component status (never loads a model)."""
        return _status()


@blp.route("/ready")
class Ready(MethodView):
    @public
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="a component is unavailable")
    def get(self) -> Any:
        """Readiness: 503 while the database, Milvus or a configured model is unavailable."""
        status = _status()
        return status, 200 if status["status"] == "ok" else 503
