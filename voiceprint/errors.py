"""Errors that cross layers.

Services raise :class:`VoiceprintError` subclasses; the HTTP layer turns them
into flask-smorest style JSON (``code``, ``status``, ``message``, ``errors``)
and the CLI prints ``message``. Nothing in the library calls ``sys.exit``.
"""
from __future__ import annotations

from typing import Any


class VoiceprintError(Exception):
    """Base class. ``status`` is the HTTP status; ``reason`` a stable machine code."""

    status: int = 400
    reason: str = "bad_request"

    def __init__(self, message: str, *, reason: str | None = None,
                 status: int | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if status is not None:
            self.status = status
        self.details = details or {}


class AudioError(VoiceprintError):
    """The uploaded bytes are not usable audio (unreadable, empty, NaN, too long...)."""

    status = 422
    reason = "bad_audio"


class NotFound(VoiceprintError):
    status = 404
    reason = "not_found"


class Conflict(VoiceprintError):
    status = 409
    reason = "conflict"


class EncoderUnavailable(VoiceprintError):
    """A model cannot be loaded (weights missing, dependency not installed)."""

    status = 503
    reason = "encoder_unavailable"


class StoreError(VoiceprintError):
    """The vector store or the database failed; nothing was written."""

    status = 503
    reason = "store_unavailable"


class ConfigError(VoiceprintError):
    """A setting is invalid (raised at start-up, names the variable)."""

    status = 500
    reason = "bad_configuration"


class Unauthorized(VoiceprintError):
    """No valid API key (401)."""

    status = 401
    reason = "unauthorized"


class Forbidden(VoiceprintError):
    """The key is valid but lacks the scope (403)."""

    status = 403
    reason = "forbidden"


class TooManyRequests(VoiceprintError):
    """A rate limit or a verify lock-out (429); ``retry_after`` in seconds."""

    status = 429
    reason = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.details.setdefault("retry_after", self.retry_after)
