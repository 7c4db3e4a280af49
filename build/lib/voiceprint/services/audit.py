"""The audit log: who did what to which speaker or sound, with what outcome.

One row per security-relevant action (enroll, identify, verify, deletes,
library drops, key changes, lock-outs, refused keys): the tenant and key
(or ``cli``/``open``), the action, the target, the outcome (``ok``,
``accepted``/``rejected`` for verify, ``identified``/``unknown`` for
identify, or the error reason), the score on its stated scale, the request
id and a few details. Audio is never logged, nor are keys.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from voiceprint.stores.records import audit_log, utcnow

log = logging.getLogger(__name__)

ACTIONS = ("enroll", "identify", "verify", "speaker_create", "speaker_update", "speaker_delete",
           "sound_insert", "sound_delete", "library_drop", "calibrate", "key_create",
           "key_revoke", "auth_failed", "forbidden", "rate_limited", "verify_locked",
           "audit_export", "diarize")


@dataclass(frozen=True)
class AuditEvent:
    action: str
    outcome: str
    tenant_id: int | None = None
    key_id: int | None = None
    actor: str = "anonymous"
    target_type: str | None = None
    target_id: int | None = None
    score: float | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = None


def record(engine: Engine, event: AuditEvent) -> None:
    """Append ``event``. A failing audit write is logged loudly and raised."""
    try:
        with engine.begin() as conn:
            conn.execute(audit_log.insert().values(
                created_at=utcnow(), tenant_id=event.tenant_id, key_id=event.key_id,
                actor=event.actor[:64], action=event.action[:32],
                target_type=event.target_type, target_id=event.target_id,
                outcome=event.outcome[:32],
                score=None if event.score is None else float(event.score),
                request_id=(event.request_id or "")[:64] or None, details=event.details))
    except Exception:
        log.exception("could not write the audit record %s", event)
        raise


def query(engine: Engine, *, tenant_id: int | None, page: int = 1, page_size: int = 100,
          action: str | None = None, target_type: str | None = None,
          target_id: int | None = None, since: dt.datetime | None = None,
          until: dt.datetime | None = None) -> dict[str, Any]:
    """A page of audit records, newest first (``tenant_id`` None: every tenant)."""
    cond = []
    if tenant_id is not None:
        cond.append(audit_log.c.tenant_id == tenant_id)
    if action:
        cond.append(audit_log.c.action == action)
    if target_type:
        cond.append(audit_log.c.target_type == target_type)
    if target_id is not None:
        cond.append(audit_log.c.target_id == target_id)
    if since is not None:
        cond.append(audit_log.c.created_at >= since)
    if until is not None:
        cond.append(audit_log.c.created_at < until)
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(audit_log)
                                 .where(*cond)).scalar_one())
        rows = conn.execute(sa.select(audit_log).where(*cond).order_by(audit_log.c.id.desc())
                            .limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": [dict(r._mapping) for r in rows], "total": total, "page": page,
            "page_size": page_size}


def export(engine: Engine, *, tenant_id: int | None = None,
           batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every record (oldest first), streamed in batches (the CLI writes JSON lines)."""
    last = 0
    while True:
        cond = [audit_log.c.id > last]
        if tenant_id is not None:
            cond.append(audit_log.c.tenant_id == tenant_id)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).where(*cond).order_by(audit_log.c.id)
                                .limit(batch)).all()
        if not rows:
            return
        for r in rows:
            yield dict(r._mapping)
        last = int(rows[-1].id)
