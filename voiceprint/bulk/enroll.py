"""``voiceprint bulk enroll``: many speakers' clips embedded on workers, enrolled by the driver.

Per speaker, in the plan's order, the driver sends the clips in calls of at
most ``MAX_CLIPS_PER_REQUEST`` files (and ``MAX_REQUEST_AUDIO_SECONDS``) to
:meth:`EnrollmentService.enroll <voiceprint.services.enrollment.EnrollmentService.enroll>`,
one call after the other - exactly what the HTTP API would get. So a new
speaker's first call enrolls them and every later clip must match the
voiceprint (``voice_mismatch``) and agree with the others; a recording
already enrolled for the speaker is a ``duplicate``. Each call is one unit of
work (rows, vectors, audio), and is audited like an API enrollment.

Where the work happens:

* driver, ahead of the writes (a background thread): read each file, skip
  embedding the ones already enrolled (their SHA-256 is stored);
* workers: decode and check each clip (``check_clip``, the service's own
  intake) and embed the usable ones;
* driver: the service call, which decodes and checks each clip again (it is
  the judge; ~2-4 ms per clip) and takes the workers' vectors
  (:class:`~voiceprint.bulk.precomputed.PrecomputedEncoder`).

Resuming: run the same command again. Clips already enrolled are reported
``skipped`` without being embedded; an interrupted call left nothing (its
unit of work was undone) or, after kill -9, at most vectors and files
without rows. Those are never taken for data (ids are never re-used, and
searches join hits with the rows); ``repair`` (``--repair``) removes them
first, like ``voiceprint db check --repair`` - only while no other process
writes speakers, since a vector written by a live request moments before its
commit looks just like a leftover.

Per file the report says ``enrolled``, ``skipped`` (already enrolled, or the
same bytes as another clip of the speaker), ``rejected`` (the service's
reason: bad audio, too little speech, ``voice_mismatch``, ...) or ``failed``
(never reached the service: unreadable, too large, ``worker_crashed``...).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from voiceprint.bulk.engines import Engine
from voiceprint.bulk.pipeline import Done, EmbedPipeline, Feed, PipelineStats
from voiceprint.bulk.plan import Plan, SpeakerPlan
from voiceprint.bulk.precomputed import PrecomputedEncoder, registered
from voiceprint.bulk.worker import EncoderSpec
from voiceprint.errors import Conflict, NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services import audit
from voiceprint.services.enrollment import EnrollmentService
from voiceprint.services.intake import Upload
from voiceprint.services.speakers import SpeakerService
from voiceprint.stores.records import speakers, utterances

#: worker failures: such a file never reaches the service
WORKER_FAILURES = ("worker_crashed", "embedding_failed")


@dataclass
class FileReport:
    """One file's outcome: ``enrolled``, ``skipped``, ``rejected`` or ``failed``."""

    path: str
    speaker: str
    status: str
    reason: str | None = None
    message: str | None = None
    speaker_id: int | None = None
    utterance_id: int | None = None
    #: score against the enrolled voiceprint, on the operating point's scale, when checked
    score: float | None = None


@dataclass
class EnrollReport:
    source: str
    total: int
    ignored: int
    files: list[FileReport] = field(default_factory=list)
    #: external id -> enrollment status after the run (speakers that were sent clips)
    speakers: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)
    pipeline: PipelineStats = field(default_factory=PipelineStats)
    #: clips the driver had to embed itself (no worker vector matched; should be 0)
    embedded_on_driver: int = 0
    #: leftovers of an interrupted run removed first (``repair``): vectors and files
    repaired: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def problems(self) -> list[FileReport]:
        return [f for f in self.files if f.status in ("rejected", "failed")]


def read_limited(path: Path, max_bytes: int, shown: str) -> bytes:
    """The file's bytes; :class:`VoiceprintError` (``too_large``/``unreadable``) otherwise."""
    try:
        size = path.stat().st_size
        if size > max_bytes:  # refused before it is read
            raise VoiceprintError(f"'{shown}' is {size / 2**20:.1f} MiB; the limit is "
                                  f"{max_bytes / 2**20:.1f} MiB", reason="too_large", status=413)
        return path.read_bytes()
    except OSError as exc:
        raise VoiceprintError(f"cannot read '{shown}': {exc.strerror or type(exc).__name__}",
                              reason="unreadable", status=422) from None


