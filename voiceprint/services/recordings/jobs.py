"""Diarization jobs off the request thread: a small worker pool per process.

A submitted recording waits as a file in ``RecordingSettings.folder`` and a
``recordings`` row (status ``queued``); a worker thread of the process that
accepted it runs it (``running``, progress as a fraction), stores the result
(``done``) or the reason it failed (``failed``), and removes the upload.

Nothing hangs after a restart or a crash: every process renews the
heartbeat (``updated_at``) of its own jobs every few seconds, and a job
that is queued or running while its process is gone is marked ``failed``
with reason ``interrupted``: at start-up for jobs of dead processes on this
host, and at any read once the heartbeat is older than
``stale_seconds`` (other hosts, or a process that hung). Uploads that no
pending job names (a process killed between writing the file and its row)
are removed at start-up once they are older than ``stale_seconds``.

Worker threads are daemons: stopping the service does not wait for a
running job; the job is then failed as interrupted, as above.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa

from voiceprint.diarization.longaudio import decode_to_file
from voiceprint.errors import VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services import audit
from voiceprint.services.recordings.settings import RecordingSettings
from voiceprint.stores.blobs import BlobStore
from voiceprint.stores.records import recordings, utcnow

log = logging.getLogger(__name__)

PENDING = ("queued", "running")
INTERRUPTED = ("the service stopped while this recording was queued or being processed; "
               "upload it again")
#: seconds between progress writes (a heartbeat too)
PROGRESS_EVERY = 2.0


class Cancelled(Exception):
    """The job's row is gone (deleted) or no longer ours: stop working on it."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def build_diarizer(rt: Runtime, settings: RecordingSettings, segmentation: Any = None) -> Any:
    """A :class:`~voiceprint.diarization.pipeline.Diarizer` with the configured speaker encoder
    (503 with advice when the segmentation model or the encoder cannot be loaded)."""
    from voiceprint.diarization.pipeline import DiarizationOptions, Diarizer
    from voiceprint.diarization.segmentation import SegmentationModel

    seg = segmentation or SegmentationModel.load(settings.segmentation_model or None,
                                                 num_threads=rt.config.NUM_THREADS or None)
    return Diarizer(seg, rt.speaker_encoder(), DiarizationOptions(
        step_seconds=settings.step_seconds, threshold=settings.merge_threshold,
        max_speakers=settings.max_speakers))


