"""Speaker records: create, list, get, update, delete (rows, vectors and audio together)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.errors import Conflict, NotFound
from voiceprint.runtime import Runtime
from voiceprint.stores.records import from_blob, speakers, utcnow, utterances, voiceprints


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def _speaker_dicts(conn: Connection, rows: list[sa.Row[Any]], encoder: str,
                   min_speech_s: float) -> list[dict[str, Any]]:
    """Speaker records with their enrollment status (one voiceprint query per page)."""
    vps = {vp.speaker_id: vp for vp in conn.execute(
        sa.select(voiceprints.c.speaker_id, voiceprints.c.n_utterances, voiceprints.c.speech_s)
        .where(voiceprints.c.encoder == encoder,
               voiceprints.c.speaker_id.in_([r.id for r in rows] or [-1])))}
    out = []
    for row in rows:
        vp = vps.get(row.id)
        out.append({
            "id": row.id, "external_id": row.external_id, "name": row.name,
            "metadata": row.meta or {}, "created_at": row.created_at, "updated_at": row.updated_at,
            "enrollment": enrollment_status(float(vp.speech_s) if vp else 0.0,
                                            vp.n_utterances if vp else 0, encoder, min_speech_s),
        })
    return out


def _speaker_dict(conn: Connection, row: sa.Row[Any], encoder: str, min_speech_s: float) -> dict[str, Any]:
    return _speaker_dicts(conn, [row], encoder, min_speech_s)[0]


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
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.encoder = rt.config.SPEAKER_ENCODER
        self.min_speech = rt.config.ENROLL_MIN_SPEECH_SECONDS

    def _row(self, conn: Connection, speaker_id: int) -> sa.Row[Any]:
        row = conn.execute(sa.select(speakers).where(speakers.c.id == speaker_id)).first()
        if row is None:
            raise NotFound(f"speaker {speaker_id} does not exist")
        return row

    def create(self, external_id: str, name: str | None = None,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        now = utcnow()
        with self.rt.engine.begin() as conn:
            exists = conn.execute(sa.select(speakers.c.id)
                                  .where(speakers.c.external_id == external_id)).first()
            if exists is not None:
                raise Conflict(f"a speaker with external_id {external_id!r} already exists "
                               f"(id {exists.id})", reason="duplicate_external_id",
                               details={"id": exists.id})
            try:
                new_id = conn.execute(speakers.insert().values(
                    external_id=external_id, name=name, meta=metadata or {},
                    created_at=now, updated_at=now)).inserted_primary_key[0]
            except sa.exc.IntegrityError as exc:  # lost a race with the same external_id
                raise Conflict(f"a speaker with external_id {external_id!r} already exists",
                               reason="duplicate_external_id") from exc
            return _speaker_dict(conn, self._row(conn, int(new_id)), self.encoder, self.min_speech)

    def get(self, speaker_id: int) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            return _speaker_dict(conn, self._row(conn, speaker_id), self.encoder, self.min_speech)

    def find(self, external_id: str) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(speakers)
                               .where(speakers.c.external_id == external_id)).first()
            if row is None:
                raise NotFound(f"no speaker with external_id {external_id!r}")
            return _speaker_dict(conn, row, self.encoder, self.min_speech)

    def list(self, page: int = 1, page_size: int = 50, external_id: str | None = None) -> Page:
        query = sa.select(speakers).order_by(speakers.c.id)
        count = sa.select(sa.func.count()).select_from(speakers)
        if external_id is not None:
            query = query.where(speakers.c.external_id == external_id)
            count = count.where(speakers.c.external_id == external_id)
        with self.rt.engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(query.limit(page_size).offset((page - 1) * page_size)).all()
            items = _speaker_dicts(conn, list(rows), self.encoder, self.min_speech)
        return Page(items, total, page, page_size)

    def update(self, speaker_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"updated_at": utcnow()}
        if "name" in changes:
            values["name"] = changes["name"]
        if "metadata" in changes:
            values["meta"] = changes["metadata"]
        if "external_id" in changes:
            values["external_id"] = changes["external_id"]
        with self.rt.engine.begin() as conn:
            self._row(conn, speaker_id)
            if "external_id" in values:
                clash = conn.execute(sa.select(speakers.c.id).where(
                    speakers.c.external_id == values["external_id"],
                    speakers.c.id != speaker_id)).first()
                if clash is not None:
                    raise Conflict(f"external_id {values['external_id']!r} belongs to speaker "
                                   f"{clash.id}", reason="duplicate_external_id")
            conn.execute(speakers.update().where(speakers.c.id == speaker_id).values(**values))
            return _speaker_dict(conn, self._row(conn, speaker_id), self.encoder, self.min_speech)

    def delete(self, speaker_id: int) -> None:
        """Erase the speaker's rows, vectors (every encoder) and stored audio.

        Vectors are deleted inside the database transaction; if the commit
        then fails, they are put back from the rows read beforehand.
        """
        rt = self.rt
        with rt.engine.connect() as conn:
            self._row(conn, speaker_id)
            utts = conn.execute(sa.select(utterances.c.id, utterances.c.encoder,
                                          utterances.c.embedding, utterances.c.audio_key)
                                .where(utterances.c.speaker_id == speaker_id)).all()
            vps = conn.execute(sa.select(voiceprints)
                               .where(voiceprints.c.speaker_id == speaker_id)).all()
        removed: list[tuple[str, list[int], list[bytes]]] = []
        try:
            with rt.engine.begin() as conn:
                conn.execute(utterances.delete().where(utterances.c.speaker_id == speaker_id))
                conn.execute(voiceprints.delete().where(voiceprints.c.speaker_id == speaker_id))
                conn.execute(speakers.delete().where(speakers.c.id == speaker_id))
                for enc in sorted({u.encoder for u in utts}):
                    rows = [u for u in utts if u.encoder == enc]
                    name = rt.collection(enc, "utterances")
                    rt.vectors.delete(name, [u.id for u in rows])
                    removed.append((name, [u.id for u in rows], [u.embedding for u in rows]))
                for vp in vps:
                    if vp.enrolled:
                        name = rt.collection(vp.encoder, "speakers")
                        rt.vectors.delete(name, [speaker_id])
                        removed.append((name, [speaker_id], [vp.embedding]))
        except Exception:
            for name, ids, blobs in removed:  # put the vectors back: the rows are still there
                if rt.vectors.has_collection(name):
                    rt.vectors.upsert(name, ids, np.stack([from_blob(b) for b in blobs]),
                                      [speaker_id] * len(ids))
            raise
        for u in utts:
            if u.audio_key:
                rt.blobs.delete(u.audio_key)
