"""Calibration: measure operating points on held-out speakers, judge the data, store the result.

``run_calibration`` embeds a labelled folder with the active speaker
encoder, builds trials (``voiceprint.scoring.calibration``: the first
``enroll_clips`` clips of a speaker form its model, the rest are probes),
measures every operating point for raw cosine and AS-norm with trial counts
and 95 % intervals, decides on held-out folds whether AS-norm is activated
(``voiceprint.scoring.selection``), says whether the data can be trusted at
all and how many more speakers/clips would resolve each target FAR, and
stores it all in the ``calibrations`` table (``results`` JSON, the clips'
embeddings as the AS-norm cohort).

Trust rule (:func:`assess`): a calibration is *trusted* when it has at
least :data:`MIN_TRUSTED_SPEAKERS` speakers (45 distinct impostor speaker
pairs; the impostor tail depends far more on which voices meet than on how
many clips each has), at least :data:`MIN_GENUINE_TRIALS` genuine trials,
and enough *effective* impostor trials to resolve a 1 % FAR (>= 300 after
dividing by the measured design effect, rule of three).
An untrusted calibration is still stored and used, with warnings, and every
point it gives says ``resolvable`` and carries its upper bound.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.encoders.base import Encoder
from voiceprint.errors import VoiceprintError
from voiceprint.scoring.calibration import (COHORT_TOP_N, Trials, between_scores, calibrate_scores,
                                            score_trials, split_models_probes)
from voiceprint.scoring.intervals import impostor_trials, min_trials, speakers_needed
from voiceprint.scoring.points import DEFAULT_TARGET_FARS, far_point_name
from voiceprint.scoring.selection import choose_normalization
from voiceprint.stores.records import DEFAULT_TENANT_ID, calibrations, utcnow

__all__ = ["COHORT_TOP_N", "NORMALIZATIONS", "RESULTS_VERSION", "MIN_TRUSTED_SPEAKERS",
           "MIN_GENUINE_TRIALS", "Trials", "between_scores", "score_trials",
           "split_models_probes", "far_point_name", "calibrate_embeddings", "assess",
           "more_data_advice", "save_calibration", "latest_calibration", "cohort_of", "load_cohort",
           "embed_folder", "run_calibration"]

log = logging.getLogger(__name__)

NORMALIZATIONS = ("none", "asnorm")
#: 2: points carry counts and intervals; score samples; normalisation choice; trust
RESULTS_VERSION = 2
MIN_TRUSTED_SPEAKERS = 10
MIN_GENUINE_TRIALS = 30
TRUST_FAR = 0.01


def calibrate_embeddings(embeddings: dict[str, np.ndarray], enroll_clips: int = 3,
                         fars: Iterable[float] = DEFAULT_TARGET_FARS,
                         top_n: int = COHORT_TOP_N) -> dict[str, Any]:
    """Operating points for raw cosine and AS-norm, the normalisation to use, and the trust verdict.

    ``embeddings``: speaker -> (clips, d) L2-normalised. Pure (no I/O).
    """
    fars = tuple(sorted(set(fars) | set(DEFAULT_TARGET_FARS), reverse=True))
    names, models, probes, owner = split_models_probes(embeddings, enroll_clips)
    cohort = np.concatenate([embeddings[n] for n in names])
    cohort_owner = np.concatenate([[i] * len(embeddings[n]) for i, n in enumerate(names)])
    out: dict[str, Any] = {"version": RESULTS_VERSION, "n_speakers": len(names),
                           "n_probes": int(len(probes)), "enroll_clips": enroll_clips,
                           "target_fars": list(fars)}
    for norm in NORMALIZATIONS:
        trials = score_trials(models, probes, owner,
                              *((cohort, cohort_owner, top_n) if norm == "asnorm" else ()))
        out[norm] = calibrate_scores(trials, fars)
    out["normalization"] = choose_normalization({n: embeddings[n] for n in names}, enroll_clips, top_n)
    out.update(assess(out))
    return out


def more_data_advice(far: float, n_speakers: int, n_probes: int,
                     design_effect: float = 1.0) -> dict[str, Any]:
    """What it takes to resolve ``far``: >= 3 / FAR *effective* impostor trials.

    Impostor trials grow as ``S * (S - 1) * P``; trials between the same two
    speakers move together, so they count ``design_effect`` times less. More
    speakers add independent pairs; more clips of the same speakers mostly
    raise the design effect, so the advice is in speakers (at the current
    clips per speaker, the current design effect assumed).
    """
    p = n_probes / max(n_speakers, 1)
    d = max(design_effect, 1.0)
    need = min_trials(far)
    have = impostor_trials(n_speakers, p)
    s_need = speakers_needed(far / d, p)
    text = (f"{far_point_name(far)} needs >= {need} effective impostor trials (3 / FAR); "
            f"{n_speakers} speakers x {n_speakers - 1} other models x {p:.1f} probes = {have} trials, "
            f"which count as {have / d:.0f} (design effect {d:.1f}: trials of the same two voices "
            f"move together). Use >= {s_need} speakers at {p:.1f} probes each "
            f"({s_need} x {s_need - 1} x {p:.1f} / {d:.1f} = {impostor_trials(s_need, p) / d:.0f}); "
            "more clips of the same speakers barely help.")
    return {"far": far, "effective_trials_needed": need, "impostor_trials": have,
            "effective_trials": round(have / d, 1), "design_effect": round(d, 2),
            "speakers_needed": s_need, "advice": text}


def assess(result: dict[str, Any]) -> dict[str, Any]:
    """``{"trusted", "warnings", "unresolved"}`` for a calibration result (rule in the module doc)."""
    s, n_probes = int(result["n_speakers"]), int(result["n_probes"])
    raw = result["none"]
    d = float(raw.get("design_effect", {}).get("impostor", 1.0))
    warnings: list[str] = []
    if s < MIN_TRUSTED_SPEAKERS:
        warnings.append(f"only {s} speakers: a calibration needs >= {MIN_TRUSTED_SPEAKERS} "
                        f"(here {s * (s - 1) // 2} distinct impostor speaker pairs, there 45)")
    if raw["n_genuine"] < MIN_GENUINE_TRIALS:
        warnings.append(f"only {raw['n_genuine']} genuine trials: false-reject rates need "
                        f">= {MIN_GENUINE_TRIALS}")
    if not raw["points"][far_point_name(TRUST_FAR)]["resolvable"]:
        warnings.append(f"{raw['n_impostor']} impostor trials count as {raw['n_impostor'] / d:.0f} "
                        f"independent ones: even a 1% FAR needs >= {min_trials(TRUST_FAR)}")
    unresolved = [more_data_advice(far, s, n_probes, d) for far in result["target_fars"]
                  if not raw["points"][far_point_name(far)]["resolvable"]]
    return {"trusted": not warnings, "warnings": warnings, "unresolved": unresolved}


# -- persistence --------------------------------------------------------------
def save_calibration(conn: Connection, encoder: str, result: dict[str, Any],
                     cohort: np.ndarray, source: str, tenant_id: int = DEFAULT_TENANT_ID) -> int:
    cohort = np.asarray(cohort, dtype="<f4")
    return int(conn.execute(calibrations.insert().values(
        tenant_id=tenant_id, encoder=encoder, created_at=utcnow(), source=source[:255], results=result,
        cohort=cohort.tobytes(), cohort_count=int(cohort.shape[0]),
        cohort_dim=int(cohort.shape[1]))).inserted_primary_key[0])


def latest_calibration(conn: Connection, encoder: str, tenant_id: int) -> Any:
    """The tenant's newest calibration row of ``encoder`` (with its cohort), or None."""
    return conn.execute(sa.select(calibrations).where(calibrations.c.encoder == encoder,
                                                      calibrations.c.tenant_id == tenant_id)
                        .order_by(calibrations.c.id.desc()).limit(1)).first()


