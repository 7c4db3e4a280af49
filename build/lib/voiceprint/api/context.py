"""What a view needs from the request it serves: the runtime, the caller, audit, uploads."""
from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import abort
from werkzeug.datastructures import FileStorage

from voiceprint.api.auth import principal
from voiceprint.api.limits import VerifyLockout
from voiceprint.runtime import Runtime
from voiceprint.services import audit
from voiceprint.services.intake import Upload

__all__ = ["runtime", "tenant_id", "principal", "verify_lockout", "upload_from", "record"]


def runtime() -> Runtime:
    return current_app.extensions["voiceprint"]  # type: ignore[no-any-return]


def tenant_id() -> int:
    """The calling principal's tenant: every service call is scoped to it."""
    return principal().tenant_id


def verify_lockout() -> VerifyLockout:
    return current_app.extensions["voiceprint_lockout"]  # type: ignore[no-any-return]


def upload_from(fs: Any) -> Upload:
    """A werkzeug ``FileStorage`` -> :class:`Upload`; anything else is a 422."""
    if not isinstance(fs, FileStorage):
        abort(422, message="expected a file upload (multipart/form-data)")
    return Upload(fs.read(), fs.filename or None)


def record(action: str, outcome: str, *, target_type: str | None = None,
           target_id: int | None = None, score: float | None = None,
           details: dict[str, Any] | None = None) -> None:
    """Audit ``action`` by the current caller (never audio, never keys)."""
    who = getattr(g, "principal", None)
    audit.record(runtime().engine, audit.AuditEvent(
        action=action, outcome=outcome, tenant_id=who.tenant_id if who else None,
        key_id=who.key_id if who else None, actor=who.actor if who else "anonymous",
        target_type=target_type, target_id=target_id, score=score,
        request_id=getattr(g, "request_id", None), details=details))
