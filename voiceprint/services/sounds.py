"""Similar-sound search: libraries of arbitrary audio searched by example.

Design (the README's "Sound search" section says the same):

* **Embeddings**: the sound encoder (``panns_cnn14``: PaddleSpeech CNN14,
  2048-dim, 32 kHz) of the library; uploads are decoded, down-mixed and
  resampled to the encoder's rate. Rows are L2-normalised.
* **Metric and index**: L2 on L2-normalised vectors, as everywhere in
  voiceprint: the ranking equals cosine ranking and a score is reported as
  cosine similarity ``1 - d/2`` in [-1, 1] (1 = identical embedding). HNSW
  (M 16, efConstruction 200, ef = max(64, k)): sub-linear search with recall
  near 1 at these sizes, no training step (IVF needs data to train its
  centroids, bad for a library that starts empty and grows a file at a time),
  and inserts are searchable at once.
* **Isolation**: each named library (the demos' ``table_name``) is a row in
  ``sound_libraries`` and its own Milvus collection
  ``<prefix>_<encoder>_sounds_<library id>``: searches never cross libraries,
  dropping one is a collection drop, and a library keeps the encoder it was
  created with (changing ``VOICEPRINT_SOUND_ENCODER`` affects new libraries).
* **Deduplication**: a file whose bytes (SHA-256) are already in the library
  is reported as a duplicate of the stored sound, never stored twice
  (a unique constraint backs the check). Re-encoded copies are not byte
  duplicates; they are what search finds.
* **Tag filters**: tags are ``key -> value`` strings in ``sound_tags``
  (indexed). A filtered search first counts the matching sounds in the
  database: up to :data:`EXACT_FILTER_MAX` of them are ranked exactly from
  their stored embeddings (no ANN error at all); more are searched in
  Milvus with an over-fetch proportional to how rare the match is (capped
  at Milvus' 16384) and filtered by the database, so a very rare tag in a
  very large library may return fewer than ``top_k`` results.
* **Atomic writes**: as in enrollment, rows go in one transaction, vectors
  are written inside it, and any failure deletes the vectors and files
  written so far, so rows, vectors and files agree. The bulk loader commits
  per batch; a batch killed before its commit leaves at most vectors/files
  without rows, which the next run (or ``voiceprint db check --repair``)
  removes. Vectors are *upserted*, so a row id that the database reuses
  after such a kill (SQLite does) replaces a stale vector instead of
  duplicating it.
"""
from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.audio import DecodedAudio, decode_bytes, resample
from voiceprint.encoders.base import Encoder
from voiceprint.errors import AudioError, Conflict, NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.consistency import CollectionReport
from voiceprint.services.intake import Upload, limits
from voiceprint.stores.records import (from_blob, sound_libraries, sound_loads, sound_tags, sounds,
                                       to_blob, utcnow)
from voiceprint.stores.vectors import MAX_TOP_K as MILVUS_MAX_TOP_K

log = logging.getLogger(__name__)

DEFAULT_LIBRARY = "default"
LIBRARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_TAGS = 32
#: bounds of ``top_k`` for sound search
TOP_K_MAX = 100
#: a filtered search ranks up to this many matching sounds exactly, from the database
EXACT_FILTER_MAX = 1000
#: peak level (dBFS) below which a clip counts as digital silence
SILENT_PEAK_DBFS = -80.0
#: clips resampled and embedded together (bounds memory for long clips)
EMBED_CHUNK = 16
#: extra vectors fetched so hits whose row is gone (orphans) do not shorten results
ORPHAN_SLACK = 8

#: libsndfile format -> (content type, file suffix) of the stored original
FORMATS: dict[str, tuple[str, str]] = {
    "WAV": ("audio/wav", ".wav"), "WAVEX": ("audio/wav", ".wav"), "RF64": ("audio/wav", ".wav"),
    "FLAC": ("audio/flac", ".flac"), "OGG": ("audio/ogg", ".ogg"), "MP3": ("audio/mpeg", ".mp3"),
    "AIFF": ("audio/aiff", ".aiff"), "AU": ("audio/basic", ".au"), "CAF": ("audio/x-caf", ".caf"),
    "W64": ("application/octet-stream", ".w64"),
}
#: file name suffixes the bulk loader tries to decode; anything else is ignored unread
AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif",
                            ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"})

COSINE = "cosine similarity of L2-normalised CNN14 embeddings, in [-1, 1] (1 = same embedding)"


