"""Speaker records of one tenant: create, list, get, update, delete (rows, vectors, audio together).

Every query is scoped to the tenant: another tenant's speaker id answers
404 exactly like an id that never existed, so ids do not leak.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.errors import Conflict, NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.stores.records import speakers, utcnow, utterances, voiceprints
from voiceprint.stores.types import MAX_ID, from_blob
from voiceprint.stores.unit_of_work import UnitOfWork


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def speaker_row(conn: Connection, tenant_id: int, speaker_id: int, *,
                lock: bool = False) -> sa.Row[Any]:
    """The tenant's speaker ``speaker_id``; :class:`NotFound` (404) otherwise.

    ``lock`` takes a row lock (MySQL/PostgreSQL) so that concurrent writes to
    one speaker serialise.
    """
    query = sa.select(speakers).where(speakers.c.id == speaker_id,
                                      speakers.c.tenant_id == tenant_id)
    row = conn.execute(query.with_for_update() if lock else query).first() \
        if 0 < speaker_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"speaker {speaker_id} does not exist", reason="speaker_not_found")
    return row


def check_metadata(meta: Any, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """Speaker metadata: a JSON object of bounded size and depth with finite numbers only."""
    if not isinstance(meta, dict):
        raise VoiceprintError("metadata must be a JSON object", reason="bad_metadata", status=422)

    def walk(value: Any, depth: int) -> None:
        if depth > max_depth:
            raise VoiceprintError(f"metadata is nested deeper than {max_depth} levels",
                                  reason="bad_metadata", status=422)
        if isinstance(value, float) and not math.isfinite(value):
            raise VoiceprintError("metadata numbers must be finite (no NaN or Infinity)",
                                  reason="bad_metadata", status=422)
        children = value.values() if isinstance(value, dict) else (
            value if isinstance(value, list) else ())
        for child in children:
            walk(child, depth + 1)

    walk(meta, 1)
    size = len(json.dumps(meta, allow_nan=False, separators=(",", ":")).encode())
    if size > max_bytes:
        raise VoiceprintError(f"metadata is {size} bytes as JSON; the limit is {max_bytes}",
                              reason="bad_metadata", status=413)
    return meta


def enrollment_status(speech_s: float, n_utterances: int, encoder: str,
                      min_speech_s: float) -> dict[str, Any]:
    """``enrolled`` once net speech reaches ``min_speech_s`` seconds; says how much is missing."""
    return {
        "encoder": encoder,
        "status": "enrolled" if speech_s >= min_speech_s else "enrolling",
        "utterances": n_utterances,
        "speech_seconds": round(speech_s, 3),
        "required_speech_seconds": min_speech_s,
        "remaining_speech_seconds": round(max(0.0, min_speech_s - speech_s), 3),
    }


class SpeakerService:
    def __init__(self, rt: Runtime, tenant_id: int) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.encoder = rt.config.SPEAKER_ENCODER
        self.min_speech = rt.config.ENROLL_MIN_SPEECH_SECONDS

    def _dicts(self, conn: Connection, rows: list[sa.Row[Any]]) -> list[dict[str, Any]]:
        """Speaker records with their enrollment status (one voiceprint query per page)."""
        vps = {vp.speaker_id: vp for vp in conn.execute(
            sa.select(voiceprints.c.speaker_id, voiceprints.c.n_utterances,
                      voiceprints.c.speech_s)
            .where(voiceprints.c.encoder == self.encoder,
                   voiceprints.c.speaker_id.in_([r.id for r in rows] or [-1])))}
        out = []
        for row in rows:
            vp = vps.get(row.id)
            out.append({
                "id": row.id, "external_id": row.external_id, "name": row.name,
                "metadata": row.meta or {}, "created_at": row.created_at,
                "updated_at": row.updated_at,
                "enrollment": enrollment_status(float(vp.speech_s) if vp else 0.0,
                                                vp.n_utterances if vp else 0, self.encoder,
                                                self.min_speech),
            })
        return out

    def _metadata(self, meta: Any) -> dict[str, Any]:
        cfg = self.rt.config
        return check_metadata(meta, cfg.METADATA_MAX_BYTES, cfg.METADATA_MAX_DEPTH)

    def create(self, external_id: str, name: str | None = None,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = self._metadata(metadata or {})
        now = utcnow()
        with self.rt.engine.begin() as conn:
            exists = conn.execute(sa.select(speakers.c.id).where(
                speakers.c.tenant_id == self.tenant_id,
                speakers.c.external_id == external_id)).first()
            if exists is not None:
                raise Conflict(f"a speaker with external_id {external_id!r} already exists "
                               f"(id {exists.id})", reason="duplicate_external_id",
                               details={"id": exists.id})
            try:
                new_id = conn.execute(speakers.insert().values(
                    tenant_id=self.tenant_id, external_id=external_id, name=name, meta=meta,
                    created_at=now, updated_at=now)).inserted_primary_key[0]
            except sa.exc.IntegrityError as exc:  # lost a race with the same external_id?
                if not self._external_id_taken(external_id):
                    raise
                raise Conflict(f"a speaker with external_id {external_id!r} already exists",
                               reason="duplicate_external_id") from exc
            return self._dicts(conn, [speaker_row(conn, self.tenant_id, int(new_id))])[0]

    def _external_id_taken(self, external_id: str) -> bool:
        with self.rt.engine.connect() as conn:
            return conn.execute(sa.select(speakers.c.id).where(
                speakers.c.tenant_id == self.tenant_id,
                speakers.c.external_id == external_id)).first() is not None

    def get(self, speaker_id: int) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            return self._dicts(conn, [speaker_row(conn, self.tenant_id, speaker_id)])[0]

    def find(self, external_id: str) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(speakers).where(
                speakers.c.tenant_id == self.tenant_id,
                speakers.c.external_id == external_id)).first()
            if row is None:
                raise NotFound(f"no speaker with external_id {external_id!r}",
                               reason="speaker_not_found")
            return self._dicts(conn, [row])[0]

    def list(self, page: int = 1, page_size: int = 50, external_id: str | None = None,
             q: str | None = None) -> Page:
        """A page of speakers by id; ``external_id`` matches exactly, ``q`` is a
        substring of the external id (exact case) or of the name (any case)."""
        cond = [speakers.c.tenant_id == self.tenant_id]
        if external_id is not None:
            cond.append(speakers.c.external_id == external_id)
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            cond.append(sa.or_(speakers.c.external_id.like(pattern, escape="\\"),
                               sa.func.lower(speakers.c.name).like(pattern.lower(), escape="\\")))
        with self.rt.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(speakers)
                                     .where(*cond)).scalar_one())
            rows = conn.execute(sa.select(speakers).where(*cond).order_by(speakers.c.id)
                                .limit(page_size).offset((page - 1) * page_size)).all()
            items = self._dicts(conn, list(rows))
        return Page(items, total, page, page_size)

    def utterances(self, speaker_id: int) -> dict[str, Any]:
        """The speaker's stored clips (active encoder), oldest first; never the audio."""
        with self.rt.engine.connect() as conn:
            speaker_row(conn, self.tenant_id, speaker_id)
            rows = conn.execute(sa.select(
                utterances.c.id, utterances.c.filename, utterances.c.duration_s,
                utterances.c.speech_s, utterances.c.sample_rate, utterances.c.created_at)
                .where(utterances.c.speaker_id == speaker_id,
                       utterances.c.encoder == self.encoder)
                .order_by(utterances.c.id)).all()
        items = [{"id": r.id, "filename": r.filename, "duration_s": round(r.duration_s, 3),
                  "speech_seconds": round(r.speech_s, 3), "sample_rate": r.sample_rate,
                  "created_at": r.created_at} for r in rows]
        return {"speaker_id": speaker_id, "encoder": self.encoder, "items": items,
                "total": len(items)}

    def update(self, speaker_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if "name" in changes:
            values["name"] = changes["name"]
        if "metadata" in changes:
            values["meta"] = self._metadata(changes["metadata"])
        if "external_id" in changes:
            values["external_id"] = changes["external_id"]
        with self.rt.engine.begin() as conn:
            speaker_row(conn, self.tenant_id, speaker_id, lock=True)
            if "external_id" in values:
                clash = conn.execute(sa.select(speakers.c.id).where(
                    speakers.c.tenant_id == self.tenant_id,
                    speakers.c.external_id == values["external_id"],
                    speakers.c.id != speaker_id)).first()
                if clash is not None:
                    raise Conflict(f"external_id {values['external_id']!r} belongs to speaker "
                                   f"{clash.id}", reason="duplicate_external_id")
            conn.execute(speakers.update().where(speakers.c.id == speaker_id).values(**values))
            return self._dicts(conn, [speaker_row(conn, self.tenant_id, speaker_id)])[0]

    def delete(self, speaker_id: int) -> None:
        """Erase the speaker's rows, vectors (every encoder) and every audio file of theirs."""
        rt = self.rt
        with UnitOfWork(rt.engine, rt.vectors, rt.blobs) as uow:
            speaker_row(uow.conn, self.tenant_id, speaker_id, lock=True)
            utts = uow.conn.execute(sa.select(utterances.c.id, utterances.c.encoder,
                                              utterances.c.embedding, utterances.c.audio_key)
                                    .where(utterances.c.speaker_id == speaker_id)).all()
            vps = uow.conn.execute(sa.select(voiceprints)
                                   .where(voiceprints.c.speaker_id == speaker_id)).all()
            uow.conn.execute(utterances.delete().where(utterances.c.speaker_id == speaker_id))
            uow.conn.execute(voiceprints.delete().where(voiceprints.c.speaker_id == speaker_id))
            uow.conn.execute(speakers.delete().where(speakers.c.id == speaker_id))
            for enc in sorted({u.encoder for u in utts}):
                rows = [u for u in utts if u.encoder == enc]
                uow.delete_vectors(rt.collection(enc, "utterances"), [u.id for u in rows],
                                   _stack([u.embedding for u in rows]), [speaker_id] * len(rows),
                                   tenant=self.tenant_id)
            for vp in vps:
                if vp.enrolled:
                    uow.delete_vectors(rt.collection(vp.encoder, "speakers"), [speaker_id],
                                       _stack([vp.embedding]), [speaker_id],
                                       tenant=self.tenant_id)
            for u in utts:
                if u.audio_key:
                    uow.delete_file_after_commit(u.audio_key)
            # files of this speaker that no row names (an enrollment killed mid-way)
            for key in rt.blobs.keys(f"utterances/{speaker_id}/", include_temp=True):
                uow.delete_file_after_commit(key)


def _stack(blobs: list[bytes]) -> np.ndarray:
    return np.stack([from_blob(b) for b in blobs])
