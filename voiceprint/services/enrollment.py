"""Enrollment: check clips, embed the good ones, store rows + vectors + audio as one unit.

Per request every clip is judged and rejections carry reasons:

* ``duplicate``: the same recording (SHA-256 of the bytes) is already enrolled
  for the speaker, or appears twice in the request - a recording counts once;
* audio problems (unreadable, too long, silent, clipped, too little speech);
* ``voice_mismatch``: the speaker is already enrolled and the clip does not
  match the voiceprint at the operating point used by verify - so nobody can
  pull a voiceprint towards their own voice by adding clips to it. A key with
  the speakers scope may ask to ``replace`` the voiceprint instead (the old
  utterances, vectors and audio go, the new clips become the voiceprint);
* ``different_speaker``: the clip is no closer to the enrollment's other
  clips (and the speaker's stored utterances) than a typical *different*
  speaker is - a second voice (:mod:`voiceprint.scoring.enrollment_consistency`).

Clips that are accepted but unlike the others by more than 99% of
same-speaker pairs (``inconsistent_clip``, or ``clips_disagree`` for two clips
that disagree) carry a warning: a bad channel, noise, or another speaker.
They are not refused, because short or band-limited genuine recordings also
land there (measured: 8 kHz FSDD digit strings).

The accepted clips are embedded in one batch; then one unit of work writes
the utterance rows, their audio, the recomputed voiceprint (the
L2-normalised mean of all the speaker's utterance embeddings) and the
vectors. Any failure undoes all of it, so rows, vectors and files agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import sqlalchemy as sa

from voiceprint.errors import AudioError, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.scoring.cosine import centroid, cosine_matrix
from voiceprint.scoring.enrollment_consistency import check_clips
from voiceprint.services.intake import (CheckedClip, Upload, check_clip, check_request_audio,
                                        enrollment_thresholds)
from voiceprint.services.decisions import consistency_rule
from voiceprint.services.recognition import RecognitionService
from voiceprint.services.speakers import enrollment_status, speaker_row
from voiceprint.stores.records import utcnow, utterances, voiceprints
from voiceprint.stores.types import from_blob, to_blob
from voiceprint.stores.unit_of_work import UnitOfWork


@dataclass
class ClipOutcome:
    index: int
    filename: str | None
    accepted: bool
    utterance_id: int | None = None
    duration_s: float | None = None
    speech_seconds: float | None = None
    #: score against the existing voiceprint (on the operating point's scale), when checked
    score: float | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    #: accepted, but flagged (e.g. unlike the enrollment's other clips)
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EnrollmentResult:
    speaker_id: int
    clips: list[ClipOutcome]
    enrollment: dict[str, Any]
    replaced: bool = False

    @property
    def accepted(self) -> list[ClipOutcome]:
        return [c for c in self.clips if c.accepted]

    @property
    def rejected(self) -> list[ClipOutcome]:
        return [c for c in self.clips if not c.accepted]


def _audio_suffix(filename: str | None, fmt: str) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    return suffix if suffix in (".wav", ".flac", ".ogg", ".oga") else f".{fmt.lower()}"


def _reject(out: ClipOutcome, reason: str, message: str, **details: Any) -> None:
    out.reasons.append({"reason": reason, "message": message, **details})


class EnrollmentService:
    def __init__(self, rt: Runtime, tenant_id: int) -> None:
        self.rt = rt
        self.tenant_id = tenant_id

    def enroll(self, speaker_id: int, uploads: list[Upload], *,
               replace: bool = False) -> EnrollmentResult:
        """Add ``uploads`` to the speaker's voiceprint (or, with ``replace``, start it anew)."""
        rt, cfg = self.rt, self.rt.config
        if not uploads:
            raise VoiceprintError("send at least one audio clip in the 'clips' field",
                                  reason="no_clips", status=422)
        if len(uploads) > cfg.MAX_CLIPS_PER_REQUEST:
            raise VoiceprintError(f"at most {cfg.MAX_CLIPS_PER_REQUEST} clips per request; "
                                  f"got {len(uploads)}", reason="too_many_clips", status=413)
        check_request_audio(uploads, cfg)
        encoder = rt.speaker_encoder()
        with rt.engine.connect() as conn:
            speaker_row(conn, self.tenant_id, speaker_id)
            enrolled_shas = {} if replace else {r.content_sha256: r.id for r in conn.execute(
                sa.select(utterances.c.id, utterances.c.content_sha256).where(
                    utterances.c.speaker_id == speaker_id, utterances.c.encoder == encoder.name))}

        outcomes = [ClipOutcome(index=i, filename=up.filename, accepted=False)
                    for i, up in enumerate(uploads)]
        good: list[tuple[ClipOutcome, CheckedClip]] = []
        first_of: dict[str, int] = {}
        thresholds = enrollment_thresholds(cfg)
        for out, up in zip(outcomes, uploads):
            if up.sha256 in enrolled_shas:
                _reject(out, "duplicate", "this recording is already enrolled for the speaker "
                        f"(utterance {enrolled_shas[up.sha256]}); each recording counts once",
                        utterance_id=enrolled_shas[up.sha256])
                continue
            if up.sha256 in first_of:
                _reject(out, "duplicate", f"the same recording as clip {first_of[up.sha256]} of "
                        "this request; each recording counts once", duplicate_of=first_of[up.sha256])
                continue
            first_of[up.sha256] = out.index
            try:
                clip = check_clip(up, cfg, thresholds)
            except AudioError as exc:
                _reject(out, exc.reason, exc.message, **exc.details)
                continue
            out.duration_s = round(clip.audio.duration_s, 3)
            out.speech_seconds = round(clip.quality.speech_seconds, 3)
            if not clip.quality.ok:
                out.reasons = clip.quality.reasons
                continue
            good.append((out, clip))

        if good:
            vectors = encoder.embed_batch([c.waveform(encoder.sample_rate) for _, c in good])
            for check in (self._matching_voice, self._consistent):
                keep = check(speaker_id, encoder.name, good, vectors, replace)
                good = [g for g, k in zip(good, keep) if k]
                vectors = vectors[keep]
        if good:
            self._store(speaker_id, encoder.name, good, vectors, replace)
            for out, _ in good:
                out.accepted = True
        vp = RecognitionService(rt, self.tenant_id).voiceprint(speaker_id)
        status = enrollment_status(float(vp.speech_s) if vp else 0.0,
                                   int(vp.n_utterances) if vp else 0,
                                   encoder.name, cfg.ENROLL_MIN_SPEECH_SECONDS)
        return EnrollmentResult(speaker_id, outcomes, status, replaced=replace and bool(good))

    def _matching_voice(self, speaker_id: int, encoder: str,
                        good: list[tuple[ClipOutcome, CheckedClip]], vectors: np.ndarray,
                        replace: bool) -> np.ndarray:
        """Which clips may join an enrolled speaker's voiceprint (all, when not enrolled
        or replacing); the others are rejected as ``voice_mismatch``."""
        keep = np.ones(len(good), dtype=bool)
        recog = RecognitionService(self.rt, self.tenant_id)
        vp = recog.voiceprint(speaker_id)
        if replace or vp is None or not vp.enrolled:
            return keep
        basis = recog.decision_basis()
        model = from_blob(vp.embedding)
        for i, ((out, _), vec) in enumerate(zip(good, vectors)):
            cosine = float(cosine_matrix(model, vec)[0, 0])
            score = float(basis.normalise(model[None], vec, np.array([cosine]))[0])
            out.score = round(score, 6)
            if score < basis.point.threshold:
                keep[i] = False
                _reject(out, "voice_mismatch",
                        f"this clip does not match the speaker's enrolled voiceprint (score "
                        f"{score:.3f} < threshold {basis.point.threshold:.3f} at "
                        f"{basis.point.name}); to start the voiceprint anew, a key with the "
                        "'speakers' scope can enroll with replace=true",
                        score=round(score, 6), threshold=basis.point.threshold,
                        operating_point=basis.point.name)
        return keep

    def _consistent(self, speaker_id: int, encoder: str,
                    good: list[tuple[ClipOutcome, CheckedClip]], vectors: np.ndarray,
                    replace: bool) -> np.ndarray:
        """Which clips may join: a clip that sounds like a different speaker than the
        enrollment's other clips (and the stored utterances) is refused; one that is only
        unusually unlike them is accepted with a warning."""
        keep = np.ones(len(good), dtype=bool)
        with self.rt.engine.connect() as conn:
            rule = consistency_rule(conn, encoder, self.tenant_id)
        if rule is None:
            return keep
        vp = None if replace else RecognitionService(self.rt, self.tenant_id).voiceprint(speaker_id)
        verdicts = check_clips(vectors, rule,
                               existing=from_blob(vp.embedding) if vp is not None else None,
                               existing_count=int(vp.n_utterances) if vp is not None else 0)
        for i, ((out, _), verdict) in enumerate(zip(good, verdicts)):
            if verdict.consistent:
                continue
            entry = {"reason": verdict.reason or "inconsistent_clip",
                     "message": verdict.message or "", "score": round(verdict.score, 4),
                     "threshold": round(rule.inconsistent_below, 4)}
            if verdict.reason == "different_speaker":
                keep[i] = False
                out.reasons.append(entry)
            else:
                out.warnings.append(entry)
        return keep

    def _store(self, speaker_id: int, encoder: str, good: list[tuple[ClipOutcome, CheckedClip]],
               vectors: np.ndarray, replace: bool) -> None:
        rt, cfg, tenant = self.rt, self.rt.config, self.tenant_id
        utt_coll = rt.collection(encoder, "utterances")
        spk_coll = rt.collection(encoder, "speakers")
        rt.vectors.ensure_collection(utt_coll, vectors.shape[1])
        rt.vectors.ensure_collection(spk_coll, vectors.shape[1])
        with UnitOfWork(rt.engine, rt.vectors, rt.blobs) as uow:
            conn = uow.conn
            speaker_row(conn, tenant, speaker_id, lock=True)  # concurrent enrollments serialise
            previous = conn.execute(sa.select(voiceprints).where(
                voiceprints.c.speaker_id == speaker_id, voiceprints.c.encoder == encoder)).first()
            if replace:
                self._drop_utterances(uow, speaker_id, encoder, utt_coll)
            now = utcnow()
            ids: list[int] = []
            for (out, clip), vec in zip(good, vectors):
                uid = int(conn.execute(utterances.insert().values(
                    speaker_id=speaker_id, encoder=encoder, embedding=to_blob(vec),
                    filename=clip.upload.filename[:255] if clip.upload.filename else None,
                    content_sha256=clip.upload.sha256, audio_key=None,
                    duration_s=clip.audio.duration_s, speech_s=clip.quality.speech_seconds,
                    sample_rate=clip.audio.sample_rate, created_at=now,
                )).inserted_primary_key[0])
                out.utterance_id = uid
                ids.append(uid)
                if cfg.KEEP_AUDIO:
                    key = (f"utterances/{speaker_id}/"
                           f"{uid}{_audio_suffix(clip.upload.filename, clip.audio.format)}")
                    uow.put_file(key, clip.upload.data)
                    conn.execute(utterances.update().where(utterances.c.id == uid)
                                 .values(audio_key=key))
            uow.upsert_vectors(utt_coll, ids, vectors, [speaker_id] * len(ids), tenant=tenant)
            rows = conn.execute(sa.select(utterances.c.embedding, utterances.c.speech_s,
                                          utterances.c.content_sha256).where(
                utterances.c.speaker_id == speaker_id, utterances.c.encoder == encoder)).all()
            voice = centroid(np.stack([from_blob(r.embedding) for r in rows]))
            # a recording counts once, even if stored twice before duplicates were refused
            speech = float(sum({r.content_sha256: r.speech_s for r in rows}.values()))
            enrolled = speech >= cfg.ENROLL_MIN_SPEECH_SECONDS
            values = dict(embedding=to_blob(voice), n_utterances=len(rows), speech_s=speech,
                          enrolled=enrolled, updated_at=now)
            if previous is None:
                conn.execute(voiceprints.insert().values(speaker_id=speaker_id, encoder=encoder,
                                                         **values))
            else:
                conn.execute(voiceprints.update().where(
                    voiceprints.c.speaker_id == speaker_id,
                    voiceprints.c.encoder == encoder).values(**values))
            was_enrolled = previous is not None and previous.enrolled
            old = (from_blob(previous.embedding)[None], [speaker_id]) if was_enrolled else None
            if enrolled:
                uow.upsert_vectors(spk_coll, [speaker_id], voice[None], [speaker_id],
                                   tenant=tenant, previous=old)
            elif old is not None:
                uow.delete_vectors(spk_coll, [speaker_id], *old, tenant=tenant)

    def _drop_utterances(self, uow: UnitOfWork, speaker_id: int, encoder: str,
                         utt_coll: str) -> None:
        """Replace: the speaker's utterances of ``encoder`` go (rows, vectors, audio)."""
        old = uow.conn.execute(sa.select(utterances.c.id, utterances.c.embedding,
                                         utterances.c.audio_key).where(
            utterances.c.speaker_id == speaker_id, utterances.c.encoder == encoder)).all()
        if not old:
            return
        uow.conn.execute(utterances.delete().where(utterances.c.id.in_([u.id for u in old])))
        uow.delete_vectors(utt_coll, [u.id for u in old],
                           np.stack([from_blob(u.embedding) for u in old]),
                           [speaker_id] * len(old), tenant=self.tenant_id)
        for u in old:
            if u.audio_key:
                uow.delete_file_after_commit(u.audio_key)