# -- small pure helpers -----------------------------------------------------------
def check_library_name(name: str) -> str:
    if not isinstance(name, str) or not LIBRARY_NAME.match(name):
        raise VoiceprintError(
            f"library name {name!r} is invalid: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit", reason="bad_library_name", status=422)
    return name


def check_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    """Validated tags: at most 32, keys ``[A-Za-z0-9_.:-]{1,64}``, values strings <= 255 chars."""
    tags = dict(tags or {})
    if len(tags) > MAX_TAGS:
        raise VoiceprintError(f"at most {MAX_TAGS} tags per sound; got {len(tags)}",
                              reason="bad_tags", status=422)
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not TAG_KEY.match(key):
            raise VoiceprintError(f"tag key {key!r} is invalid: 1-64 letters, digits or _ . : -",
                                  reason="bad_tags", status=422)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise VoiceprintError(f"tag {key!r}: values are strings (got {type(value).__name__})",
                                  reason="bad_tags", status=422)
        value = str(value)
        if len(value) > 255:
            raise VoiceprintError(f"tag {key!r}: value longer than 255 characters",
                                  reason="bad_tags", status=422)
        out[key] = value
    return out


def parse_tag_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["genre:foley", "source:x"]`` -> ``{"genre": "foley", "source": "x"}`` (split at the first ':')."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition(":")
        if not sep or not key:
            raise VoiceprintError(f"tag {pair!r} must look like key:value", reason="bad_tags",
                                  status=422)
        if out.get(key, value) != value:
            raise VoiceprintError(f"tag key {key!r} given twice with different values "
                                  "(a sound has one value per key)", reason="bad_tags", status=422)
        out[key] = value
    return check_tags(out)


def content_type(fmt: str) -> str:
    return FORMATS.get(fmt.upper(), ("application/octet-stream", ""))[0]


def _suffix(fmt: str, filename: str | None) -> str:
    known = FORMATS.get(fmt.upper())
    if known:
        return known[1]
    suffix = PurePath(filename or "").suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ".bin"


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def collection_name(rt: Runtime, encoder: str, library_id: int) -> str:
    return rt.collection(encoder, f"sounds_{int(library_id)}")


# -- results ---------------------------------------------------------------------
@dataclass(frozen=True)
class Library:
    id: int
    name: str
    encoder: str
    dim: int
    created_at: Any
    collection: str


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


