"""Liveness and readiness: database, vector store and model status."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint

from voiceprint.api import runtime
from voiceprint.api.schemas import HealthSchema

blp = Blueprint("health", __name__, url_prefix="/health", description="Service status")


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """Database, Milvus and encoder status (never loads a model)."""
        rt = runtime()
        try:
            with rt.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            db = "ok"
        except sa.exc.SQLAlchemyError as exc:
            db = f"error: {exc.__class__.__name__}"
        vectors: dict[str, Any] = {"uri_kind": "lite" if rt.vectors.is_lite else "server",
                                   "index": rt.vectors.index.index_type}
        return {"status": "ok" if db == "ok" else "degraded", "database": db,
                "vectors": vectors, "encoders": rt.models.status(),
                "speaker_encoder": rt.config.SPEAKER_ENCODER,
                "sound_encoder": rt.config.SOUND_ENCODER}
