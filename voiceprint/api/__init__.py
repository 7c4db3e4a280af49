"""HTTP layer: flask-smorest ``Api``, blueprints and the JSON error format."""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from flask_smorest import Api, abort
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException

from voiceprint.errors import VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.intake import Upload

log = logging.getLogger(__name__)


def runtime() -> Runtime:
    return current_app.extensions["voiceprint"]  # type: ignore[no-any-return]


def upload_from(fs: Any) -> Upload:
    """A werkzeug ``FileStorage`` -> :class:`Upload`; anything else is a 422."""
    if not isinstance(fs, FileStorage):
        abort(422, message="expected a file upload (multipart/form-data)")
    return Upload(fs.read(), fs.filename or None)


class VoiceprintApi(Api):
    """flask-smorest ``Api`` whose error bodies always carry a ``message``."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        payload, status, headers = super().handle_http_exception(error)
        if "message" not in payload:
            if payload.get("errors"):
                payload["message"] = ("the request is invalid: " +
                                      _summarise(payload["errors"]) + " (details in errors)")
            else:
                payload["message"] = error.description or error.name
        return payload, status, headers


def _summarise(errors: Any, prefix: str = "") -> str:
    """'json.external_id: Missing data...' from webargs' nested error dict."""
    if isinstance(errors, dict):
        return "; ".join(_summarise(v, f"{prefix}{k}." if not str(k).isdigit() else prefix)
                         for k, v in errors.items())
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return f"{prefix.rstrip('.')}: {' '.join(errors)}"
    return f"{prefix.rstrip('.')}: {errors}"


def init_api(app: Flask) -> Api:
    api = VoiceprintApi(app)
    from voiceprint.api.calibrations import blp as calibrations_blp
    from voiceprint.api.health import blp as health_blp
    from voiceprint.api.recognition import blp as recognition_blp
    from voiceprint.api.sounds import blp as sounds_blp
    from voiceprint.api.speakers import blp as speakers_blp

    api.register_blueprint(speakers_blp)
    api.register_blueprint(recognition_blp)
    api.register_blueprint(calibrations_blp)
    api.register_blueprint(health_blp)
    api.register_blueprint(sounds_blp)

    def as_http(status: int, message: str, errors: dict[str, Any] | None = None) -> Any:
        try:
            abort(status, message=message, errors=errors or {})
        except HTTPException as exc:
            return api.handle_http_exception(exc)

    @app.errorhandler(VoiceprintError)
    def _voiceprint_error(err: VoiceprintError) -> Any:
        return as_http(err.status, err.message, {"reason": err.reason, **err.details})

    @app.errorhandler(sa.exc.SQLAlchemyError)
    def _db_error(err: sa.exc.SQLAlchemyError) -> Any:
        log.exception("database error")
        return as_http(503, "the database is unavailable or failed; nothing was changed, "
                            "try again", {"reason": "database_error"})

    return api
