"""Calibration: measured operating points (thresholds) per encoder.

From a labelled folder of speakers' clips: the first ``enroll_clips`` clips
of each speaker form its model (the same mean voiceprint the service
builds), every other clip is a probe scored against every model. Genuine
and impostor score distributions give the EER threshold, the minDCF
threshold (p_target 0.01) and thresholds at target false-accept rates,
each with the FAR/FRR measured there. Raw cosine and AS-norm scores are
calibrated separately; the clips' embeddings are kept as the AS-norm cohort.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.encoders.base import Encoder, l2_normalize
from voiceprint.errors import VoiceprintError
from voiceprint.scoring.metrics import (compute_eer, compute_min_dcf, rates_at_threshold,
                                        threshold_at_far)
from voiceprint.scoring.normalization import as_norm, top_n_stats
from voiceprint.services.decisions import OperatingPoint
from voiceprint.stores.records import DEFAULT_TENANT_ID, calibrations, utcnow

log = logging.getLogger(__name__)

DEFAULT_FARS = (0.01, 0.001)
COHORT_TOP_N = 200
NORMALIZATIONS = ("none", "asnorm")


def far_point_name(far: float) -> str:
    """0.01 -> 'far_1pct', 0.001 -> 'far_0.1pct'."""
    return f"far_{far * 100:g}pct"


@dataclass
class Trials:
    """Scores of every probe against every speaker model (cosine or AS-norm)."""

    scores: np.ndarray  # (n_probes, n_models)
    labels: np.ndarray  # (n_probes, n_models) 1 = same speaker

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scores.ravel(), self.labels.ravel()


def split_models_probes(embeddings: dict[str, np.ndarray], enroll_clips: int
                        ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Speaker models (mean of the first ``enroll_clips`` rows) and probes (the rest).

    Returns (speakers, models (S, d), probes (P, d), probe_speaker_index (P,)).
    Speakers with fewer than ``enroll_clips + 1`` clips are skipped.
    """
    names, models, probes, owner = [], [], [], []
    for name in sorted(embeddings):
        e = embeddings[name]
        if len(e) <= enroll_clips:
            continue
        names.append(name)
        models.append(l2_normalize(e[:enroll_clips].mean(axis=0)[None])[0])
        probes.append(e[enroll_clips:])
        owner += [len(names) - 1] * (len(e) - enroll_clips)
    if len(names) < 2:
        raise VoiceprintError("calibration needs at least 2 speakers with more than "
                              f"{enroll_clips} clips each", reason="too_few_speakers")
    return names, np.stack(models), np.concatenate(probes), np.array(owner)


def score_trials(models: np.ndarray, probes: np.ndarray, owner: np.ndarray,
                 cohort: np.ndarray | None = None, cohort_owner: np.ndarray | None = None,
                 top_n: int = COHORT_TOP_N) -> Trials:
    """Raw cosine trials, or AS-norm trials when ``cohort`` is given.

    ``cohort_owner`` (speaker index per cohort row) keeps a model's and a
    probe's own speaker out of their cohort statistics.
    """
    raw = probes @ models.T
    labels = (owner[:, None] == np.arange(len(models))[None, :]).astype(np.int8)
    if cohort is None:
        return Trials(raw, labels)
    m_excl = p_excl = None
    if cohort_owner is not None:
        m_excl = np.arange(len(models))[:, None] == cohort_owner[None, :]
        p_excl = owner[:, None] == cohort_owner[None, :]
    m_mean, m_std = top_n_stats(models, cohort, top_n, m_excl)
    p_mean, p_std = top_n_stats(probes, cohort, top_n, p_excl)
    return Trials(as_norm(raw, m_mean[None, :], m_std[None, :], p_mean[:, None], p_std[:, None]),
                  labels)


def between_scores(scores: np.ndarray, threshold: float) -> float:
    """Move a threshold that sits on an observed score half-way down to the next lower one.

    The metric functions return observed scores; on new data a threshold
    exactly at the lowest accepted sample rejects about half of its
    neighbours. The move changes no decision on the calibration data.
    """
    lower = scores[scores < threshold]
    return float(threshold if lower.size == 0 else (threshold + lower.max()) / 2)


def operating_points(scores: np.ndarray, labels: np.ndarray,
                     fars: Iterable[float] = DEFAULT_FARS) -> dict[str, Any]:
    """EER, minDCF and per-FAR thresholds with the FAR/FRR measured at each."""
    eer, eer_thr = compute_eer(scores, labels)
    min_dcf, dcf_thr = compute_min_dcf(scores, labels, p_target=0.01)
    points: dict[str, dict[str, float]] = {}
    for name, thr in [("eer", eer_thr), ("min_dcf", dcf_thr)] + [
            (far_point_name(f), threshold_at_far(scores, labels, f)) for f in fars]:
        thr = between_scores(scores, thr)
        far, frr = rates_at_threshold(scores, labels, thr)
        points[name] = {"threshold": float(thr), "far": float(far), "frr": float(frr)}
    genuine, impostor = scores[labels == 1], scores[labels == 0]
    return {"eer": float(eer), "min_dcf": float(min_dcf), "points": points,
            "n_genuine": int(genuine.size), "n_impostor": int(impostor.size),
            "genuine_mean": float(genuine.mean()), "impostor_mean": float(impostor.mean())}


