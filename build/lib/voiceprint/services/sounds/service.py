"""Similar-sound search within one tenant: insert, search, read, delete sounds.

Design (the README's "Sound search" section says the same):

* **Embeddings**: the library's sound encoder; uploads are decoded,
  down-mixed and resampled to the encoder's rate. Rows are L2-normalised.
* **Metric and index**: L2 on L2-normalised vectors, as everywhere in
  voiceprint: the ranking equals cosine ranking and a score is reported as
  cosine similarity ``1 - d/2`` in [-1, 1] (1 = identical embedding). HNSW
  (M 16, efConstruction 200, ef = max(64, k)): no training step (IVF needs
  data to train its centroids, bad for a library that starts empty and grows
  a file at a time), and inserts are searchable at once.
* **Deduplication**: a file whose bytes (SHA-256) are already in the library
  is reported as a duplicate of the stored sound, never stored twice (a
  unique constraint backs the check). Re-encoded copies are not byte
  duplicates; they are what search finds.
* **Tag filters**: tags are ``key -> value`` strings in ``sound_tags``
  (indexed). A filtered search first counts the matching sounds in the
  database: up to :data:`EXACT_FILTER_MAX` of them are ranked exactly from
  their stored embeddings; more are searched in Milvus with an over-fetch
  proportional to how rare the match is (capped at Milvus' 16384) and
  filtered by the database, so a very rare tag in a very large library may
  return fewer than ``top_k`` results.
* **Atomic writes**: rows, audio files and vectors of a batch are one
  :class:`~voiceprint.stores.unit_of_work.UnitOfWork`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.audio import DecodedAudio, decode_bytes, resample
from voiceprint.encoders.base import Encoder
from voiceprint.errors import AudioError, Conflict, NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.scoring.cosine import cosine_matrix
from voiceprint.services.intake import Upload, check_request_audio, limits
from voiceprint.services.sounds.catalog import Library, LibraryCatalog, library_of
from voiceprint.services.sounds.formats import (DEFAULT_LIBRARY, SILENT_PEAK_DBFS, TOP_K_MAX,
                                                check_tags, content_type, peak_dbfs,
                                                stored_suffix)
from voiceprint.stores.records import sound_libraries, sound_tags, sounds, utcnow
from voiceprint.stores.types import MAX_ID, from_blob, to_blob
from voiceprint.stores.unit_of_work import UnitOfWork
from voiceprint.stores.vectors import MAX_TOP_K as MILVUS_MAX_TOP_K

#: a filtered search ranks up to this many matching sounds exactly, from the database
EXACT_FILTER_MAX = 1000
#: clips resampled and embedded together (bounds memory for long clips)
EMBED_CHUNK = 16
#: extra vectors fetched so hits whose row is gone (orphans) do not shorten results
ORPHAN_SLACK = 8


@dataclass
class ItemOutcome:
    """What happened to one uploaded file: ``inserted``, ``duplicate`` or ``rejected``."""

    index: int
    filename: str | None
    status: str = "rejected"
    id: int | None = None
    name: str | None = None
    duplicate_of: dict[str, Any] | None = None
    duration_s: float | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InsertResult:
    library: str
    items: list[ItemOutcome]

    def _with(self, status: str) -> list[ItemOutcome]:
        return [i for i in self.items if i.status == status]

    @property
    def inserted(self) -> list[ItemOutcome]:
        return self._with("inserted")

    @property
    def duplicates(self) -> list[ItemOutcome]:
        return self._with("duplicate")

    @property
    def rejected(self) -> list[ItemOutcome]:
        return self._with("rejected")


@dataclass
class SearchResult:
    library: str
    top_k: int
    results: list[dict[str, Any]]
    query: dict[str, Any]
    filter: dict[str, str]
    strategy: str  # "ann", "exact" (filtered, few matches) or "ann+filter"


@dataclass
class _Prepared:
    out: ItemOutcome
    upload: Upload
    audio: DecodedAudio
    name: str
    tags: dict[str, str]


_COLUMNS = [c for c in sounds.c if c.name != "embedding"]


class SoundService:
    def __init__(self, rt: Runtime, tenant_id: int) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.catalog = LibraryCatalog(rt, tenant_id)

    def encoder(self, lib: Library) -> Encoder:
        return self.rt.models.get(lib.encoder)

    # insert ---------------------------------------------------------------------
    def insert(self, uploads: Sequence[Upload], library: str = DEFAULT_LIBRARY,
               tags: dict[str, Any] | None = None, names: Sequence[str | None] | None = None,
               *, max_files: int | None = None) -> InsertResult:
        """Store new sounds; duplicates (same bytes already in the library) are reported.

        ``tags`` apply to every file; ``names`` (parallel to ``uploads``)
        default to the file name without suffix. ``max_files`` defaults to
        ``MAX_CLIPS_PER_REQUEST`` (413 beyond).
        """
        cfg = self.rt.config
        limit = cfg.MAX_CLIPS_PER_REQUEST if max_files is None else max_files
        if not uploads:
            raise VoiceprintError("send at least one audio file in the 'files' field",
                                  reason="no_files", status=422)
        if len(uploads) > limit:
            raise VoiceprintError(f"at most {limit} files per request; got {len(uploads)}",
                                  reason="too_many_files", status=413)
        tags = check_tags(tags)
        if names is not None and len(names) != len(uploads):
            raise VoiceprintError("give one name per file", reason="bad_names", status=422)
        check_request_audio(uploads, cfg)
        lib = self.catalog.library(library, create=True)
        encoder = self.encoder(lib)
        outcomes, prepared = self._prepare(lib, uploads, tags, names)
        if prepared:
            vectors = np.concatenate([encoder.embed_batch(
                [resample(p.audio.samples, p.audio.sample_rate, encoder.sample_rate)
                 for p in prepared[start:start + EMBED_CHUNK]])
                for start in range(0, len(prepared), EMBED_CHUNK)])
            self._store(lib, encoder.name, prepared, vectors)
        for out in outcomes:  # a repeat within the request points at what its first copy became
            if out.duplicate_of and "index" in out.duplicate_of:
                first = outcomes[out.duplicate_of["index"]]
                out.id, out.name = first.id, first.name
                out.duplicate_of = {"id": first.id, "name": first.name, "index": first.index}
        return InsertResult(lib.name, outcomes)

    def _decode(self, upload: Upload) -> DecodedAudio:
        audio = decode_bytes(upload.data, limits=limits(self.rt.config), filename=upload.filename)
        level = peak_dbfs(audio.samples)
        if level < SILENT_PEAK_DBFS:
            what = f"'{upload.filename}'" if upload.filename else "the upload"
            raise AudioError(f"{what} is silent (peak {max(level, -200.0):.0f} dBFS); there is "
                             "nothing to search for", reason="silent",
                             details={"peak_dbfs": None if level == -math.inf else round(level, 1)})
        return audio

    def _prepare(self, lib: Library, uploads: Sequence[Upload], tags: dict[str, str],
                 names: Sequence[str | None] | None) -> tuple[list[ItemOutcome], list[_Prepared]]:
        """Decode and de-duplicate (against the library and within the request)."""
        outcomes = [ItemOutcome(i, up.filename) for i, up in enumerate(uploads)]
        shas = [up.sha256 for up in uploads]
        with self.rt.engine.connect() as conn:
            existing = {r.content_sha256: r for r in conn.execute(
                sa.select(sounds.c.id, sounds.c.name, sounds.c.content_sha256).where(
                    sounds.c.library_id == lib.id, sounds.c.content_sha256.in_(sorted(set(shas)))))}
        first_index: dict[str, int] = {}
        good: list[_Prepared] = []
        for i, (up, sha) in enumerate(zip(uploads, shas)):
            out = outcomes[i]
            if sha in existing:
                row = existing[sha]
                out.status, out.id, out.name = "duplicate", int(row.id), row.name
                out.duplicate_of = {"id": int(row.id), "name": row.name}
                continue
            if sha in first_index:
                out.status = "duplicate"
                out.duplicate_of = {"index": first_index[sha]}
                continue
            try:
                audio = self._decode(up)
            except AudioError as exc:
                out.reasons = [{"reason": exc.reason, "message": exc.message, **exc.details}]
                continue
            first_index[sha] = i
            out.duration_s = round(audio.duration_s, 3)
            name = (names[i] if names is not None else None) or PurePath(up.filename or "").stem \
                or f"sound-{sha[:12]}"
            good.append(_Prepared(out, up, audio, name[:255], tags))
        return outcomes, good

    def _store(self, lib: Library, encoder: str, items: list[_Prepared],
               vectors: np.ndarray) -> None:
        """Rows, audio files and vectors of ``items``, all or nothing."""
        rt = self.rt
        if vectors.shape[1] != lib.dim:
            raise Conflict(f"library {lib.name!r} holds {lib.dim}-dim vectors but {encoder} "
                           f"gives {vectors.shape[1]}", reason="dimension_mismatch")
        self.catalog.ready(lib)
        ids: list[int] = []
        try:
            with UnitOfWork(rt.engine, rt.vectors, rt.blobs) as uow:
                conn = uow.conn
                if conn.execute(sa.select(sound_libraries.c.id)
                                .where(sound_libraries.c.id == lib.id)).first() is None:
                    raise NotFound(f"sound library {lib.name!r} was dropped meanwhile",
                                   reason="library_not_found")
                now = utcnow()
                for item in items:
                    a, up = item.audio, item.upload
                    sid = int(conn.execute(sounds.insert().values(
                        library_id=lib.id, name=item.name, filename=up.filename,
                        content_sha256=up.sha256, size_bytes=len(up.data),
                        duration_s=a.duration_s, sample_rate=a.sample_rate, channels=a.channels,
                        format=a.format[:16], encoder=encoder, embedding=to_blob(vectors[len(ids)]),
                        audio_key=None, created_at=now)).inserted_primary_key[0])
                    ids.append(sid)
                    key = f"sounds/{lib.id}/{sid}{stored_suffix(a.format, up.filename)}"
                    uow.put_file(key, up.data)
                    conn.execute(sounds.update().where(sounds.c.id == sid).values(audio_key=key))
                    if item.tags:
                        conn.execute(sound_tags.insert(), [
                            {"sound_id": sid, "key": k, "value": v} for k, v in item.tags.items()])
                uow.upsert_vectors(lib.collection, ids, vectors, [lib.id] * len(ids),
                                   tenant=self.tenant_id)
        except sa.exc.IntegrityError as exc:
            raise Conflict("a concurrent request changed the library (stored some of the same "
                           "audio, or dropped it); nothing was stored, send the files again",
                           reason="concurrent_change") from exc
        for item, sid in zip(items, ids):
            item.out.status, item.out.id, item.out.name = "inserted", sid, item.name

    # read -------------------------------------------------------------------------
    def _row(self, conn: Connection, sound_id: int, *columns: Any) -> Any:
        """The tenant's sound ``sound_id`` joined with its library; 404 otherwise."""
        cols = columns or (*_COLUMNS,)
        row = conn.execute(sa.select(*cols, sound_libraries.c.name.label("library"))
                           .join(sound_libraries, sound_libraries.c.id == sounds.c.library_id)
                           .where(sounds.c.id == sound_id,
                                  sound_libraries.c.tenant_id == self.tenant_id)).first() \
            if 0 < sound_id <= MAX_ID else None
        if row is None:
            raise NotFound(f"sound {sound_id} does not exist", reason="sound_not_found")
        return row

    def _tags_of(self, conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {int(i): {} for i in ids}
        if ids:
            for r in conn.execute(sa.select(sound_tags).where(sound_tags.c.sound_id.in_(list(ids)))):
                out[int(r.sound_id)][r.key] = r.value
        return out

    @staticmethod
    def _record(row: Any, tags: dict[str, str], library: str) -> dict[str, Any]:
        return {"id": int(row.id), "library": library, "name": row.name, "filename": row.filename,
                "content_sha256": row.content_sha256, "size_bytes": int(row.size_bytes),
                "duration_s": round(float(row.duration_s), 3), "sample_rate": int(row.sample_rate),
                "channels": int(row.channels), "format": row.format,
                "content_type": content_type(row.format), "encoder": row.encoder, "tags": tags,
                "created_at": row.created_at}

    def get(self, sound_id: int) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            row = self._row(conn, sound_id)
            return self._record(row, self._tags_of(conn, [sound_id])[sound_id], row.library)

    def audio(self, sound_id: int) -> tuple[Path, str, str]:
        """(path of the stored original, content type, download name)."""
        with self.rt.engine.connect() as conn:
            row = self._row(conn, sound_id, sounds.c.audio_key, sounds.c.format,
                            sounds.c.filename, sounds.c.name)
        if not row.audio_key or not self.rt.blobs.exists(row.audio_key):
            raise NotFound(f"the audio of sound {sound_id} is missing from the store",
                           reason="audio_missing")
        path = self.rt.blobs.path(row.audio_key)
        name = PurePath(row.filename).name if row.filename else f"{row.name}{path.suffix}"
        return path, content_type(row.format), name

    def _matching(self, lib: Library, tags: dict[str, str]) -> sa.Select[Any]:
        """ids of ``lib``'s sounds carrying every tag in ``tags``."""
        q = sa.select(sounds.c.id).where(sounds.c.library_id == lib.id)
        for k, v in tags.items():
            q = q.where(sounds.c.id.in_(sa.select(sound_tags.c.sound_id).where(
                sound_tags.c.key == k, sound_tags.c.value == v)))
        return q

    def list(self, library: str = DEFAULT_LIBRARY, page: int = 1, page_size: int = 50,
             tags: dict[str, str] | None = None) -> dict[str, Any]:
        lib = self.catalog.library(library)
        ids = self._matching(lib, check_tags(tags)).subquery()
        with self.rt.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(ids)).scalar_one())
            rows = conn.execute(sa.select(*_COLUMNS).where(sounds.c.id.in_(sa.select(ids.c.id)))
                                .order_by(sounds.c.id).limit(page_size)
                                .offset((page - 1) * page_size)).all()
            tag_map = self._tags_of(conn, [r.id for r in rows])
        return {"library": lib.name, "total": total, "page": page, "page_size": page_size,
                "items": [self._record(r, tag_map[int(r.id)], lib.name) for r in rows]}

    def count(self, library: str = DEFAULT_LIBRARY) -> dict[str, Any]:
        """Sounds (database rows) and vectors (Milvus) in ``library``; they should agree."""
        lib = self.catalog.library(library)
        with self.rt.engine.connect() as conn:
            n = int(conn.execute(sa.select(sa.func.count()).select_from(sounds)
                                 .where(sounds.c.library_id == lib.id)).scalar_one())
        return {"library": lib.name, "sounds": n,
                "vectors": self.rt.vectors.count(self.catalog.ready(lib).collection)}

    # search -------------------------------------------------------------------------
    def search(self, upload: Upload, library: str = DEFAULT_LIBRARY, top_k: int = 10,
               tags: dict[str, str] | None = None) -> SearchResult:
        """The ``top_k`` stored sounds most like ``upload``, best first (score: cosine)."""
        if not 1 <= int(top_k) <= TOP_K_MAX:
            raise VoiceprintError(f"top_k must be within 1..{TOP_K_MAX}; got {top_k}",
                                  reason="bad_top_k", status=422)
        tags = check_tags(tags)
        lib = self.catalog.ready(self.catalog.library(library))
        encoder = self.encoder(lib)
        audio = self._decode(upload)
        query = encoder.embed_batch([resample(audio.samples, audio.sample_rate,
                                              encoder.sample_rate)])[0]
        with self.rt.engine.connect() as conn:
            dup = conn.execute(sa.select(sounds.c.id).where(
                sounds.c.library_id == lib.id, sounds.c.content_sha256 == upload.sha256)).first()
            if tags:
                scored, strategy = self._filtered(conn, lib, query, top_k, tags)
            else:
                hits = self.rt.vectors.search(lib.collection, query[None],
                                              min(top_k + ORPHAN_SLACK, MILVUS_MAX_TOP_K),
                                              tenant=self.tenant_id)[0]
                scored, strategy = [(h.id, h.cosine) for h in hits], "ann"
            ids = [i for i, _ in scored]
            rows = {int(r.id): r for r in conn.execute(
                sa.select(*_COLUMNS).where(sounds.c.id.in_(ids),
                                           sounds.c.library_id == lib.id))} if ids else {}
            tag_map = self._tags_of(conn, list(rows))
        results = []
        for sid, score in scored:
            row = rows.get(int(sid))
            if row is None:  # a vector without a row (see `voiceprint db check`)
                continue
            rec = self._record(row, tag_map[int(sid)], lib.name)
            results.append({**rec, "score": round(float(np.clip(score, -1.0, 1.0)), 6)})
            if len(results) == top_k:
                break
        return SearchResult(lib.name, int(top_k), results,
                            {"duration_s": round(audio.duration_s, 3),
                             "sample_rate": audio.sample_rate, "content_sha256": upload.sha256,
                             "duplicate_of": int(dup.id) if dup else None},
                            tags, strategy)

    def _filtered(self, conn: Connection, lib: Library, query: np.ndarray, top_k: int,
                  tags: dict[str, str]) -> tuple[list[tuple[int, float]], str]:
        match = self._matching(lib, tags).subquery()
        n_match = int(conn.execute(sa.select(sa.func.count()).select_from(match)).scalar_one())
        if n_match == 0:
            return [], "exact"
        if n_match <= EXACT_FILTER_MAX:
            rows = conn.execute(sa.select(sounds.c.id, sounds.c.embedding)
                                .where(sounds.c.id.in_(sa.select(match.c.id)))).all()
            scores = cosine_matrix(np.stack([from_blob(r.embedding) for r in rows]), query[None])[:, 0]
            order = np.argsort(-scores, kind="stable")[:top_k]
            return [(int(rows[i].id), float(scores[i])) for i in order], "exact"
        n_total = int(conn.execute(sa.select(sa.func.count()).select_from(sounds)
                                   .where(sounds.c.library_id == lib.id)).scalar_one())
        limit = min(MILVUS_MAX_TOP_K, n_total + ORPHAN_SLACK,
                    max(4 * top_k, math.ceil(4 * top_k * n_total / n_match)))
        hits = self.rt.vectors.search(lib.collection, query[None], limit, tenant=self.tenant_id)[0]
        keep = {int(r.id) for r in conn.execute(
            self._matching(lib, tags).where(sounds.c.id.in_([h.id for h in hits])))} if hits else set()
        return [(h.id, h.cosine) for h in hits if h.id in keep][:top_k], "ann+filter"

    # delete ---------------------------------------------------------------------------
    def delete(self, sound_id: int) -> None:
        """Remove the sound's row, vector and audio file together."""
        rt = self.rt
        with UnitOfWork(rt.engine, rt.vectors, rt.blobs) as uow:
            row = self._row(uow.conn, sound_id, sounds.c.id, sounds.c.library_id,
                            sounds.c.embedding, sounds.c.audio_key)
            lib = self.catalog.ready(library_of(rt, uow.conn.execute(
                sa.select(sound_libraries).where(sound_libraries.c.id == row.library_id)).one()))
            if uow.conn.execute(sounds.delete().where(sounds.c.id == sound_id)).rowcount != 1:
                raise NotFound(f"sound {sound_id} was deleted meanwhile", reason="sound_not_found")
            uow.delete_vectors(lib.collection, [sound_id], from_blob(row.embedding)[None],
                               [row.library_id], tenant=self.tenant_id)
            if row.audio_key:
                uow.delete_file_after_commit(row.audio_key)