def cohort_of(row: Any) -> np.ndarray:
    """The AS-norm cohort (n, d) float32 stored with a calibration row."""
    return np.frombuffer(row.cohort, dtype="<f4").reshape(row.cohort_count, row.cohort_dim).copy()


def load_cohort(conn: Connection, calibration_id: int) -> np.ndarray:
    """The cohort of calibration ``calibration_id`` (e.g. a ``DecisionBasis.calibration_id``)."""
    row = conn.execute(sa.select(calibrations.c.cohort, calibrations.c.cohort_count,
                                 calibrations.c.cohort_dim)
                       .where(calibrations.c.id == calibration_id)).first()
    if row is None:
        raise VoiceprintError(f"calibration {calibration_id} does not exist", reason="not_found",
                              status=404)
    return cohort_of(row)


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
                    fars: Iterable[float] = DEFAULT_TARGET_FARS, cohort_size: int = 2000,
                    progress: Callable[[int], None] | None = None,
                    tenant_id: int = DEFAULT_TENANT_ID) -> dict[str, Any]:
    """Embed ``data_dir`` with the active speaker encoder, calibrate, store; returns the result.

    The database must be migrated (``voiceprint calibrate`` does that first);
    it is checked before any clip is embedded.
    """
    from voiceprint.audio.corpus import labelled_clips

    fars = tuple(fars)
    if any(not 0.0 < f < 1.0 for f in fars):
        raise VoiceprintError("target FARs must be fractions within (0, 1), e.g. 0.01",
                              reason="bad_calibration_data")
    if not sa.inspect(rt.engine).has_table(calibrations.name):
        raise VoiceprintError("the database has no calibrations table: run `voiceprint db upgrade`",
                              reason="database_not_migrated", status=503)
    try:
        clips = labelled_clips(data_dir)
    except ValueError as exc:
        raise VoiceprintError(str(exc), reason="bad_calibration_data") from exc
    encoder = rt.speaker_encoder()
    embeddings, failed = embed_folder(encoder, clips, progress=progress)
    result = calibrate_embeddings(embeddings, enroll_clips, fars)
    root = Path(data_dir)
    # relative paths only: results are served over HTTP (no server paths)
    result["failed_clips"] = [{"path": str(p.relative_to(root)) if p.is_relative_to(root) else p.name,
                               "error": e} for p, e in failed]
    cohort = np.concatenate(list(embeddings.values()))
    if len(cohort) > cohort_size:
        cohort = cohort[np.random.default_rng(0).choice(len(cohort), cohort_size, replace=False)]
    with rt.engine.begin() as conn:
        result["id"] = save_calibration(conn, encoder.name, result, cohort, root.resolve().name,
                                        tenant_id)
    result["encoder"] = encoder.name
    return result
