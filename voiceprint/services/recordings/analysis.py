"""One recording -> who spoke when, and who they are (the work of a job, and of the CLI).

Diarization (:class:`voiceprint.diarization.pipeline.Diarizer`) gives the
segments and one centroid per voice; each centroid is then identified among
the tenant's enrolled speakers exactly as ``/identify`` identifies a clip
(same search, AS-norm when calibrated, open-set operating point sized to
the tenant), and, with a claim, verified against the claimed speaker as
``/verify`` does. The result is a JSON-ready dict (stored with the job).
Scores are on the scale ``score_scale`` states.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from voiceprint.diarization.pipeline import DiarizationResult, Diarizer
from voiceprint.runtime import Runtime
from voiceprint.services.recognition import Candidate, RecognitionService

COSINE = "cosine similarity of L2-normalised embeddings, in [-1, 1] (higher = more alike)"
ASNORM = ("AS-norm score: the cosine similarity standardised against a cohort of impostors "
          "(about how many standard deviations above impostor scores; unbounded)")
SEGMENTATION_NAME = "pyannote/segmentation-3.0"


def _candidate(c: Candidate | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"speaker_id": c.speaker_id, "external_id": c.external_id, "name": c.name,
            "score": c.score, "cosine": c.cosine}


def _scale(normalization: str) -> str:
    return ASNORM if normalization == "asnorm" else COSINE


def analyse(rt: Runtime, tenant_id: int, diarizer: Diarizer, waveform: np.ndarray, *,
            num_speakers: int | None = None, claimed_speaker_id: int | None = None,
            top_k: int = 3, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Diarize ``waveform`` (16 kHz mono, may be a memmap) and name its voices.

    Raises what the recognition service raises for a bad claim (404 unknown
    speaker, 409 not enrolled) before any audio work.
    """
    recognition = RecognitionService(rt, tenant_id)
    claimed = recognition.enrolled_voiceprint(claimed_speaker_id) if claimed_speaker_id else None
    basis = recognition.decision_basis(identify=True)
    verify_basis = recognition.decision_basis() if claimed else None
    result = diarizer.run(waveform, num_speakers=num_speakers, progress=progress)
    labels: dict[str, Any] = {}
    for label, summary in result.labels.items():
        ident = recognition.identify_embedding(summary.centroid, top_k=top_k, basis=basis)
        entry: dict[str, Any] = {
            "speech_seconds": summary.speech_seconds,
            "identification": {"decision": ident.decision, "speaker": _candidate(ident.speaker),
                               "candidates": [_candidate(c) for c in ident.candidates],
                               "margin": ident.margin},
            "verification": None}
        if claimed is not None and verify_basis is not None:
            ver = recognition.verify_embedding(claimed_speaker_id, summary.centroid,  # type: ignore[arg-type]
                                               basis=verify_basis, enrolled=claimed)
            entry["verification"] = {"accepted": ver.accepted, "score": ver.score,
                                     "threshold": ver.operating_point.threshold}
        labels[label] = entry
    return _assemble(result, labels, basis.point, verify_basis, claimed, diarizer, num_speakers)


def _assemble(result: DiarizationResult, labels: dict[str, Any], point: Any, verify_basis: Any,
              claimed: Any, diarizer: Diarizer, num_speakers: int | None) -> dict[str, Any]:
    names = {lab: (e["identification"]["speaker"] or {}).get("external_id")
             for lab, e in labels.items()}
    claim = None
    if claimed is not None:
        spk = claimed[0]
        accepted = {lab: e["verification"]["score"] for lab, e in labels.items()
                    if e["verification"]["accepted"]}
        claim = {"speaker_id": spk.id, "external_id": spk.external_id,
                 "operating_point": verify_basis.point.to_dict(),
                 "score_scale": _scale(verify_basis.point.normalization),
                 "accepted_labels": sorted(accepted, key=lambda k: -accepted[k]),
                 "best_label": max(accepted, key=lambda k: accepted[k]) if accepted else None}
    return {
        "duration_seconds": result.duration_seconds,
        "speech_seconds": result.speech_seconds,
        "overlap_seconds": result.overlap_seconds,
        "num_speakers": len(result.labels),
        "num_speakers_given": num_speakers,
        "segments": [{"start": s.start, "end": s.end, "label": s.label,
                      "speaker": names.get(s.label), "overlap": s.overlap}
                     for s in result.segments],
        "labels": labels,
        "operating_point": point.to_dict(),
        "score_scale": _scale(point.normalization),
        "claim": claim,
        "diarization": {"encoder": diarizer.encoder.name, "segmentation": SEGMENTATION_NAME,
                        "step_seconds": result.stats.get("step_seconds"),
                        "merge_threshold": result.stats.get("threshold"),
                        "cpu_seconds": result.stats.get("cpu_seconds")},
    }