# -- the service -------------------------------------------------------------------
class SoundService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # libraries ----------------------------------------------------------------
    def _library(self, row: Any) -> Library:
        return Library(int(row.id), row.name, row.encoder, int(row.dim), row.created_at,
                       collection_name(self.rt, row.encoder, row.id))

    def ready(self, lib: Library) -> Library:
        """Make sure the library's collection exists and is loaded (Milvus Lite leaves it
        released after an unclean shutdown); cheap after the first call."""
        self.rt.vectors.ensure_collection(lib.collection, lib.dim)
        return lib

    def library(self, name: str = DEFAULT_LIBRARY, *, create: bool = False) -> Library:
        """The library ``name``; created (with the configured sound encoder) when ``create``."""
        check_library_name(name)
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(sound_libraries)
                               .where(sound_libraries.c.name == name)).first()
        if row is not None:
            return self._library(row)
        if not create:
            raise NotFound(f"sound library {name!r} does not exist (the first insert creates it)",
                           reason="library_not_found")
        encoder = self.rt.models.get(self.rt.config.SOUND_ENCODER)
        try:
            with self.rt.engine.begin() as conn:
                new_id = int(conn.execute(sound_libraries.insert().values(
                    name=name, encoder=encoder.name, dim=encoder.dim,
                    created_at=utcnow())).inserted_primary_key[0])
        except sa.exc.IntegrityError:  # created meanwhile by another request
            return self.library(name)
        lib = self.library(name)
        if lib.id == new_id:
            # a collection under this id can only be a leftover of a dropped library whose
            # id the database reused (SQLite does): start empty
            self.rt.vectors.drop(lib.collection)
        return self.ready(lib)

    def libraries(self) -> list[dict[str, Any]]:
        with self.rt.engine.connect() as conn:
            counts = dict(conn.execute(sa.select(sounds.c.library_id, sa.func.count())
                                       .group_by(sounds.c.library_id)).all())
            rows = conn.execute(sa.select(sound_libraries).order_by(sound_libraries.c.id)).all()
        return [{"id": r.id, "name": r.name, "encoder": r.encoder, "dim": r.dim,
                 "created_at": r.created_at,
                 "sounds": int(counts.get(r.id, 0))} for r in rows]

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
        lib = self.library(library, create=True)
        encoder = self.encoder(lib)
        outcomes, prepared = self._prepare(lib, uploads, tags, names)
        if prepared:
            vectors = np.concatenate([encoder.embed_batch(
                [resample(p.audio.samples, p.audio.sample_rate, encoder.sample_rate)
                 for p in prepared[start:start + EMBED_CHUNK]])
                for start in range(0, len(prepared), EMBED_CHUNK)])
            self._store(lib, encoder.name, prepared, vectors)  # one transaction per call
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
        """Decode and de-duplicate (against the library and within the request).

        Returns an outcome for every upload (in order) and the files to store.
        """
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

    def _store(self, lib: Library, encoder: str, items: list[_Prepared], vectors: np.ndarray) -> None:
        """Rows, audio files and vectors of ``items``, all or nothing."""
        rt = self.rt
        if vectors.shape[1] != lib.dim:
            raise Conflict(f"library {lib.name!r} holds {lib.dim}-dim vectors but {encoder} "
                           f"gives {vectors.shape[1]}", reason="dimension_mismatch")
        self.ready(lib)
        ids: list[int] = []
        keys: list[str] = []
        try:
            with rt.engine.begin() as conn:
                if conn.execute(sa.select(sound_libraries.c.id)
                                .where(sound_libraries.c.id == lib.id)).first() is None:
                    raise NotFound(f"sound library {lib.name!r} was dropped meanwhile",
                                   reason="library_not_found")
                now = utcnow()
                for item, vec in zip(items, vectors):
                    a, up = item.audio, item.upload
                    sid = int(conn.execute(sounds.insert().values(
                        library_id=lib.id, name=item.name,
                        filename=(up.filename or None) and up.filename[-255:],
                        content_sha256=up.sha256, size_bytes=len(up.data),
                        duration_s=a.duration_s, sample_rate=a.sample_rate, channels=a.channels,
                        format=a.format[:16], encoder=encoder, embedding=to_blob(vec),
                        audio_key=None, created_at=now)).inserted_primary_key[0])
                    ids.append(sid)
                    key = f"sounds/{lib.id}/{sid}{_suffix(a.format, up.filename)}"
                    rt.blobs.put(key, up.data)
                    keys.append(key)
                    conn.execute(sounds.update().where(sounds.c.id == sid).values(audio_key=key))
                    if item.tags:
                        conn.execute(sound_tags.insert(), [
                            {"sound_id": sid, "key": k, "value": v} for k, v in item.tags.items()])
                rt.vectors.upsert(lib.collection, ids, vectors, [lib.id] * len(ids))
        except sa.exc.IntegrityError as exc:
            self._undo(lib, ids, keys)
            raise Conflict("a concurrent request changed the library (stored some of the same "
                           "audio, or dropped it); nothing was stored, send the files again",
                           reason="concurrent_change") from exc
        except BaseException:
            self._undo(lib, ids, keys)
            raise
        for item, sid in zip(items, ids):
            item.out.status, item.out.id, item.out.name = "inserted", sid, item.name

    def _undo(self, lib: Library, ids: list[int], keys: list[str]) -> None:
        """Compensate a failed batch: vectors and files written so far go away."""
        try:
            self.rt.vectors.delete(lib.collection, ids)
        except Exception:
            log.exception("could not remove vectors of a failed sound insert (library %s, ids %s); "
                          "run `voiceprint db check --repair`", lib.name, ids)
        for key in keys:
            self.rt.blobs.delete(key)

    # read -------------------------------------------------------------------------
    def _tags_of(self, conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {int(i): {} for i in ids}
        if ids:
            for r in conn.execute(sa.select(sound_tags).where(sound_tags.c.sound_id.in_(list(ids)))):
                out[int(r.sound_id)][r.key] = r.value
        return out

    _COLUMNS = [c for c in sounds.c if c.name != "embedding"]

    def _record(self, row: Any, tags: dict[str, str], library: str) -> dict[str, Any]:
        return {"id": int(row.id), "library": library, "name": row.name, "filename": row.filename,
                "content_sha256": row.content_sha256, "size_bytes": int(row.size_bytes),
                "duration_s": round(float(row.duration_s), 3), "sample_rate": int(row.sample_rate),
                "channels": int(row.channels), "format": row.format,
                "content_type": content_type(row.format), "encoder": row.encoder, "tags": tags,
                "created_at": row.created_at}

    def get(self, sound_id: int) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(*self._COLUMNS, sound_libraries.c.name.label("library"))
                               .join(sound_libraries, sound_libraries.c.id == sounds.c.library_id)
                               .where(sounds.c.id == sound_id)).first()
            if row is None:
                raise NotFound(f"sound {sound_id} does not exist", reason="sound_not_found")
            return self._record(row, self._tags_of(conn, [sound_id])[sound_id], row.library)

    def audio(self, sound_id: int) -> tuple[Path, str, str]:
        """(path of the stored original, content type, download name)."""
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(sounds.c.audio_key, sounds.c.format, sounds.c.filename,
                                         sounds.c.name).where(sounds.c.id == sound_id)).first()
        if row is None:
            raise NotFound(f"sound {sound_id} does not exist", reason="sound_not_found")
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
        lib = self.library(library)
        ids = self._matching(lib, check_tags(tags)).subquery()
        with self.rt.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(ids)).scalar_one())
            rows = conn.execute(sa.select(*self._COLUMNS).where(sounds.c.id.in_(sa.select(ids.c.id)))
                                .order_by(sounds.c.id).limit(page_size)
                                .offset((page - 1) * page_size)).all()
            tag_map = self._tags_of(conn, [r.id for r in rows])
        return {"library": lib.name, "total": total, "page": page, "page_size": page_size,
                "items": [self._record(r, tag_map[int(r.id)], lib.name) for r in rows]}

    def count(self, library: str = DEFAULT_LIBRARY) -> dict[str, Any]:
        """Sounds (database rows) and vectors (Milvus) in ``library``; they should agree."""
        lib = self.library(library)
        with self.rt.engine.connect() as conn:
            n = int(conn.execute(sa.select(sa.func.count()).select_from(sounds)
                                 .where(sounds.c.library_id == lib.id)).scalar_one())
        return {"library": lib.name, "sounds": n,
                "vectors": self.rt.vectors.count(self.ready(lib).collection)}

    # search -------------------------------------------------------------------------
    def search(self, upload: Upload, library: str = DEFAULT_LIBRARY, top_k: int = 10,
               tags: dict[str, str] | None = None) -> SearchResult:
        """The ``top_k`` stored sounds most like ``upload``, best first (score: cosine)."""
        if not 1 <= int(top_k) <= TOP_K_MAX:
            raise VoiceprintError(f"top_k must be within 1..{TOP_K_MAX}; got {top_k}",
                                  reason="bad_top_k", status=422)
        tags = check_tags(tags)
        lib = self.ready(self.library(library))
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
                                              min(top_k + ORPHAN_SLACK, MILVUS_MAX_TOP_K))[0]
                scored, strategy = [(h.id, h.cosine) for h in hits], "ann"
            ids = [i for i, _ in scored]
            rows = {int(r.id): r for r in conn.execute(
                sa.select(*self._COLUMNS).where(sounds.c.id.in_(ids)))} if ids else {}
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
            emb = np.stack([from_blob(r.embedding) for r in rows])
            scores = emb @ query
            order = np.argsort(-scores, kind="stable")[:top_k]
            return [(int(rows[i].id), float(scores[i])) for i in order], "exact"
        n_total = int(conn.execute(sa.select(sa.func.count()).select_from(sounds)
                                   .where(sounds.c.library_id == lib.id)).scalar_one())
        limit = min(MILVUS_MAX_TOP_K, n_total + ORPHAN_SLACK,
                    max(4 * top_k, math.ceil(4 * top_k * n_total / n_match)))
        hits = self.rt.vectors.search(lib.collection, query[None], limit)[0]
        keep = {int(r.id) for r in conn.execute(
            self._matching(lib, tags).where(sounds.c.id.in_([h.id for h in hits])))} if hits else set()
        return [(h.id, h.cosine) for h in hits if h.id in keep][:top_k], "ann+filter"

    # delete / drop ---------------------------------------------------------------------
    def delete(self, sound_id: int) -> None:
        """Remove the sound's row, vector and audio file together.

        The vector is deleted inside the database transaction; if the commit
        then fails it is put back from the row read beforehand.
        """
        rt = self.rt
        with rt.engine.connect() as conn:
            row = conn.execute(sa.select(sounds.c.id, sounds.c.library_id, sounds.c.encoder,
                                         sounds.c.embedding, sounds.c.audio_key,
                                         sound_libraries.c.encoder.label("lib_encoder"),
                                         sound_libraries.c.dim)
                               .join(sound_libraries, sound_libraries.c.id == sounds.c.library_id)
                               .where(sounds.c.id == sound_id)).first()
        if row is None:
            raise NotFound(f"sound {sound_id} does not exist", reason="sound_not_found")
        coll = collection_name(rt, row.lib_encoder, row.library_id)
        rt.vectors.ensure_collection(coll, int(row.dim))
        removed = False
        try:
            with rt.engine.begin() as conn:
                if conn.execute(sounds.delete().where(sounds.c.id == sound_id)).rowcount != 1:
                    raise NotFound(f"sound {sound_id} was deleted meanwhile",
                                   reason="sound_not_found")
                removed = True  # from here on the vector may be gone (even if delete raises)
                rt.vectors.delete(coll, [sound_id])
        except Exception:
            if removed:  # the row is still there: put its vector back (upsert is idempotent)
                rt.vectors.upsert(coll, [sound_id], from_blob(row.embedding)[None], [row.library_id])
            raise
        if row.audio_key:
            rt.blobs.delete(row.audio_key)

    def drop(self, library: str, confirm: str | None) -> dict[str, Any]:
        """Delete a whole library: rows, its collection and its audio files.

        ``confirm`` must repeat the library's name. The rows go first (one
        transaction); then the collection is dropped and the files removed.
        If that second step fails the collection is unreachable (no library
        row points at it) and is dropped when the id is next used.
        """
        lib = self.library(library)
        if confirm != lib.name:
            raise VoiceprintError(
                f"dropping library {lib.name!r} deletes all its sounds: repeat its name as "
                f"confirm={lib.name}", reason="confirmation_required", status=400)
        with self.rt.engine.begin() as conn:
            n = int(conn.execute(sa.select(sa.func.count()).select_from(sounds)
                                 .where(sounds.c.library_id == lib.id)).scalar_one())
            # explicit deletes: MySQL/SQLite cascades work too, but this is dialect-proof
            conn.execute(sound_tags.delete().where(sound_tags.c.sound_id.in_(
                sa.select(sounds.c.id).where(sounds.c.library_id == lib.id))))
            conn.execute(sounds.delete().where(sounds.c.library_id == lib.id))
            conn.execute(sound_loads.delete().where(sound_loads.c.library_id == lib.id))
            conn.execute(sound_libraries.delete().where(sound_libraries.c.id == lib.id))
        self.rt.vectors.drop(lib.collection)
        for key in self.rt.blobs.keys(f"sounds/{lib.id}"):
            self.rt.blobs.delete(key)
        return {"library": lib.name, "dropped": True, "sounds": n}

    # bulk-load progress ------------------------------------------------------------------
    def loads(self, library: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        q = (sa.select(sound_loads, sound_libraries.c.name.label("library"))
             .join(sound_libraries, sound_libraries.c.id == sound_loads.c.library_id)
             .order_by(sound_loads.c.id.desc()).limit(limit))
        if library is not None:
            q = q.where(sound_libraries.c.name == check_library_name(library))
        with self.rt.engine.connect() as conn:
            rows = conn.execute(q).all()
        out = []
        for r in rows:
            d = {k: getattr(r, k) for k in ("id", "library", "source", "status", "total",
                                            "processed", "loaded", "skipped", "failed",
                                            "started_at", "updated_at", "finished_at")}
            d["percent"] = round(100.0 * r.processed / r.total, 1) if r.total else 100.0
            out.append(d)
        return out


# -- consistency -------------------------------------------------------------------------
@dataclass
class SoundCollectionReport(CollectionReport):
    """A library's collection check, plus audio files that no row references."""

    library: str = ""
    orphan_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return super().ok and not self.orphan_files

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "library": self.library,
                "orphan_files": len(self.orphan_files)}


