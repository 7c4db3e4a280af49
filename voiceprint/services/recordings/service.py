"""Recordings of one tenant: submit for diarization, read status and result, list, delete.

Checks run before anything is stored, cheapest first: the options (speaker
count, the claimed speaker must exist and be enrolled: 404/409), the size
(413), the header (422 unreadable, 413 too long, 422 too short), the models
(503 when the segmentation model or the speaker encoder cannot be loaded),
the tenant's number of pending jobs (429). The upload is then kept in the
recordings folder until its job ends; the result is stored with the job.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from voiceprint.audio.decode import AudioLimits, probe_bytes
from voiceprint.errors import AudioError, NotFound, TooManyRequests, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.intake import Upload
from voiceprint.services.recognition import RecognitionService
from voiceprint.services.recordings.jobs import PENDING, RecordingJobs
from voiceprint.services.speakers import SpeakerService
from voiceprint.stores.records import recordings, utcnow

#: statuses a job can have
STATUSES = ("queued", "running", "done", "failed")
#: refusals of a too big upload are 413 (Payload Too Large), other audio refusals 422
TOO_BIG = ("too_large", "too_long", "too_much_audio")


@dataclass
class RecordingPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def describe(row: Any, *, with_result: bool) -> dict[str, Any]:
    """A job row as the API shows it."""
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "progress": row.progress, "filename": row.filename,
        "content_sha256": row.content_sha256, "size_bytes": row.size_bytes,
        "duration_seconds": row.duration_s, "encoder": row.encoder,
        "options": {k: v for k, v in (row.options or {}).items() if k != "actor"},
        "created_at": row.created_at, "updated_at": row.updated_at,
        "finished_at": row.finished_at,
        "error": ({"reason": row.error_reason, "message": row.error_message}
                  if row.status == "failed" else None)}
    if with_result:
        out["result"] = row.result if row.status == "done" else None
    elif row.result:
        out["num_speakers"] = row.result.get("num_speakers")
    return out


class RecordingService:
    def __init__(self, rt: Runtime, tenant_id: int, jobs: RecordingJobs) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.jobs = jobs
        self.settings = jobs.settings

    # -- submit -------------------------------------------------------------------------
    def _claimed_id(self, speaker_id: int | None, external_id: str | None) -> int | None:
        if speaker_id is None and not external_id:
            return None
        if speaker_id is None:
            speaker_id = int(SpeakerService(self.rt, self.tenant_id).find(external_id)["id"])
        RecognitionService(self.rt, self.tenant_id).enrolled_voiceprint(speaker_id)  # 404 / 409
        return speaker_id

    def _check_audio(self, upload: Upload) -> float:
        s = self.settings
        limits = AudioLimits(max_bytes=s.max_bytes, max_seconds=s.max_seconds,
                             min_seconds=s.min_seconds, max_channels=self.rt.config.MAX_CHANNELS,
                             max_samples=2**62)
        try:
            header = probe_bytes(upload.data, limits=limits, filename=upload.filename)
        except AudioError as exc:
            if exc.reason in TOO_BIG:
                exc.status = 413
            raise
        return header.duration_s

    def submit(self, upload: Upload, *, num_speakers: int | None = None,
               claimed_speaker_id: int | None = None, claimed_external_id: str | None = None,
               key_id: int | None = None, actor: str = "anonymous") -> dict[str, Any]:
        """Store the upload and queue its job; returns the job (status ``queued``)."""
        s = self.settings
        if num_speakers is not None and not 1 <= num_speakers <= s.max_speakers:
            raise VoiceprintError(f"num_speakers must be within 1..{s.max_speakers}",
                                  reason="bad_num_speakers", status=422)
        claimed = self._claimed_id(claimed_speaker_id, claimed_external_id)
        declared = self._check_audio(upload)
        self.jobs.diarizer()  # 503 now, with advice, if a model cannot be loaded
        with self.rt.engine.connect() as conn:
            pending = conn.execute(sa.select(sa.func.count()).select_from(recordings).where(
                recordings.c.tenant_id == self.tenant_id,
                recordings.c.status.in_(PENDING))).scalar_one()
        if pending >= s.max_pending:
            raise TooManyRequests(f"{pending} recordings of this tenant are waiting or being "
                                  f"processed (the limit is {s.max_pending}); try again later",
                                  retry_after=60, reason="too_many_recordings")
        self.jobs.start()
        key = f"{self.tenant_id}/{uuid.uuid4().hex}.upload"
        self.jobs.files.put(key, upload.data)
        now = utcnow()
        try:
            with self.rt.engine.begin() as conn:
                rid = conn.execute(recordings.insert().values(
                    tenant_id=self.tenant_id, status="queued", progress=0.0,
                    filename=upload.filename, content_sha256=upload.sha256,
                    size_bytes=len(upload.data), duration_s=round(declared, 3),
                    encoder=self.rt.config.SPEAKER_ENCODER,
                    options={"num_speakers": num_speakers, "claimed_speaker_id": claimed,
                             "actor": actor},
                    audio_key=key, worker=self.jobs.worker_id, key_id=key_id,
                    created_at=now, updated_at=now)).inserted_primary_key[0]
        except BaseException:
            self.jobs.files.delete(key)
            raise
        self.jobs.submit(int(rid))
        return self.get(int(rid), with_result=False)

    # -- read ---------------------------------------------------------------------------
    def _row(self, recording_id: int) -> Any:
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(recordings).where(
                recordings.c.id == recording_id,
                recordings.c.tenant_id == self.tenant_id)).first()
        if row is None:
            raise NotFound(f"recording {recording_id} does not exist", reason="recording_not_found")
        return row

    def get(self, recording_id: int, *, with_result: bool = True) -> dict[str, Any]:
        self.jobs.fail_interrupted()
        return describe(self._row(recording_id), with_result=with_result)

    def list(self, page: int = 1, page_size: int = 50, status: str | None = None) -> RecordingPage:
        self.jobs.fail_interrupted()
        where = [recordings.c.tenant_id == self.tenant_id]
        if status:
            where.append(recordings.c.status == status)
        with self.rt.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(recordings)
                                 .where(*where)).scalar_one()
            rows = conn.execute(sa.select(recordings).where(*where)
                                .order_by(recordings.c.id.desc())
                                .limit(page_size).offset((page - 1) * page_size)).all()
        return RecordingPage([describe(r, with_result=False) for r in rows], int(total), page,
                             page_size)

    # -- delete -------------------------------------------------------------------------
    def delete(self, recording_id: int) -> None:
        """Delete the job, its result and its upload (a running job stops at its next step)."""
        row = self._row(recording_id)
        with self.rt.engine.begin() as conn:
            conn.execute(recordings.delete().where(recordings.c.id == row.id,
                                                   recordings.c.tenant_id == self.tenant_id))
        if row.audio_key and row.status == "queued":
            self.jobs.files.delete(row.audio_key)  # a running job removes its own files
