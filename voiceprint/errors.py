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