def check_library(rt: Runtime, lib: Library, repair: bool = False) -> SoundCollectionReport:
    """Compare ``lib``'s rows with its vectors and files; ``repair`` re-inserts missing
    vectors (from the stored embeddings), deletes orphan vectors and orphan files."""
    with rt.engine.connect() as conn:
        rows = {int(r.id): r.audio_key for r in conn.execute(
            sa.select(sounds.c.id, sounds.c.audio_key).where(sounds.c.library_id == lib.id))}
    SoundService(rt).ready(lib)
    present = rt.vectors.ids(lib.collection)
    files = set(rt.blobs.keys(f"sounds/{lib.id}"))
    report = SoundCollectionReport(
        lib.collection, len(rows), len(present), sorted(set(rows) - present),
        sorted(present - set(rows)), library=lib.name,
        orphan_files=sorted(files - {k for k in rows.values() if k}))
    if repair and not report.ok:
        if report.orphans:
            rt.vectors.delete(lib.collection, report.orphans)
        for start in range(0, len(report.missing), 1000):
            chunk = report.missing[start:start + 1000]
            with rt.engine.connect() as conn:
                emb = {int(r.id): from_blob(r.embedding) for r in conn.execute(
                    sa.select(sounds.c.id, sounds.c.embedding).where(sounds.c.id.in_(chunk)))}
            vecs = np.stack([emb[i] for i in chunk])
            rt.vectors.ensure_collection(lib.collection, vecs.shape[1])
            rt.vectors.upsert(lib.collection, chunk, vecs, [lib.id] * len(chunk))
        for key in report.orphan_files:
            rt.blobs.delete(key)
        report.repaired = True
    return report


