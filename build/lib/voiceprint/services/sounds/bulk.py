"""Bulk loading of sound files from local folders (the CLI's ``voiceprint sounds load``).

Per batch of files: read, check, de-duplicate, embed and store through
:meth:`SoundService.insert` (one unit of work per batch). Files already in
the library (same bytes) are skipped, so re-running after a failure or a
kill resumes where it stopped; leftovers of a batch killed before its commit
are removed first (the library is reconciled; leftover files only once older
than ``VOICEPRINT_ORPHAN_FILE_MIN_AGE_SECONDS``, so a concurrent request's files
are never taken for leftovers). Unreadable files are reported
with their reason and the rest still goes in. Progress is recorded in
``sound_loads`` (``GET /sounds/loads``).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Sequence

from voiceprint.errors import AudioError, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.intake import Upload
from voiceprint.services.sounds.catalog import Library
from voiceprint.services.sounds.formats import AUDIO_SUFFIXES, DEFAULT_LIBRARY, check_tags
from voiceprint.services.sounds.service import SoundService
from voiceprint.stores.records import sound_loads, utcnow

log = logging.getLogger(__name__)


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


def load_paths(rt: Runtime, tenant_id: int, paths: Sequence[str | os.PathLike[str]],
               library: str = DEFAULT_LIBRARY, *, batch_size: int = 16,
               tags: dict[str, Any] | None = None, folder_tag: str | None = None,
               on_file: Callable[[FileOutcome], None] | None = None,
               on_start: Callable[[int], None] | None = None) -> LoadReport:
    """Bulk-load audio files from local ``paths`` (files or directories, recursive)."""
    from voiceprint.services.reconcile import Reconciler

    t0 = time.perf_counter()
    svc = SoundService(rt, tenant_id)
    tags = check_tags(tags)
    if folder_tag is not None:
        check_tags({folder_tag: ""})
    lib = svc.catalog.library(library, create=True)
    fix = Reconciler(rt).library(lib, repair=True)
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
    step = max(1, batch_size)
    try:
        for start in range(0, len(files), step):
            outcomes = _load_batch(svc, lib, files[start:start + step], roots, tags, folder_tag)
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


def _read(path: Path, rel: str, max_bytes: int) -> Upload:
    size = path.stat().st_size
    if size > max_bytes:  # refuse before reading it
        raise AudioError(f"'{rel}' is {size / 2**20:.1f} MiB; the limit is "
                         f"{max_bytes / 2**20:.1f} MiB", reason="too_large")
    return Upload(path.read_bytes(), rel)


def _load_batch(svc: SoundService, lib: Library, batch: list[Path], roots: list[Path],
                tags: dict[str, str], folder_tag: str | None) -> list[FileOutcome]:
    outcomes: list[FileOutcome | None] = [None] * len(batch)
    uploads: list[Upload] = []
    where: list[int] = []
    for i, path in enumerate(batch):
        rel = _relative(path, roots)
        try:
            uploads.append(_read(path, rel, svc.rt.config.MAX_UPLOAD_BYTES))
            where.append(i)
        except VoiceprintError as exc:
            outcomes[i] = FileOutcome(str(path), "failed", reason=exc.reason, message=exc.message)
        except OSError as exc:
            outcomes[i] = FileOutcome(str(path), "failed", reason="unreadable",
                                      message=f"cannot read '{rel}': {exc.strerror or exc}")
    # one tag set per call: group files by their folder tag
    groups: dict[str, list[int]] = {}
    for j, up in enumerate(uploads):
        groups.setdefault(str(PurePath(up.filename or "").parent) if folder_tag else "", []).append(j)
    for folder, members in groups.items():
        group_tags = {**tags, folder_tag: folder} if folder_tag and folder != "." else tags
        try:
            result = svc.insert([uploads[j] for j in members], lib.name, group_tags,
                                max_files=len(members))
        except VoiceprintError as exc:
            if exc.status >= 500:
                raise
            for j in members:  # a request-level refusal (e.g. too much audio) fails the group
                outcomes[where[j]] = FileOutcome(str(batch[where[j]]), "failed",
                                                 reason=exc.reason, message=exc.message)
            continue
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
