"""Enrollment: quality-check clips, embed the good ones, store rows + vectors atomically.

Per request: every clip is decoded and judged (rejections carry reasons);
the accepted ones are embedded in one batch; then, in one database
transaction, the utterance rows are written, the speaker's voiceprint (the
L2-normalised mean of all its utterance embeddings) is recomputed, and the
vectors go to Milvus. Any failure rolls the transaction back and removes the
vectors and audio written so far, so rows and vectors always agree.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import sqlalchemy as sa

from voiceprint.encoders.base import l2_normalize
from voiceprint.errors import AudioError, NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.intake import CheckedClip, Upload, check_clip, enrollment_thresholds
from voiceprint.services.speakers import enrollment_status
from voiceprint.stores.records import (from_blob, speakers, to_blob, utcnow, utterances,
                                       voiceprints)

log = logging.getLogger(__name__)


@dataclass
class ClipOutcome:
    index: int
    filename: str | None
    accepted: bool
    utterance_id: int | None = None
    duration_s: float | None = None
    speech_seconds: float | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EnrollmentResult:
    speaker_id: int
    clips: list[ClipOutcome]
    enrollment: dict[str, Any]

    @property
    def accepted(self) -> list[ClipOutcome]:
        return [c for c in self.clips if c.accepted]

    @property
    def rejected(self) -> list[ClipOutcome]:
        return [c for c in self.clips if not c.accepted]


def _audio_suffix(filename: str | None, fmt: str) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    return suffix if suffix in (".wav", ".flac", ".ogg", ".oga") else f".{fmt.lower()}"


class EnrollmentService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def enroll(self, speaker_id: int, uploads: list[Upload]) -> EnrollmentResult:
        rt, cfg = self.rt, self.rt.config
        if not uploads:
            raise VoiceprintError("send at least one audio clip in the 'clips' field",
                                  reason="no_clips")
        if len(uploads) > cfg.MAX_CLIPS_PER_REQUEST:
            raise VoiceprintError(f"at most {cfg.MAX_CLIPS_PER_REQUEST} clips per request; "
                                  f"got {len(uploads)}", reason="too_many_clips", status=413)
        with rt.engine.connect() as conn:
            if conn.execute(sa.select(speakers.c.id).where(speakers.c.id == speaker_id)).first() is None:
                raise NotFound(f"speaker {speaker_id} does not exist")

        encoder = rt.speaker_encoder()
        thresholds = enrollment_thresholds(cfg)
        outcomes: list[ClipOutcome] = []
        good: list[tuple[ClipOutcome, CheckedClip]] = []
        for i, up in enumerate(uploads):
            out = ClipOutcome(index=i, filename=up.filename, accepted=False)
            outcomes.append(out)
            try:
                clip = check_clip(up, cfg, thresholds)
            except AudioError as exc:
                out.reasons = [{"reason": exc.reason, "message": exc.message, **exc.details}]
                continue
            out.duration_s = round(clip.audio.duration_s, 3)
            out.speech_seconds = round(clip.quality.speech_seconds, 3)
            if not clip.quality.ok:
                out.reasons = clip.quality.reasons
                continue
            good.append((out, clip))

        if good:
            vectors = encoder.embed_batch([c.waveform(encoder.sample_rate) for _, c in good])
            self._store(speaker_id, encoder.name, good, vectors)
            for out, _ in good:
                out.accepted = True
        with rt.engine.connect() as conn:
            vp = conn.execute(sa.select(voiceprints).where(
                voiceprints.c.speaker_id == speaker_id, voiceprints.c.encoder == encoder.name)).first()
        status = enrollment_status(float(vp.speech_s) if vp else 0.0,
                                   int(vp.n_utterances) if vp else 0,
                                   encoder.name, cfg.ENROLL_MIN_SPEECH_SECONDS)
        return EnrollmentResult(speaker_id, outcomes, status)

    def _store(self, speaker_id: int, encoder: str,
               good: list[tuple[ClipOutcome, CheckedClip]], vectors: np.ndarray) -> None:
        rt, cfg = self.rt, self.rt.config
        utt_coll = rt.collection(encoder, "utterances")
        spk_coll = rt.collection(encoder, "speakers")
        rt.vectors.ensure_collection(utt_coll, vectors.shape[1])
        rt.vectors.ensure_collection(spk_coll, vectors.shape[1])
        written_ids: list[int] = []
        written_keys: list[str] = []
        previous_vp: Any = None
        touched_speaker_vector = False
        try:
            with rt.engine.begin() as conn:
                # lock the speaker row (MySQL/PostgreSQL) so concurrent enrollments serialise
                if conn.execute(sa.select(speakers.c.id).where(speakers.c.id == speaker_id)
                                .with_for_update()).first() is None:
                    raise NotFound(f"speaker {speaker_id} was deleted meanwhile")
                now = utcnow()
                for (out, clip), vec in zip(good, vectors):
                    uid = int(conn.execute(utterances.insert().values(
                        speaker_id=speaker_id, encoder=encoder, embedding=to_blob(vec),
                        filename=(clip.upload.filename or None) and clip.upload.filename[:255],
                        content_sha256=clip.upload.sha256, audio_key=None,
                        duration_s=clip.audio.duration_s, speech_s=clip.quality.speech_seconds,
                        sample_rate=clip.audio.sample_rate, created_at=now,
                    )).inserted_primary_key[0])
                    out.utterance_id = uid
                    written_ids.append(uid)
                    if cfg.KEEP_AUDIO:
                        key = f"utterances/{speaker_id}/{uid}{_audio_suffix(clip.upload.filename, clip.audio.format)}"
                        rt.blobs.put(key, clip.upload.data)
                        written_keys.append(key)
                        conn.execute(utterances.update().where(utterances.c.id == uid)
                                     .values(audio_key=key))
                # the voiceprint: mean of all this speaker's L2-normalised utterance vectors
                rows = conn.execute(sa.select(utterances.c.embedding, utterances.c.speech_s).where(
                    utterances.c.speaker_id == speaker_id, utterances.c.encoder == encoder)).all()
                centroid = l2_normalize(np.mean([from_blob(r.embedding) for r in rows], axis=0)[None])[0]
                speech = float(sum(r.speech_s for r in rows))
                enrolled = speech >= cfg.ENROLL_MIN_SPEECH_SECONDS
                previous_vp = conn.execute(sa.select(voiceprints).where(
                    voiceprints.c.speaker_id == speaker_id, voiceprints.c.encoder == encoder)).first()
                values = dict(embedding=to_blob(centroid), n_utterances=len(rows), speech_s=speech,
                              enrolled=enrolled, updated_at=now)
                if previous_vp is None:
                    conn.execute(voiceprints.insert().values(speaker_id=speaker_id, encoder=encoder,
                                                             **values))
                else:
                    conn.execute(voiceprints.update().where(
                        voiceprints.c.speaker_id == speaker_id,
                        voiceprints.c.encoder == encoder).values(**values))
                # upsert: SQLite may reuse the ids of a transaction killed before
                # its commit, whose vectors could still be in Milvus
                rt.vectors.upsert(utt_coll, written_ids, vectors, [speaker_id] * len(written_ids))
                touched_speaker_vector = True
                if enrolled:
                    rt.vectors.upsert(spk_coll, [speaker_id], centroid[None], [speaker_id])
        except BaseException:
            self._undo(utt_coll, spk_coll, speaker_id, written_ids, written_keys,
                       previous_vp if touched_speaker_vector else False)
            raise

    def _undo(self, utt_coll: str, spk_coll: str, speaker_id: int, ids: list[int],
              keys: list[str], previous_vp: Any) -> None:
        """Compensate a failed enrollment: vectors and files written so far go away."""
        rt = self.rt
        try:
            rt.vectors.delete(utt_coll, ids)
            if previous_vp is not False:
                if previous_vp is not None and previous_vp.enrolled:
                    rt.vectors.upsert(spk_coll, [speaker_id], from_blob(previous_vp.embedding)[None],
                                      [speaker_id])
                else:
                    rt.vectors.delete(spk_coll, [speaker_id])
        except Exception:
            log.exception("could not undo vectors of failed enrollment (speaker %s, ids %s); "
                          "run `voiceprint db check --repair`", speaker_id, ids)
        for key in keys:
            rt.blobs.delete(key)
