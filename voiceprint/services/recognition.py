"""Identification (1:N, open set) and verification (1:1).

Raw scores are cosine similarities in [-1, 1] between L2-normalised
embeddings (Milvus' squared L2 distance ``d`` converts as ``1 - d/2``). A
speaker is represented by its voiceprint, the mean of its utterance
embeddings (``VOICEPRINT_SPEAKER_MODEL=centroid``), or by its best-matching
utterance (``best_utterance``). With ``VOICEPRINT_SCORE_NORMALIZATION=asnorm``
and a stored calibration, scores are AS-norm scores against the
calibration's cohort and judged against thresholds calibrated for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from voiceprint.errors import Conflict, NotFound
from voiceprint.runtime import Runtime
from voiceprint.scoring.normalization import as_norm, top_n_stats
from voiceprint.services.calibration import COHORT_TOP_N, cohort_of, latest_calibration
from voiceprint.services.decisions import OperatingPoint, resolve_operating_point
from voiceprint.services.intake import Upload, check_query
from voiceprint.stores.records import from_blob, speakers, utterances, voiceprints

#: candidates fetched from Milvus before AS-norm re-ranks them
RERANK_POOL = 20


@dataclass
class Candidate:
    speaker_id: int
    external_id: str
    name: str | None
    score: float   # on the operating point's scale (cosine, or AS-norm)
    cosine: float  # raw cosine similarity, always


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

    # -- pieces ---------------------------------------------------------------
    def _embed_query(self, upload: Upload) -> tuple[np.ndarray, dict[str, Any]]:
        clip = check_query(upload, self.rt.config)
        encoder = self.rt.speaker_encoder()
        vec = encoder.embed(clip.waveform(encoder.sample_rate))
        return vec, {"duration_s": round(clip.audio.duration_s, 3),
                     "speech_seconds": round(clip.quality.speech_seconds, 3),
                     "sample_rate": clip.audio.sample_rate}

    def _decision_basis(self, encoder: str, point_name: str | None
                        ) -> tuple[OperatingPoint, np.ndarray | None]:
        """The operating point to judge by and, for AS-norm, the cohort (else None)."""
        rt = self.rt
        name = point_name or rt.config.OPERATING_POINT
        want_norm = rt.config.SCORE_NORMALIZATION == "asnorm"
        with rt.engine.connect() as conn:
            row = latest_calibration(conn, encoder) if want_norm else None
            point = resolve_operating_point(conn, encoder, name, "asnorm" if row else "none",
                                            rt.config.DEFAULT_THRESHOLD)
        if row is None:
            return point, None
        if row.id not in rt.cohorts:
            rt.cohorts[row.id] = cohort_of(row)
        return point, rt.cohorts[row.id]

    @staticmethod
    def _normalise(models: np.ndarray, query: np.ndarray, raw: np.ndarray,
                   cohort: np.ndarray | None) -> np.ndarray:
        if cohort is None:
            return raw
        m_mean, m_std = top_n_stats(models, cohort, COHORT_TOP_N)
        q_mean, q_std = top_n_stats(query[None], cohort, COHORT_TOP_N)
        return as_norm(raw, m_mean, m_std, q_mean[0], q_std[0])

    def _voiceprints(self, encoder: str, speaker_ids: list[int]) -> dict[int, np.ndarray]:
        with self.rt.engine.connect() as conn:
            return {r.speaker_id: from_blob(r.embedding) for r in conn.execute(
                sa.select(voiceprints.c.speaker_id, voiceprints.c.embedding).where(
                    voiceprints.c.encoder == encoder, voiceprints.c.speaker_id.in_(speaker_ids)))}

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

    # -- 1:N ------------------------------------------------------------------
    def identify(self, upload: Upload, top_k: int | None = None,
                 operating_point: str | None = None) -> Identification:
        rt = self.rt
        encoder = rt.config.SPEAKER_ENCODER
        k = top_k or rt.config.IDENTIFY_TOP_K
        point, cohort = self._decision_basis(encoder, operating_point)
        vec, info = self._embed_query(upload)
        ranked = self._search(encoder, vec, max(k, RERANK_POOL) if cohort is not None else k)
        ids = [s for s, _ in ranked]
        cosines = np.array([c for _, c in ranked], dtype=np.float32)
        scores = cosines
        if cohort is not None and ranked:
            models = self._voiceprints(encoder, ids)
            scores = self._normalise(np.stack([models[s] for s in ids]), vec, cosines, cohort)
        order = np.argsort(-scores, kind="stable")[:k]
        with rt.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(sa.select(speakers).where(
                speakers.c.id.in_(ids or [-1])))}
        candidates = [Candidate(ids[i], rows[ids[i]].external_id, rows[ids[i]].name,
                                round(float(scores[i]), 6), round(float(cosines[i]), 6))
                      for i in order if ids[i] in rows]
        if not candidates:
            return Identification("no_speakers", None, [], None, point, info)
        best = candidates[0]
        margin = round(best.score - candidates[1].score, 6) if len(candidates) > 1 else None
        identified = best.score >= point.threshold
        return Identification("identified" if identified else "unknown",
                              best if identified else None, candidates, margin, point, info)

    # -- 1:1 ------------------------------------------------------------------
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
        point, cohort = self._decision_basis(encoder, operating_point)
        vec, info = self._embed_query(upload)
        model = from_blob(vp.embedding)
        if rt.config.SPEAKER_MODEL == "best_utterance":
            with rt.engine.connect() as conn:
                embs = np.stack([from_blob(r.embedding) for r in conn.execute(
                    sa.select(utterances.c.embedding).where(
                        utterances.c.speaker_id == speaker_id, utterances.c.encoder == encoder))])
            model = embs[int(np.argmax(embs @ vec))]
        cosine = float(model @ vec)
        score = float(self._normalise(model[None], vec, np.array([cosine]), cohort)[0])
        cand = Candidate(spk.id, spk.external_id, spk.name, round(score, 6), round(cosine, 6))
        return Verification(score >= point.threshold, cand.score, cand, point, info)
