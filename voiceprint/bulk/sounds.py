"""``voiceprint sounds load --engine ray``: embed on workers, store through the sound loader.

The loader (:func:`voiceprint.services.sounds.load_paths`) stays in charge:
same file walk, batches, one unit of work per batch through
:meth:`SoundService.insert <voiceprint.services.sounds.SoundService.insert>`,
duplicates skipped, progress in ``sound_loads``, leftovers of a killed run
repaired first. Its ``prefetch`` hook hands it, before each batch, the
vectors the workers computed ahead (a :class:`~voiceprint.bulk.precomputed.PrecomputedEncoder`
registered under the library's encoder), and the files that killed their
worker, which are reported ``failed`` (``worker_crashed``) instead of stored.
Files already in the library (same SHA-256) are not embedded again.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from voiceprint.bulk.engines import Engine
from voiceprint.bulk.enroll import WORKER_FAILURES, read_limited
from voiceprint.bulk.pipeline import EmbedPipeline, Feed, PipelineStats
from voiceprint.bulk.precomputed import PrecomputedEncoder, registered
from voiceprint.bulk.worker import EncoderSpec
from voiceprint.errors import NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.sounds import FileOutcome, LibraryCatalog, LoadReport, find_audio_files
from voiceprint.services.sounds.bulk import load_paths
from voiceprint.stores.records import sound_libraries, sounds

#: files whose stored hashes are looked up together
LOOKUP_CHUNK = 64


def library_encoder(rt: Runtime, tenant_id: int, library: str) -> str:
    """The encoder of ``library`` (the configured sound encoder for a new one)."""
    try:
        return LibraryCatalog(rt, tenant_id).library(library).encoder
    except NotFound:
        return rt.config.SOUND_ENCODER


def _stored(rt: Runtime, tenant_id: int, library: str, shas: list[str]) -> set[str]:
    with rt.engine.connect() as conn:
        return {r[0] for r in conn.execute(
            sa.select(sounds.c.content_sha256)
            .join(sound_libraries, sound_libraries.c.id == sounds.c.library_id)
            .where(sound_libraries.c.tenant_id == tenant_id, sound_libraries.c.name == library,
                   sounds.c.content_sha256.in_(shas)))}


def _feeds(rt: Runtime, tenant_id: int, library: str, files: list[Path]) -> Iterator[Feed]:
    max_bytes = rt.config.MAX_UPLOAD_BYTES
    for start in range(0, len(files), LOOKUP_CHUNK):
        read: list[tuple[int, Path, bytes | VoiceprintError]] = []
        for key, path in enumerate(files[start:start + LOOKUP_CHUNK], start=start):
            try:
                read.append((key, path, read_limited(path, max_bytes, path.name)))
            except VoiceprintError as exc:
                read.append((key, path, exc))
        shas = {k: hashlib.sha256(d).hexdigest() for k, _, d in read if isinstance(d, bytes)}
        stored = _stored(rt, tenant_id, library, sorted(set(shas.values()))) if shas else set()
        for key, path, data in read:
            if isinstance(data, VoiceprintError):  # the loader reports it in its own words
                yield Feed(key, None, path.name, reason=data.reason, message=data.message)
            else:
                yield Feed(key, data, path.name, embed=shas[key] not in stored)
                stored.add(shas[key])


def load_paths_on(engine: Engine, rt: Runtime, tenant_id: int,
                  paths: Sequence[str | os.PathLike[str]], library: str, *,
                  batch_size: int = 16, stats: PipelineStats | None = None,
                  **options: Any) -> LoadReport:
    """:func:`~voiceprint.services.sounds.load_paths` with the embedding done on ``engine``
    (started here; the caller closes it). ``options`` go to ``load_paths``."""
    info = engine.start()
    encoder = PrecomputedEncoder(info, EncoderSpec.from_config(rt.config, info.name).load)
    files, _ = find_audio_files(paths)
    keys = {p: i for i, p in enumerate(files)}
    ahead = max(256, 4 * engine.workers * batch_size)  # at least one loader batch
    with registered(rt.models, encoder), EmbedPipeline(
            engine, _feeds(rt, tenant_id, library, files), batch_size=batch_size,
            max_ahead=ahead) as pipe:

        def prefetch(batch: list[Path]) -> dict[Path, FileOutcome]:
            encoder.clear()  # the previous batch is stored
            wanted = [keys[p] for p in batch if p in keys]  # a file added since: embedded here
            settled: dict[Path, FileOutcome] = {}
            for key, done in pipe.take(wanted).items():
                res, path = done.result, files[key]
                if res is None:
                    continue
                if res.reason in WORKER_FAILURES:
                    settled[path] = FileOutcome(str(path), "failed", reason=res.reason,
                                                message=res.message)
                elif res.embedded:
                    assert res.digest is not None and res.vector is not None
                    encoder.add(res.digest, res.vector)
            return settled

        report = load_paths(rt, tenant_id, paths, library, batch_size=batch_size,
                            prefetch=prefetch, **options)
        if stats is not None:
            stats.__dict__.update(pipe.stats.__dict__)
    return report