class BulkEnroller:
    """Enroll a :class:`Plan` for one tenant, embedding on ``engine`` (started here)."""

    def __init__(self, rt: Runtime, tenant_id: int, engine: Engine, *, batch_size: int = 8,
                 actor: str = "cli", repair: bool = False,
                 on_start: Callable[[int], None] | None = None,
                 on_file: Callable[[FileReport], None] | None = None) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.engine = engine
        self.batch_size = batch_size
        self.actor = actor
        self.repair = repair
        self.on_start = on_start
        self.on_file = on_file
        self.encoder_name = rt.config.SPEAKER_ENCODER
        self._speaker_ids: dict[str, int | VoiceprintError] = {}

    # -- the driver's reader (runs in the pipeline's thread) ------------------------------
    def _stored_shas(self, external_id: str) -> set[str]:
        with self.rt.engine.connect() as conn:
            return {r[0] for r in conn.execute(
                sa.select(utterances.c.content_sha256)
                .join(speakers, speakers.c.id == utterances.c.speaker_id)
                .where(speakers.c.tenant_id == self.tenant_id,
                       speakers.c.external_id == external_id,
                       utterances.c.encoder == self.encoder_name))}

    def _feeds(self, plan: Plan) -> Iterator[Feed]:
        key = 0
        max_bytes = self.rt.config.MAX_UPLOAD_BYTES
        for spk in plan.speakers:
            stored = self._stored_shas(spk.external_id) if spk.problem is None else set()
            for path in spk.files:
                shown = plan.display(path)
                if spk.problem is not None:
                    yield Feed(key, None, shown, reason=spk.problem[0], message=spk.problem[1])
                else:
                    try:
                        data = read_limited(path, max_bytes, shown)
                    except VoiceprintError as exc:
                        yield Feed(key, None, shown, reason=exc.reason, message=exc.message)
                    else:
                        sha = hashlib.sha256(data).hexdigest()
                        # already stored, or a repeat within this speaker: the service says
                        # "duplicate" without needing a vector
                        yield Feed(key, data, shown, embed=sha not in stored)
                        stored.add(sha)
                key += 1

    # -- the writer ------------------------------------------------------------------------
    def run(self, plan: Plan) -> EnrollReport:
        t0 = time.perf_counter()
        report = EnrollReport(plan.source, plan.total, plan.ignored)
        if self.repair:
            report.repaired = self._repair()
        info = self.engine.start()
        if info.name != self.encoder_name:
            raise VoiceprintError(f"the workers run {info.name!r} but VOICEPRINT_SPEAKER_ENCODER "
                                  f"is {self.encoder_name!r}", reason="encoder_mismatch",
                                  status=409)
        spec = EncoderSpec.from_config(self.rt.config, info.name)
        encoder = PrecomputedEncoder(info, spec.load)
        if self.on_start is not None:
            self.on_start(plan.total)
        limit = self.rt.config.MAX_CLIPS_PER_REQUEST
        ahead = max(256, 4 * self.engine.workers * self.batch_size, limit)
        with registered(self.rt.models, encoder), EmbedPipeline(
                self.engine, self._feeds(plan), batch_size=self.batch_size,
                max_ahead=ahead) as pipe:
            key = 0
            for spk in plan.speakers:
                keys = list(range(key, key + len(spk.files)))
                key += len(spk.files)
                for start in range(0, len(keys), limit):
                    chunk = keys[start:start + limit]
                    done = pipe.take(chunk)
                    files = self._write(spk, [done[k] for k in chunk], encoder, report)
                    report.files.extend(files)
                    if self.on_file is not None:
                        for f in files:
                            self.on_file(f)
            report.pipeline = pipe.stats
        report.engine = self.engine.describe()
        report.embedded_on_driver = encoder.misses
        report.elapsed_s = time.perf_counter() - t0
        return report

    def _repair(self) -> dict[str, int]:
        """Remove what an interrupted run left: vectors and audio files without rows."""
        from voiceprint.services.reconcile import Reconciler
        fixer = Reconciler(self.rt)
        found = fixer.speakers([self.encoder_name], repair=True)
        files = fixer.files(repair=True)
        return {"orphan_vectors": sum(len(r.orphans) for r in found),
                "missing_vectors": sum(len(r.missing) for r in found),
                "orphan_files": len(files.orphan_files)}

    def _speaker_id(self, spk: SpeakerPlan) -> int:
        """The tenant's speaker ``spk.external_id``, created (with name and metadata) if new."""
        known = self._speaker_ids.get(spk.external_id)
        if isinstance(known, VoiceprintError):
            raise known
        if known is not None:
            return known
        svc = SpeakerService(self.rt, self.tenant_id)
        try:
            try:
                sid = int(svc.find(spk.external_id)["id"])
            except NotFound:
                try:
                    sid = int(svc.create(spk.external_id, spk.name, spk.metadata)["id"])
                except Conflict:  # created meanwhile (another run, or the API)
                    sid = int(svc.find(spk.external_id)["id"])
                else:
                    self._audit("speaker_create", "ok", sid, None)
        except VoiceprintError as exc:
            if exc.status >= 500:
                raise
            self._speaker_ids[spk.external_id] = exc
            raise
        self._speaker_ids[spk.external_id] = sid
        return sid

    def _audit(self, action: str, outcome: str, sid: int, details: dict[str, Any] | None) -> None:
        audit.record(self.rt.engine, audit.AuditEvent(
            action=action, outcome=outcome, tenant_id=self.tenant_id, actor=self.actor,
            target_type="speaker", target_id=sid, details=details))

    def _write(self, spk: SpeakerPlan, dones: list[Done], encoder: PrecomputedEncoder,
               report: EnrollReport) -> list[FileReport]:
        """Enroll one chunk of a speaker's files; one :class:`FileReport` per file."""
        out: list[FileReport | None] = [None] * len(dones)
        ready: list[tuple[int, Upload, Done]] = []
        for i, d in enumerate(dones):
            f, res = d.feed, d.result
            if f.data is None:
                out[i] = FileReport(f.filename or "", spk.external_id, "failed", f.reason,
                                    f.message)
            elif res is not None and res.reason in WORKER_FAILURES:
                out[i] = FileReport(f.filename or "", spk.external_id, "failed", res.reason,
                                    res.message)
            else:
                try:
                    ready.append((i, Upload(f.data, f.filename), d))
                except VoiceprintError as exc:  # e.g. a file name with control characters
                    out[i] = FileReport(f.filename or "", spk.external_id, "failed",
                                        exc.reason, exc.message)
        if ready:
            try:
                sid = self._speaker_id(spk)
            except VoiceprintError as exc:
                if exc.status >= 500:
                    raise
                for i, up, _ in ready:
                    out[i] = FileReport(up.filename or "", spk.external_id, "failed",
                                        exc.reason, exc.message)
                ready = []
            for group in _calls(ready, self.rt.config.MAX_REQUEST_AUDIO_SECONDS):
                self._enroll(spk, sid, group, encoder, out, report)
        return [o for o in out if o is not None]

    def _enroll(self, spk: SpeakerPlan, sid: int, group: list[tuple[int, Upload, Done]],
                encoder: PrecomputedEncoder, out: list[FileReport | None],
                report: EnrollReport) -> None:
        for _, _, d in group:
            if d.result is not None and d.result.embedded:
                assert d.result.digest is not None and d.result.vector is not None
                encoder.add(d.result.digest, d.result.vector)
        try:
            result = EnrollmentService(self.rt, self.tenant_id).enroll(
                sid, [up for _, up, _ in group])
        except VoiceprintError as exc:
            if exc.status >= 500:
                raise
            for i, up, _ in group:  # a refusal of the whole call (e.g. too much audio)
                out[i] = FileReport(up.filename or "", spk.external_id, "rejected", exc.reason,
                                    exc.message, speaker_id=sid)
            return
        finally:
            encoder.clear()
        for (i, up, _), clip in zip(group, result.clips):
            first = clip.reasons[0] if clip.reasons else {}
            status = ("enrolled" if clip.accepted else
                      "skipped" if first.get("reason") == "duplicate" else "rejected")
            out[i] = FileReport(up.filename or "", spk.external_id, status, first.get("reason"),
                                "; ".join(r["message"] for r in clip.reasons) or None,
                                speaker_id=sid, utterance_id=clip.utterance_id, score=clip.score)
        report.speakers[spk.external_id] = {"speaker_id": sid, **result.enrollment}
        accepted = len(result.accepted)
        if accepted or any(
                (c.reasons or [{}])[0].get("reason") != "duplicate" for c in result.rejected):
            self._audit("enroll", "ok" if accepted else "rejected", sid,
                        {"bulk": True, "accepted": accepted, "rejected": len(result.rejected)})


def _calls(ready: list[tuple[int, Upload, Done]],
           max_seconds: float) -> list[list[tuple[int, Upload, Done]]]:
    """Split one chunk into service calls that stay within ``max_seconds`` of audio."""
    calls: list[list[tuple[int, Upload, Done]]] = []
    seconds = 0.0
    for item in ready:
        res = item[2].result
        length = res.duration_s if res is not None and res.duration_s else 0.0
        if not calls or seconds + length > max_seconds:
            calls.append([])
            seconds = 0.0
        calls[-1].append(item)
        seconds += length
    return calls
