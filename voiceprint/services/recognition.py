"""Identification (1:N, open set) and verification (1:1) within one tenant.

Raw scores are cosine similarities in [-1, 1] between L2-normalised
embeddings (Milvus' squared L2 distance ``d`` converts as ``1 - d/2``). A
speaker is represented by its voiceprint, the mean of its utterance
embeddings (``VOICEPRINT_SPEAKER_MODEL=centroid``), or by its best-matching
utterance (``best_utterance``). When the tenant's calibration activated
AS-norm, scores are AS-norm scores against the calibration's cohort and are
judged against thresholds calibrated for them. Searches only ever rank the
tenant's own speakers (the Milvus ``tenant`` partition key).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from voiceprint.errors import Conflict
from voiceprint.runtime import Runtime
from voiceprint.scoring.cosine import cosine_matrix
from voiceprint.scoring.normalization import as_norm, top_n_stats
from voiceprint.services.calibration import COHORT_TOP_N, load_cohort
from voiceprint.services.decisions import (OperatingPoint, decision_basis, enrolled_count,
                                           open_set_basis)
from voiceprint.services.intake import Upload, check_query
from voiceprint.services.speakers import speaker_row
from voiceprint.stores.records import speakers, utterances, voiceprints
from voiceprint.stores.types import from_blob
from voiceprint.timing import stage

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


@dataclass(frozen=True)
class DecisionBasis:
    """What a score is judged by: the operating point and, for AS-norm, the cohort."""

    point: OperatingPoint
    cohort: np.ndarray | None

    def normalise(self, models: np.ndarray, query: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Scores of ``query`` against ``models`` (rows) on the point's scale."""
        if self.cohort is None:
            return raw
        m_mean, m_std = top_n_stats(models, self.cohort, COHORT_TOP_N)
        q_mean, q_std = top_n_stats(query[None], self.cohort, COHORT_TOP_N)
        return as_norm(raw, m_mean, m_std, q_mean[0], q_std[0])