def check_sounds(rt: Runtime, repair: bool = False) -> list[CollectionReport]:
    """Reconcile every sound library's collection and files with the database."""
    svc = SoundService(rt)
    with rt.engine.connect() as conn:
        libs = [svc._library(r) for r in conn.execute(
            sa.select(sound_libraries).order_by(sound_libraries.c.id))]
    return [check_library(rt, lib, repair) for lib in libs]


# -- bulk load ---------------------------------------------------------------------------
@dataclass
class FileOutcome:
    """One file of a bulk load: ``loaded``, ``skipped`` (already in the library) or ``failed``."""

    path: str
    status: str
    id: int | None = None
    reason: str | None = None
    message: str | None = None


@dataclass
class LoadReport:
    load_id: int
    library: str
    total: int
    ignored: int
    outcomes: list[FileOutcome] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def _n(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def loaded(self) -> int:
        return self._n("loaded")

    @property
    def skipped(self) -> int:
        return self._n("skipped")

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def find_audio_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], int]:
    """Files below ``paths`` (recursively, sorted, hidden entries skipped) whose suffix is an
    audio one, and how many other files were ignored without being read."""
    found: list[Path] = []
    ignored = 0
    for base in map(Path, paths):
        candidates: list[Path] = [base] if base.is_file() else []
        for dirpath, dirnames, filenames in os.walk(base):  # nothing for a file
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            candidates.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
        for p in candidates:
            if p.suffix.lower() in AUDIO_SUFFIXES:
                found.append(p)
            else:
                ignored += 1
    return found, ignored


