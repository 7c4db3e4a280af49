"""HTTP layer: flask-smorest ``Api``, blueprints, access control and the JSON error format.

Order of a request: request id -> access decision and authentication
(:mod:`voiceprint.api.auth`) -> rate limit (:mod:`voiceprint.api.limits`)
-> the view -> audit record. Errors anywhere are JSON ``{code, status,
message, errors}``; messages never carry hosts, ports, server paths or
object reprs (those go to the log).
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, g, request
from flask_smorest import Api, abort
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import voiceprint.timing as timing
from voiceprint.api.audit_log import blp as audit_blp
from voiceprint.api.auth import Authenticator
from voiceprint.api.blueprint import IdConverter
from voiceprint.api.calibrations import blp as calibrations_blp
from voiceprint.api.context import record
from voiceprint.api.health import blp as health_blp
from voiceprint.api.limits import AuthFailureLimit, VerifyLockout, init_rate_limits
from voiceprint.api.recognition import blp as recognition_blp
from voiceprint.api.recordings import blp as recordings_blp, init_recordings
from voiceprint.api.sounds import blp as sounds_blp
from voiceprint.api.speakers import blp as speakers_blp
from voiceprint.errors import TooManyRequests, Unauthorized, VoiceprintError
from voiceprint.services.access import AccessService

log = logging.getLogger(__name__)


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
    config = app.config["VOICEPRINT"]
    app.url_map.converters["id"] = IdConverter
    api = VoiceprintApi(app)
    api.register_converter(IdConverter, lambda _c: {"type": "integer", "format": "int64",
                                                    "minimum": 1})
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "vpk_<prefix>_<secret>",
                       "description": "an API key from `voiceprint keys create`"})
    for blp in (speakers_blp, recognition_blp, recordings_blp, sounds_blp, calibrations_blp,
                audit_blp, health_blp):
        api.register_blueprint(blp)
    init_recordings(app)  # diarization jobs: worker pool, crash recovery

    # the first hook: every request gets a stopwatch (Server-Timing), refused ones too
    app.before_request(lambda: timing.start() and None)
    access = AccessService(app.extensions["voiceprint"])
    app.extensions["voiceprint_access"] = access
    # before the rate limiter, whose limits count per key
    app.extensions["voiceprint_auth"] = Authenticator(app, access, AuthFailureLimit(config))
    app.extensions["voiceprint_limiter"] = init_rate_limits(app, config)
    app.extensions["voiceprint_lockout"] = VerifyLockout(config)
    if config.CORS_ORIGINS:
        from flask_cors import CORS
        CORS(app, origins=list(config.CORS_ORIGINS), allow_headers=["Authorization",
                                                                    "Content-Type",
                                                                    "X-Request-ID"],
             expose_headers=["Retry-After", "X-Request-ID"])

    def as_http(status: int, message: str, errors: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Any:
        try:
            abort(status, message=message, errors=errors or {}, headers=headers)
        except HTTPException as exc:
            return api.handle_http_exception(exc)

    @app.after_request
    def _request_id(response: Any) -> Any:
        if getattr(g, "request_id", None):
            response.headers["X-Request-ID"] = g.request_id
        watch = timing.current()
        if watch is not None:
            response.headers["Server-Timing"] = watch.header()
        return response

    @app.errorhandler(VoiceprintError)
    def _voiceprint_error(err: VoiceprintError) -> Any:
        headers: dict[str, str] = {}
        if isinstance(err, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="voiceprint"'
        if isinstance(err, TooManyRequests):
            headers["Retry-After"] = str(err.retry_after)
        if err.status in (401, 403) and request.endpoint:
            _audit_refusal("auth_failed" if err.status == 401 else "forbidden", err.reason)
        if err.status >= 500:
            log.error("%s: %s", err.reason, err.message)
        return as_http(err.status, err.message, {"reason": err.reason, **err.details}, headers)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(err: RequestEntityTooLarge) -> Any:
        return as_http(413, f"the request body is larger than {config.MAX_REQUEST_BYTES} bytes",
                       {"reason": "request_too_large", "max_bytes": config.MAX_REQUEST_BYTES})

    @app.errorhandler(sa.exc.SQLAlchemyError)
    def _db_error(err: sa.exc.SQLAlchemyError) -> Any:
        log.exception("database error")
        return as_http(503, "the database is unavailable or failed; nothing was changed, "
                            "try again", {"reason": "database_error"})

    return api


def _audit_refusal(action: str, reason: str) -> None:
    try:
        record(action, reason, details={"endpoint": request.endpoint, "method": request.method})
    except Exception:  # the refusal stands even if the audit store is down
        log.exception("could not audit a refused request")