class RecognitionService:
    def __init__(self, rt: Runtime, tenant_id: int) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.encoder = rt.config.SPEAKER_ENCODER

    # -- pieces ---------------------------------------------------------------
    def embed_query(self, upload: Upload) -> tuple[np.ndarray, dict[str, Any]]:
        """Check and embed a probe; (unit vector, facts about the clip)."""
        clip = check_query(upload, self.rt.config)
        encoder = self.rt.speaker_encoder()
        wave = clip.waveform(encoder.sample_rate)
        with stage("embed"):
            vec = encoder.embed(wave)
        return vec, {"duration_s": round(clip.audio.duration_s, 3),
                     "speech_seconds": round(clip.quality.speech_seconds, 3),
                     "sample_rate": clip.audio.sample_rate}

    def decision_basis(self, point_name: str | None = None, *,
                       identify: bool = False) -> DecisionBasis:
        """The operating point to judge by and, for AS-norm, the cohort.

        Identify without a named point judges by the open-set point: the
        threshold at which an unknown caller is wrongly identified with
        probability ``OPEN_SET_FALSE_ID_RATE`` among the tenant's N enrolled
        speakers (the response's ``operating_point.open_set`` says which rate
        and N). Verify (and a named point) judges by the calibrated point.
        """
        rt, cfg = self.rt, self.rt.config
        with stage("db"), rt.engine.connect() as conn:
            if identify and point_name is None and cfg.OPEN_SET_FALSE_ID_RATE:
                basis = open_set_basis(conn, self.encoder,
                                       enrolled_count(conn, self.encoder, self.tenant_id),
                                       cfg.OPEN_SET_FALSE_ID_RATE, cfg.SCORE_NORMALIZATION,
                                       cfg.DEFAULT_THRESHOLD, tenant_id=self.tenant_id)
            else:
                basis = decision_basis(conn, self.encoder, point_name or cfg.OPERATING_POINT,
                                       cfg.SCORE_NORMALIZATION, cfg.DEFAULT_THRESHOLD,
                                       tenant_id=self.tenant_id)
            if not basis.needs_cohort or basis.calibration_id is None:
                return DecisionBasis(basis.point, None)
            cid = basis.calibration_id
            if cid not in rt.cohorts:
                rt.cohorts[cid] = load_cohort(conn, cid)
        return DecisionBasis(basis.point, rt.cohorts[cid])

    def voiceprint(self, speaker_id: int) -> Any:
        """The speaker's voiceprint row for the active encoder, or None."""
        with self.rt.engine.connect() as conn:
            return conn.execute(sa.select(voiceprints).where(
                voiceprints.c.speaker_id == speaker_id,
                voiceprints.c.encoder == self.encoder)).first()

    def _voiceprints(self, speaker_ids: list[int]) -> dict[int, np.ndarray]:
        with self.rt.engine.connect() as conn:
            return {r.speaker_id: from_blob(r.embedding) for r in conn.execute(
                sa.select(voiceprints.c.speaker_id, voiceprints.c.embedding).where(
                    voiceprints.c.encoder == self.encoder,
                    voiceprints.c.speaker_id.in_(speaker_ids)))}

    def _search(self, vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(speaker_id, cosine) best first, one entry per enrolled speaker of the tenant."""
        rt = self.rt
        if rt.config.SPEAKER_MODEL == "best_utterance":
            hits = rt.vectors.search(rt.collection(self.encoder, "utterances"), vec[None],
                                     k * 20, tenant=self.tenant_id)[0]
            best: dict[int, float] = {}
            for h in hits:
                best[h.owner] = max(best.get(h.owner, -2.0), h.cosine)
            with rt.engine.connect() as conn:
                enrolled = {r.speaker_id for r in conn.execute(
                    sa.select(voiceprints.c.speaker_id).where(
                        voiceprints.c.encoder == self.encoder, voiceprints.c.enrolled.is_(True),
                        voiceprints.c.speaker_id.in_(list(best) or [-1])))}
            ranked = sorted(((s, c) for s, c in best.items() if s in enrolled), key=lambda t: -t[1])
            return ranked[:k]
        hits = rt.vectors.search(rt.collection(self.encoder, "speakers"), vec[None], k,
                                 tenant=self.tenant_id)[0]
        return [(h.owner, h.cosine) for h in hits]

    # -- 1:N ------------------------------------------------------------------
    def identify(self, upload: Upload, top_k: int | None = None,
                 operating_point: str | None = None) -> Identification:
        basis = self.decision_basis(operating_point, identify=True)
        vec, info = self.embed_query(upload)
        return self.identify_embedding(vec, info, top_k, basis=basis)

    def identify_embedding(self, vec: np.ndarray, info: dict[str, Any] | None = None,
                           top_k: int | None = None, operating_point: str | None = None, *,
                           basis: DecisionBasis | None = None) -> Identification:
        """:meth:`identify` for an embedding computed elsewhere (e.g. one voice of a diarized
        recording): same search, normalisation and open-set decision."""
        rt = self.rt
        k = top_k or rt.config.IDENTIFY_TOP_K
        basis = basis or self.decision_basis(operating_point, identify=True)
        info = info or {}
        with stage("search"):
            ranked = self._search(vec, max(k, RERANK_POOL) if basis.cohort is not None else k)
        ids = [s for s, _ in ranked]
        cosines = np.array([c for _, c in ranked], dtype=np.float32)
        scores = cosines
        if basis.cohort is not None and ranked:
            with stage("normalise"):
                models = self._voiceprints(ids)
                scores = basis.normalise(np.stack([models[s] for s in ids]), vec, cosines)
        order = np.argsort(-scores, kind="stable")[:k]
        with stage("db"), rt.engine.connect() as conn:  # the join drops hits deleted meanwhile
            rows = {r.id: r for r in conn.execute(sa.select(speakers).where(
                speakers.c.tenant_id == self.tenant_id, speakers.c.id.in_(ids or [-1])))}
        candidates = [Candidate(ids[i], rows[ids[i]].external_id, rows[ids[i]].name,
                                round(float(scores[i]), 6), round(float(cosines[i]), 6))
                      for i in order if ids[i] in rows]
        point = basis.point
        if not candidates:
            return Identification("no_speakers", None, [], None, point, info)
        best = candidates[0]
        margin = round(best.score - candidates[1].score, 6) if len(candidates) > 1 else None
        identified = best.score >= point.threshold
        return Identification("identified" if identified else "unknown",
                              best if identified else None, candidates, margin, point, info)

    # -- 1:1 ------------------------------------------------------------------
    def enrolled_voiceprint(self, speaker_id: int) -> tuple[Any, Any]:
        """(speaker row, voiceprint row) of an enrolled speaker; 404 / 409 otherwise."""
        with self.rt.engine.connect() as conn:
            spk = speaker_row(conn, self.tenant_id, speaker_id)
        vp = self.voiceprint(speaker_id)
        if vp is None or not vp.enrolled:
            have = float(vp.speech_s) if vp else 0.0
            need = self.rt.config.ENROLL_MIN_SPEECH_SECONDS
            raise Conflict(f"speaker {speaker_id} is not enrolled yet: {have:.1f} s of net speech "
                           f"of the {need:.1f} s needed; enroll {need - have:.1f} s more",
                           reason="not_enrolled",
                           details={"speech_seconds": have, "required_speech_seconds": need})
        return spk, vp

    def model_of(self, speaker_id: int, vp: Any, vec: np.ndarray) -> np.ndarray:
        """The speaker model ``vec`` is compared with (voiceprint or best utterance)."""
        if self.rt.config.SPEAKER_MODEL != "best_utterance":
            return from_blob(vp.embedding)
        with self.rt.engine.connect() as conn:
            embs = np.stack([from_blob(r.embedding) for r in conn.execute(
                sa.select(utterances.c.embedding).where(
                    utterances.c.speaker_id == speaker_id,
                    utterances.c.encoder == self.encoder))])
        return embs[int(np.argmax(cosine_matrix(embs, vec)[:, 0]))]

    def verify(self, speaker_id: int, upload: Upload,
               operating_point: str | None = None) -> Verification:
        spk, vp = self.enrolled_voiceprint(speaker_id)
        basis = self.decision_basis(operating_point)
        vec, info = self.embed_query(upload)
        return self.verify_embedding(speaker_id, vec, info, basis=basis, enrolled=(spk, vp))

    def verify_embedding(self, speaker_id: int, vec: np.ndarray,
                         info: dict[str, Any] | None = None, operating_point: str | None = None,
                         *, basis: DecisionBasis | None = None,
                         enrolled: tuple[Any, Any] | None = None) -> Verification:
        """:meth:`verify` for an embedding computed elsewhere (404/409 as verify)."""
        spk, vp = enrolled or self.enrolled_voiceprint(speaker_id)
        basis = basis or self.decision_basis(operating_point)
        info = info or {}
        model = self.model_of(speaker_id, vp, vec)
        cosine = float(cosine_matrix(model, vec)[0, 0])
        with stage("normalise"):
            score = float(basis.normalise(model[None], vec, np.array([cosine]))[0])
        cand = Candidate(spk.id, spk.external_id, spk.name, round(score, 6), round(cosine, 6))
        return Verification(score >= basis.point.threshold, cand.score, cand, basis.point, info)
