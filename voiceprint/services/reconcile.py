"""The one reconciler: Milvus vectors and audio files against the database.

The database is the source of truth (it keeps every embedding). A process
killed in the middle of a unit of work (see
:mod:`voiceprint.stores.unit_of_work`) can leave vectors or files that no row
names, and a Milvus outage can leave rows without vectors. ``voiceprint db
check`` reports, and ``--repair`` fixes:

* per collection: *missing* vectors (re-inserted from the stored
  embeddings) and *orphan* vectors (deleted);
* *legacy* collections made before tenants (rebuilt from the database);
* collections of dropped sound libraries (dropped);
* audio files (and ``.tmp-*`` files) that no row names and that are older
  than the grace period (deleted; younger ones may belong to a request in
  flight), and files that rows name but that are gone (reported: audio
  cannot be rebuilt).

Memory stays bounded: only ids are compared; embeddings are read in chunks,
and only for missing vectors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import sqlalchemy as sa

from voiceprint.runtime import Runtime
from voiceprint.services.sounds.catalog import Library, library_of
from voiceprint.stores.records import (sound_libraries, sounds, speakers, utterances,
                                       voiceprints)
from voiceprint.stores.types import from_blob

#: embeddings read per query when re-inserting missing vectors
CHUNK = 1000


@dataclass
class CollectionReport:
    collection: str
    rows: int
    vectors: int
    missing: list[int] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    legacy: bool = False
    repaired: bool = False
    library: str | None = None
    orphan_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.orphans or self.legacy or self.orphan_files)

    def to_dict(self) -> dict[str, Any]:
        out = {"collection": self.collection, "rows": self.rows, "vectors": self.vectors,
               "missing": len(self.missing), "orphans": len(self.orphans),
               "legacy": self.legacy, "ok": self.ok, "repaired": self.repaired}
        if self.library is not None:
            out.update(library=self.library, orphan_files=len(self.orphan_files))
        return out


@dataclass
class FilesReport:
    files: int
    orphan_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    orphan_collections: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not (self.orphan_files or self.missing_files or self.orphan_collections)

    def to_dict(self) -> dict[str, Any]:
        return {"collection": None, "files": self.files, "orphan_files": len(self.orphan_files),
                "missing_files": len(self.missing_files),
                "orphan_collections": len(self.orphan_collections), "ok": self.ok,
                "repaired": self.repaired}


class Reconciler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # -- one collection ------------------------------------------------------------
    def _collection(self, name: str, dim: int, expected: dict[int, tuple[int, int]],
                    embeddings: Any, repair: bool) -> CollectionReport:
        """``expected``: vector id -> (owner, tenant); ``embeddings(ids)`` -> {id: bytes}."""
        vectors = self.rt.vectors
        legacy = vectors.is_legacy(name)
        present = set() if legacy else vectors.ids(name)
        report = CollectionReport(name, len(expected), len(present),
                                  sorted(set(expected) - present), sorted(present - set(expected)),
                                  legacy=legacy)
        if not repair or report.ok:
            return report
        if legacy:
            vectors.drop(name)
        if report.missing or legacy:
            vectors.ensure_collection(name, dim)
        if report.orphans:
            vectors.delete(name, report.orphans)
        for start in range(0, len(report.missing), CHUNK):
            chunk = report.missing[start:start + CHUNK]
            blobs = embeddings(chunk)
            by_tenant: dict[int, list[int]] = {}
            for i in chunk:
                by_tenant.setdefault(expected[i][1], []).append(i)
            for tenant, ids in by_tenant.items():
                vectors.upsert(name, ids, np.stack([from_blob(blobs[i]) for i in ids]),
                               [expected[i][0] for i in ids], tenant=tenant)
        report.repaired = True
        return report

    # -- speakers ------------------------------------------------------------------------
    def speakers(self, encoders: Iterable[str] | None = None,
                 repair: bool = False) -> list[CollectionReport]:
        """Utterance and voiceprint collections of each encoder found in the database."""
        rt = self.rt
        with rt.engine.connect() as conn:
            names = set(encoders or []) or {r[0] for r in conn.execute(
                sa.select(utterances.c.encoder).distinct())}
            reports = []
            for enc in sorted(names):
                first = conn.execute(sa.select(utterances.c.embedding)
                                     .where(utterances.c.encoder == enc).limit(1)).first()
                if first is None:
                    continue
                dim = len(from_blob(first.embedding))
                utts = {r.id: (r.speaker_id, r.tenant_id) for r in conn.execute(
                    sa.select(utterances.c.id, utterances.c.speaker_id, speakers.c.tenant_id)
                    .join(speakers, speakers.c.id == utterances.c.speaker_id)
                    .where(utterances.c.encoder == enc))}
                vps = {r.speaker_id: (r.speaker_id, r.tenant_id) for r in conn.execute(
                    sa.select(voiceprints.c.speaker_id, speakers.c.tenant_id)
                    .join(speakers, speakers.c.id == voiceprints.c.speaker_id)
                    .where(voiceprints.c.encoder == enc, voiceprints.c.enrolled.is_(True)))}

                def utt_embeddings(ids: list[int]) -> dict[int, bytes]:
                    return dict(conn.execute(sa.select(utterances.c.id, utterances.c.embedding)
                                             .where(utterances.c.id.in_(ids))).all())

                def vp_embeddings(ids: list[int], enc: str = enc) -> dict[int, bytes]:
                    return dict(conn.execute(
                        sa.select(voiceprints.c.speaker_id, voiceprints.c.embedding)
                        .where(voiceprints.c.encoder == enc,
                               voiceprints.c.speaker_id.in_(ids))).all())

                reports.append(self._collection(rt.collection(enc, "utterances"), dim, utts,
                                                utt_embeddings, repair))
                reports.append(self._collection(rt.collection(enc, "speakers"), dim, vps,
                                                vp_embeddings, repair))
        return reports

    # -- sound libraries -------------------------------------------------------------
    def library(self, lib: Library, repair: bool = False,
                min_file_age: float | None = None) -> CollectionReport:
        """A library's vectors and its folder of audio files."""
        rt = self.rt
        with rt.engine.connect() as conn:
            rows = {int(r.id): r.audio_key for r in conn.execute(
                sa.select(sounds.c.id, sounds.c.audio_key).where(sounds.c.library_id == lib.id))}

            def embeddings(ids: list[int]) -> dict[int, bytes]:
                return dict(conn.execute(sa.select(sounds.c.id, sounds.c.embedding)
                                         .where(sounds.c.id.in_(ids))).all())

            report = self._collection(lib.collection, lib.dim,
                                      {i: (lib.id, lib.tenant_id) for i in rows}, embeddings,
                                      repair)
        report.library = lib.name
        report.orphan_files = self._orphans(f"sounds/{lib.id}/", set(rows.values()), min_file_age)
        if repair and report.orphan_files:
            for key in report.orphan_files:
                rt.blobs.delete(key)
            report.repaired = True
        return report

    def libraries(self, repair: bool = False,
                  min_file_age: float | None = None) -> list[CollectionReport]:
        with self.rt.engine.connect() as conn:
            libs = [library_of(self.rt, r) for r in conn.execute(
                sa.select(sound_libraries).order_by(sound_libraries.c.id))]
        return [self.library(lib, repair, min_file_age) for lib in libs]

    # -- files and leftover collections ---------------------------------------------------
    def _orphans(self, prefix: str, referenced: set[str | None],
                 min_age: float | None) -> list[str]:
        age = self.rt.config.ORPHAN_FILE_MIN_AGE_SECONDS if min_age is None else min_age
        return [k for k in self.rt.blobs.keys(prefix, include_temp=True)
                if k not in referenced and self.rt.blobs.age_seconds(k) >= age]

    def files(self, repair: bool = False, min_file_age: float | None = None) -> FilesReport:
        """Every stored audio file against the rows, and collections of dropped libraries."""
        rt = self.rt
        with rt.engine.connect() as conn:
            keys = {r[0] for r in conn.execute(sa.select(utterances.c.audio_key)
                                                .where(utterances.c.audio_key.is_not(None)))}
            keys |= {r[0] for r in conn.execute(sa.select(sounds.c.audio_key)
                                                 .where(sounds.c.audio_key.is_not(None)))}
            library_ids = {int(r[0]) for r in conn.execute(sa.select(sound_libraries.c.id))}
        pattern = re.compile(re.escape(rt.config.MILVUS_COLLECTION_PREFIX) + r"_.+_sounds_(\d+)$")
        leftovers = [name for name in rt.vectors.collections(rt.config.MILVUS_COLLECTION_PREFIX)
                     if (m := pattern.match(name)) and int(m.group(1)) not in library_ids]
        report = FilesReport(files=len(rt.blobs.keys()),
                             orphan_files=self._orphans("", keys, min_file_age),
                             missing_files=sorted(k for k in keys if not rt.blobs.exists(k)),
                             orphan_collections=leftovers)
        if repair and (report.orphan_files or report.orphan_collections):
            for key in report.orphan_files:
                rt.blobs.delete(key)
            for name in report.orphan_collections:
                rt.vectors.drop(name)
            report.repaired = True
        return report

    def run(self, repair: bool = False,
            min_file_age: float | None = None) -> list[CollectionReport | FilesReport]:
        """Everything: speaker collections, sound libraries, files and leftover collections."""
        return [*self.speakers(repair=repair), *self.libraries(repair, min_file_age),
                self.files(repair, min_file_age)]