class RecordingJobs:
    """Per-process worker pool, diarizer and heartbeat (one per app, or per CLI command)."""

    def __init__(self, rt: Runtime, settings: RecordingSettings | None = None, *,
                 start: bool = True) -> None:
        self.rt = rt
        self.settings = settings or RecordingSettings.from_config(rt.config)
        self.files = BlobStore(self.settings.folder)
        self._tag = uuid.uuid4().hex[:8]
        self._pid = 0
        self.worker_id = ""
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._diarizer: Any = None
        self._threads: list[threading.Thread] = []
        try:
            self.fail_interrupted(at_start=True)
        except sa.exc.SQLAlchemyError:  # not migrated yet, or down: /health says so
            log.exception("recordings: could not fail the jobs of dead processes at start")
        if start:
            self.start()

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads in this process (again after a fork: threads do not
        survive one, e.g. gunicorn's preloaded app)."""
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.worker_id = f"{socket.gethostname()[:40]}:{self._pid}:{self._tag}"
            self._queue = queue.Queue()
            self._stop = threading.Event()
            self._threads = []
            self._start_threads()

    def _start_threads(self) -> None:
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"recordings-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        beat = threading.Thread(target=self._heartbeat, name="recordings-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking jobs (a running one finishes in the background thread)."""
        self._stop.set()
        for _ in range(self.settings.workers):
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)

    def submit(self, recording_id: int) -> None:
        """Queue a job whose row names this process (:attr:`worker_id`) as its worker."""
        self.start()
        self._queue.put(recording_id)

    def diarizer(self) -> Any:
        """The diarizer with the configured speaker encoder (segmentation model loaded once)."""
        encoder = self.rt.speaker_encoder()
        with self._model_lock:
            if self._diarizer is None or self._diarizer.encoder is not encoder:
                seg = self._diarizer.segmentation if self._diarizer is not None else None
                self._diarizer = build_diarizer(self.rt, self.settings, segmentation=seg)
            return self._diarizer

    # -- crash safety -----------------------------------------------------------------
    def fail_interrupted(self, at_start: bool = False) -> int:
        """Mark jobs whose process is gone as failed (``interrupted``); returns how many."""
        now = utcnow()
        stale_before = now.timestamp() - self.settings.stale_seconds
        host = socket.gethostname()[:40]
        with self.rt.engine.begin() as conn:
            rows = conn.execute(sa.select(recordings.c.id, recordings.c.worker,
                                          recordings.c.updated_at, recordings.c.audio_key)
                                .where(recordings.c.status.in_(PENDING))).all()
            dead = []
            for r in rows:
                w_host, _, rest = (r.worker or "").partition(":")
                pid = rest.partition(":")[0]
                gone_here = (at_start and w_host == host and pid.isdigit()
                             and not _pid_alive(int(pid)))
                if gone_here or r.updated_at.timestamp() < stale_before:
                    dead.append(r)
            for r in dead:
                conn.execute(recordings.update().where(
                    recordings.c.id == r.id, recordings.c.status.in_(PENDING)).values(
                    status="failed", error_reason="interrupted", error_message=INTERRUPTED,
                    audio_key=None, updated_at=now, finished_at=now))
        for r in dead:
            self._remove_files(r.audio_key)
        if at_start:
            self._remove_leftover_files()
        if dead:
            log.warning("%d diarization job(s) failed as interrupted: %s", len(dead),
                        [r.id for r in dead])
        return len(dead)

    def _remove_leftover_files(self) -> None:
        """Delete uploads no pending job names (a process killed between writing the file and
        the row, or while removing them), once older than ``stale_seconds``."""
        with self.rt.engine.connect() as conn:
            live = {r[0] for r in conn.execute(sa.select(recordings.c.audio_key).where(
                recordings.c.status.in_(PENDING), recordings.c.audio_key.is_not(None)))}
        for key in self.files.keys(include_temp=True):
            base = key[:-4] if key.endswith(".f32") else key
            if base not in live and self.files.age_seconds(key) >= self.settings.stale_seconds:
                self.files.delete(key)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                with self.rt.engine.begin() as conn:
                    conn.execute(recordings.update().where(
                        recordings.c.worker == self.worker_id,
                        recordings.c.status.in_(PENDING)).values(updated_at=utcnow()))
            except Exception:  # the database may be briefly away; the next beat retries
                log.exception("could not renew the heartbeat of diarization jobs")

    # -- the work ---------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._queue.get()
            if job is None:
                return
            try:
                self.run(job)
            except Exception:  # run() records failures itself; never let the worker die
                log.exception("diarization job %s", job)

    def run(self, recording_id: int) -> None:
        """Run one queued job to ``done`` or ``failed`` (a deleted job just stops)."""
        rt = self.rt
        with rt.engine.begin() as conn:
            claimed = conn.execute(recordings.update().where(
                recordings.c.id == recording_id, recordings.c.status == "queued",
                recordings.c.worker == self.worker_id).values(
                status="running", updated_at=utcnow())).rowcount
            row = conn.execute(sa.select(recordings).where(recordings.c.id == recording_id)).first()
        if not claimed or row is None:
            return
        decoded = f"{row.audio_key}.f32"
        outcome, details = "failed", {}
        try:
            result = self._analyse(row, decoded)
            self._finish(recording_id, status="done", result=result, progress=1.0)
            outcome = "done"
            details = {"labels": result["num_speakers"],
                       "identified": sorted({e["identification"]["speaker"]["speaker_id"]
                                             for e in result["labels"].values()
                                             if e["identification"]["speaker"]})}
        except Cancelled:
            outcome = "cancelled"
        except VoiceprintError as exc:
            self._finish(recording_id, status="failed", error_reason=exc.reason,
                         error_message=exc.message[:512])
            outcome = f"failed:{exc.reason}"[:32]
        except Exception:
            log.exception("diarization job %s failed", recording_id)
            self._finish(recording_id, status="failed", error_reason="internal_error",
                         error_message="the analysis failed unexpectedly; the service log has "
                                       "the details")
            outcome = "failed:internal_error"
        finally:
            self._remove_files(row.audio_key)
        try:
            opts = row.options or {}
            audit.record(rt.engine, audit.AuditEvent(
                action="diarize", outcome=outcome, tenant_id=row.tenant_id, key_id=row.key_id,
                actor=str(opts.get("actor", "unknown"))[:64], target_type="recording",
                target_id=recording_id, details=details or None))
        except Exception:  # audit.record logged it; the job's own outcome stands
            pass

    def _analyse(self, row: Any, decoded_key: str) -> dict[str, Any]:
        from voiceprint.audio.decode import AudioLimits
        from voiceprint.services.recordings.analysis import analyse

        s = self.settings
        limits = AudioLimits(max_bytes=s.max_bytes, max_seconds=s.max_seconds,
                             max_channels=self.rt.config.MAX_CHANNELS)
        audio = decode_to_file(self.files.path(row.audio_key), self.files.path(decoded_key), limits)
        with self.rt.engine.begin() as conn:
            conn.execute(recordings.update().where(recordings.c.id == row.id).values(
                duration_s=round(audio.duration_s, 3)))
        last = [0.0]

        def progress(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY and fraction < 1.0:
                return
            last[0] = now
            with self.rt.engine.begin() as conn:
                if not conn.execute(recordings.update().where(
                        recordings.c.id == row.id, recordings.c.status == "running",
                        recordings.c.worker == self.worker_id).values(
                        progress=round(0.99 * fraction, 4), updated_at=utcnow())).rowcount:
                    raise Cancelled()

        opts = row.options or {}
        return analyse(self.rt, row.tenant_id, self.diarizer(), audio.open(),
                       num_speakers=opts.get("num_speakers"),
                       claimed_speaker_id=opts.get("claimed_speaker_id"), top_k=s.top_k,
                       progress=progress)

    def _finish(self, recording_id: int, **values: Any) -> None:
        now = utcnow()
        with self.rt.engine.begin() as conn:
            conn.execute(recordings.update().where(
                recordings.c.id == recording_id, recordings.c.status == "running",
                recordings.c.worker == self.worker_id).values(
                audio_key=None, updated_at=now, finished_at=now, **values))

    def _remove_files(self, key: str | None) -> None:
        if key:
            for k in (key, f"{key}.f32"):
                try:
                    self.files.delete(k)
                except (OSError, ValueError):
                    log.exception("could not remove %s", k)