def load_paths(rt: Runtime, paths: Sequence[str | os.PathLike[str]], library: str = DEFAULT_LIBRARY,
               *, batch_size: int = 16, tags: dict[str, Any] | None = None,
               folder_tag: str | None = None,
               on_file: Callable[[FileOutcome], None] | None = None,
               on_start: Callable[[int], None] | None = None) -> LoadReport:
    """Bulk-load audio files from local ``paths`` (files or directories, recursive).

    Per batch of ``batch_size`` files: read, check, de-duplicate, embed and
    store in one transaction (the same code path as the HTTP insert). Files
    already in the library (same bytes) are skipped, so re-running after a
    failure or a kill resumes where it stopped; leftovers of a batch killed
    before its commit are removed first. Unreadable files are reported with
    their reason and the rest still goes in. Progress is recorded in
    ``sound_loads`` (``GET /sounds/loads``).
    """
    t0 = time.perf_counter()
    svc = SoundService(rt)
    tags = check_tags(tags)
    if folder_tag is not None:
        check_tags({folder_tag: ""})
    lib = svc.library(library, create=True)
    fix = check_library(rt, lib, repair=True)
    files, ignored = find_audio_files(paths)
    source = "; ".join(str(Path(p).resolve()) for p in paths)[:1024]
    now = utcnow()
    with rt.engine.begin() as conn:
        conn.execute(sound_loads.update().where(
            sound_loads.c.library_id == lib.id, sound_loads.c.source == source,
            sound_loads.c.status == "running").values(status="interrupted", updated_at=now))
        load_id = int(conn.execute(sound_loads.insert().values(
            library_id=lib.id, source=source, status="running", total=len(files), processed=0,
            loaded=0, skipped=0, failed=0, started_at=now, updated_at=now)).inserted_primary_key[0])
    report = LoadReport(load_id, lib.name, len(files), ignored,
                        repaired={"orphan_vectors": len(fix.orphans),
                                  "missing_vectors": len(fix.missing),
                                  "orphan_files": len(fix.orphan_files)})
    if on_start is not None:
        on_start(len(files))
    roots = [Path(p).resolve() for p in paths]
    try:
        for start in range(0, len(files), max(1, batch_size)):
            batch = files[start:start + max(1, batch_size)]
            outcomes = _load_batch(svc, lib, batch, roots, tags, folder_tag)
            report.outcomes.extend(outcomes)
            with rt.engine.begin() as conn:
                conn.execute(sound_loads.update().where(sound_loads.c.id == load_id).values(
                    processed=len(report.outcomes), loaded=report.loaded,
                    skipped=report.skipped, failed=len(report.failed), updated_at=utcnow()))
            if on_file is not None:
                for o in outcomes:
                    on_file(o)
    except BaseException:
        _finish(rt, load_id, "interrupted")
        raise
    _finish(rt, load_id, "finished" if not report.failed else "finished_with_errors")
    report.elapsed_s = time.perf_counter() - t0
    return report