def calibrate_embeddings(embeddings: dict[str, np.ndarray], enroll_clips: int = 3,
                         fars: Iterable[float] = DEFAULT_FARS,
                         top_n: int = COHORT_TOP_N) -> dict[str, Any]:
    """Operating points for raw cosine and AS-norm from per-speaker clip embeddings."""
    fars = tuple(fars)
    names, models, probes, owner = split_models_probes(embeddings, enroll_clips)
    cohort = np.concatenate([embeddings[n] for n in names])
    cohort_owner = np.concatenate([[i] * len(embeddings[n]) for i, n in enumerate(names)])
    out: dict[str, Any] = {"n_speakers": len(names), "n_probes": int(len(probes)),
                           "enroll_clips": enroll_clips}
    for norm in NORMALIZATIONS:
        trials = score_trials(models, probes, owner,
                              *((cohort, cohort_owner, top_n) if norm == "asnorm" else ()))
        out[norm] = operating_points(*trials.flat(), fars)
    return out


# -- persistence --------------------------------------------------------------
def save_calibration(conn: Connection, encoder: str, result: dict[str, Any],
                     cohort: np.ndarray, source: str, tenant_id: int = DEFAULT_TENANT_ID) -> int:
    cohort = np.asarray(cohort, dtype="<f4")
    return int(conn.execute(calibrations.insert().values(
        tenant_id=tenant_id, encoder=encoder, created_at=utcnow(), source=source[:255], results=result,
        cohort=cohort.tobytes(), cohort_count=int(cohort.shape[0]),
        cohort_dim=int(cohort.shape[1]))).inserted_primary_key[0])


def latest_calibration(conn: Connection, encoder: str) -> Any:
    return conn.execute(sa.select(calibrations).where(calibrations.c.encoder == encoder)
                        .order_by(calibrations.c.id.desc()).limit(1)).first()


def stored_operating_point(conn: Connection, encoder: str, name: str,
                           normalization: str = "none") -> OperatingPoint | None:
    """The latest calibration's point ``name`` for ``encoder``, or None if uncalibrated.

    Raises a 422 ``VoiceprintError`` for a point name the calibration does not have.
    """
    row = latest_calibration(conn, encoder)
    if row is None:
        return None
    per_norm = row.results.get(normalization)
    if per_norm is None:
        return None
    point = per_norm["points"].get(name)
    if point is None:
        raise VoiceprintError(f"no operating point {name!r}; calibration {row.id} has "
                              f"{', '.join(sorted(per_norm['points']))}",
                              reason="unknown_operating_point", status=422)
    return OperatingPoint(name=name, threshold=point["threshold"], calibrated=True,
                          normalization=normalization, expected_far=point["far"],
                          expected_frr=point["frr"], source=f"calibration {row.id}")


def cohort_of(row: Any) -> np.ndarray:
    return np.frombuffer(row.cohort, dtype="<f4").reshape(row.cohort_count, row.cohort_dim).copy()


# -- the whole job ------------------------------------------------------------
def embed_folder(encoder: Encoder, clips: dict[str, list[Path]], batch_size: int = 16,
                 progress: Callable[[int], None] | None = None,
                 ) -> tuple[dict[str, np.ndarray], list[tuple[Path, str]]]:
    """Embed every readable clip; returns per-speaker embeddings and (path, error) failures."""
    from voiceprint.audio import decode_file, resample
    from voiceprint.errors import AudioError

    out: dict[str, np.ndarray] = {}
    failed: list[tuple[Path, str]] = []
    for speaker, paths in clips.items():
        waves, rows = [], []
        for p in paths:
            try:
                a = decode_file(p)
            except AudioError as exc:
                failed.append((p, exc.message))
                continue
            waves.append(resample(a.samples, a.sample_rate, encoder.sample_rate))
            if len(waves) == batch_size:
                rows.append(encoder.embed_batch(waves))
                waves = []
            if progress:
                progress(1)
        if waves:
            rows.append(encoder.embed_batch(waves))
        if rows:
            out[speaker] = np.concatenate(rows)
    return out, failed


def run_calibration(rt: Any, data_dir: str | Path, enroll_clips: int = 3,
                    fars: Iterable[float] = DEFAULT_FARS, cohort_size: int = 2000,
                    progress: Callable[[int], None] | None = None,
                    tenant_id: int = DEFAULT_TENANT_ID) -> dict[str, Any]:
    """Embed ``data_dir`` with the active speaker encoder, calibrate, store; returns the result."""
    from voiceprint.audio.corpus import labelled_clips

    encoder = rt.speaker_encoder()
    try:
        clips = labelled_clips(data_dir)
    except ValueError as exc:
        raise VoiceprintError(str(exc), reason="bad_calibration_data") from exc
    embeddings, failed = embed_folder(encoder, clips, progress=progress)
    result = calibrate_embeddings(embeddings, enroll_clips, fars)
    result["failed_clips"] = [{"path": str(p), "error": e} for p, e in failed]
    cohort = np.concatenate(list(embeddings.values()))
    if len(cohort) > cohort_size:
        cohort = cohort[np.random.default_rng(0).choice(len(cohort), cohort_size, replace=False)]
    with rt.engine.begin() as conn:
        result["id"] = save_calibration(conn, encoder.name, result, cohort, str(data_dir),
                                        tenant_id)
    result["encoder"] = encoder.name
    return result
