"""Identification (1:N, open set) and verification (1:1).

Scores are cosine similarities in [-1, 1] between L2-normalised embeddings
(Milvus' squared L2 distance ``d`` converts as ``1 - d/2``). A speaker is
represented by its voiceprint (the mean of its utterance embeddings,
``VOICEPRINT_SPEAKER_MODEL=centroid``) or by its best-matching utterance
(``best_utterance``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from voiceprint.errors import Conflict, NotFound, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.services.decisions import OperatingPoint, resolve_operating_point
from voiceprint.services.intake import Upload, check_query
from voiceprint.stores.records import from_blob, speakers, utterances, voiceprints


@dataclass
class Candidate:
    speaker_id: int
    external_id: str
    name: str | None
    score: float


@dataclass
class Identification:
    decision: str  # "identified" | "unknown" | "no_speakers"
    speaker: Candidate | None
    candidates: list[Candidate]
    margin: float | None
    operating_point: OperatingPoint
    query: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verification:
    accepted: bool
    score: float
    speaker: Candidate
    operating_point: OperatingPoint
    query: dict[str, Any] = field(default_factory=dict)


class RecognitionService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _embed_query(self, upload: Upload) -> tuple[np.ndarray, dict[str, Any], str]:
        clip = check_query(upload, self.rt.config)
        encoder = self.rt.speaker_encoder()
        vec = encoder.embed(clip.waveform(encoder.sample_rate))
        info = {"duration_s": round(clip.audio.duration_s, 3),
                "speech_seconds": round(clip.quality.speech_seconds, 3),
                "sample_rate": clip.audio.sample_rate}
        return vec, info, encoder.name

    def _search(self, encoder: str, vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(speaker_id, cosine) best first, one entry per enrolled speaker."""
        rt = self.rt
        if rt.config.SPEAKER_MODEL == "best_utterance":
            hits = rt.vectors.search(rt.collection(encoder, "utterances"), vec[None], k * 20)[0]
            best: dict[int, float] = {}
            for h in hits:
                best[h.owner] = max(best.get(h.owner, -2.0), h.cosine)
            with rt.engine.connect() as conn:
                enrolled = {r.speaker_id for r in conn.execute(
                    sa.select(voiceprints.c.speaker_id).where(
                        voiceprints.c.encoder == encoder, voiceprints.c.enrolled.is_(True),
                        voiceprints.c.speaker_id.in_(list(best) or [-1])))}
            ranked = sorted(((s, c) for s, c in best.items() if s in enrolled), key=lambda t: -t[1])
            return ranked[:k]
        hits = rt.vectors.search(rt.collection(encoder, "speakers"), vec[None], k)[0]
        return [(h.owner, h.cosine) for h in hits]

    def identify(self, upload: Upload, top_k: int | None = None,
                 operating_point: str | None = None) -> Identification:
        rt = self.rt
        k = top_k or rt.config.IDENTIFY_TOP_K
        vec, info, encoder = self._embed_query(upload)
        ranked = self._search(encoder, vec, k)
        with rt.engine.connect() as conn:
            point = resolve_operating_point(conn, encoder, operating_point or rt.config.OPERATING_POINT)
            rows = {r.id: r for r in conn.execute(sa.select(speakers).where(
                speakers.c.id.in_([s for s, _ in ranked] or [-1])))}
        candidates = [Candidate(s, rows[s].external_id, rows[s].name, round(float(c), 6))
                      for s, c in ranked if s in rows]
        if not candidates:
            return Identification("no_speakers", None, [], None, point, info)
        best = candidates[0]
        margin = round(best.score - candidates[1].score, 6) if len(candidates) > 1 else None
        identified = best.score >= point.threshold
        return Identification("identified" if identified else "unknown",
                              best if identified else None, candidates, margin, point, info)

    def verify(self, speaker_id: int, upload: Upload,
               operating_point: str | None = None) -> Verification:
        rt = self.rt
        encoder = rt.config.SPEAKER_ENCODER
        with rt.engine.connect() as conn:
            spk = conn.execute(sa.select(speakers).where(speakers.c.id == speaker_id)).first()
            if spk is None:
                raise NotFound(f"speaker {speaker_id} does not exist")
            vp = conn.execute(sa.select(voiceprints).where(
                voiceprints.c.speaker_id == speaker_id, voiceprints.c.encoder == encoder)).first()
        if vp is None or not vp.enrolled:
            have = float(vp.speech_s) if vp else 0.0
            need = rt.config.ENROLL_MIN_SPEECH_SECONDS
            raise Conflict(f"speaker {speaker_id} is not enrolled yet: {have:.1f} s of net speech "
                           f"of the {need:.1f} s needed; enroll {need - have:.1f} s more",
                           reason="not_enrolled",
                           details={"speech_seconds": have, "required_speech_seconds": need})
        vec, info, enc_name = self._embed_query(upload)
        if enc_name != encoder:  # pragma: no cover - config changed under us
            raise VoiceprintError("encoder changed during the request", status=503)
        if rt.config.SPEAKER_MODEL == "best_utterance":
            with rt.engine.connect() as conn:
                embs = np.stack([from_blob(r.embedding) for r in conn.execute(
                    sa.select(utterances.c.embedding).where(
                        utterances.c.speaker_id == speaker_id, utterances.c.encoder == encoder))])
            score = float(np.max(embs @ vec))
        else:
            score = float(from_blob(vp.embedding) @ vec)
        with rt.engine.connect() as conn:
            point = resolve_operating_point(conn, encoder, operating_point or rt.config.OPERATING_POINT)
        cand = Candidate(spk.id, spk.external_id, spk.name, round(score, 6))
        return Verification(score >= point.threshold, cand.score, cand, point, info)