def _finish(rt: Runtime, load_id: int, status: str) -> None:
    try:
        with rt.engine.begin() as conn:
            conn.execute(sound_loads.update().where(sound_loads.c.id == load_id).values(
                status=status, updated_at=utcnow(), finished_at=utcnow()))
    except Exception:  # never hide the original error
        log.exception("could not record the end of load %s", load_id)


def _relative(path: Path, roots: list[Path]) -> str:
    p = path.resolve()
    for root in roots:
        if root.is_dir() and root in p.parents:
            return p.relative_to(root).as_posix()
    return p.name


def _load_batch(svc: SoundService, lib: Library, batch: list[Path], roots: list[Path],
                tags: dict[str, str], folder_tag: str | None) -> list[FileOutcome]:
    cfg = svc.rt.config
    outcomes: list[FileOutcome | None] = [None] * len(batch)
    uploads: list[Upload] = []
    where: list[int] = []
    for i, path in enumerate(batch):
        rel = _relative(path, roots)
        try:
            size = path.stat().st_size
            if size > cfg.MAX_UPLOAD_BYTES:  # refuse before reading it
                raise AudioError(f"'{rel}' is {size / 2**20:.1f} MiB; the limit is "
                                 f"{cfg.MAX_UPLOAD_BYTES / 2**20:.1f} MiB", reason="too_large")
            uploads.append(Upload(path.read_bytes(), rel))
            where.append(i)
        except AudioError as exc:
            outcomes[i] = FileOutcome(str(path), "failed", reason=exc.reason, message=exc.message)
        except OSError as exc:
            outcomes[i] = FileOutcome(str(path), "failed", reason="unreadable",
                                      message=f"cannot read '{rel}': {exc.strerror or exc}")
    if uploads:
        # one tag set per call: group files by their folder tag
        groups: dict[str, list[int]] = {}
        for j, up in enumerate(uploads):
            folder = str(PurePath(up.filename or "").parent) if folder_tag else ""
            groups.setdefault(folder, []).append(j)
        for folder, members in groups.items():
            group_tags = {**tags, folder_tag: folder} if folder_tag and folder != "." else tags
            result = svc.insert([uploads[j] for j in members], lib.name, group_tags,
                                max_files=len(members))
            for j, item in zip(members, result.items):
                path = str(batch[where[j]])
                if item.status == "inserted":
                    outcomes[where[j]] = FileOutcome(path, "loaded", id=item.id)
                elif item.status == "duplicate":
                    of = item.duplicate_of or {}
                    msg = (f"same bytes as {uploads[members[of['index']]].filename!r}" if "index" in of
                           else f"already in library {lib.name!r} as sound {of.get('id')}")
                    outcomes[where[j]] = FileOutcome(path, "skipped", id=item.id,
                                                     reason="already_loaded", message=msg)
                else:
                    r = item.reasons[0]
                    outcomes[where[j]] = FileOutcome(path, "failed", reason=r["reason"],
                                                     message=r["message"])
    return [o for o in outcomes if o is not None]
