"""Who are the diarized voices? Identification and claim checks of label centroids.

Pure functions over arrays, so the recognition service can plug in its own
gallery (the enrolled voiceprints of a tenant), its own score normalisation
(e.g. AS-norm) and its calibrated operating point:

- :func:`identify_labels`: each label's centroid against every enrolled
  voiceprint (open set): the best speaker if its score reaches the
  threshold, else ``unknown``; with the margin to the second best.
- :func:`verify_claim`: each label's centroid against one claimed speaker's
  voiceprint (1:1): accepted iff score >= threshold.

Scores are on the scale of ``Gallery.scorer``: by default the cosine
similarity of L2-normalised vectors, in [-1, 1]; a label is accepted as a
speaker iff ``score >= threshold`` on that same scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(queries (q, dim), models (m, dim)) -> scores (q, m), higher = more alike."""


def cosine_scores(queries: np.ndarray, models: np.ndarray) -> np.ndarray:
    """Cosine similarities (q, m) in [-1, 1] between rows (normalised here)."""
    q = np.asarray(queries, dtype=np.float64)
    m = np.asarray(models, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return q @ m.T


@dataclass(frozen=True)
class Gallery:
    """Enrolled speakers to identify against.

    ``speaker_ids[i]`` owns ``voiceprints[i]`` (a (n, dim) array of the same
    encoder as the centroids); ``threshold`` is on the scale of ``scorer``.
    """

    speaker_ids: Sequence[Hashable]
    voiceprints: np.ndarray
    threshold: float
    scorer: Scorer = field(default=cosine_scores)

    def __post_init__(self) -> None:
        vp = np.asarray(self.voiceprints)
        if vp.ndim != 2 or vp.shape[0] != len(self.speaker_ids):
            raise ValueError(f"{len(self.speaker_ids)} speaker ids but voiceprints of shape {vp.shape}")
        if not np.isfinite(vp).all():
            raise ValueError("voiceprints contain NaN or Inf")


@dataclass(frozen=True)
class LabelIdentity:
    """Identification of one diarized label.

    ``decision``: "identified" (``speaker_id`` set), "unknown" (best score
    below the threshold) or "no_speakers" (empty gallery). ``score`` is the
    best score, ``best_speaker_id`` its owner even when unknown, ``margin``
    the best minus the second-best score (None with fewer than two speakers).
    """

    decision: str
    speaker_id: Hashable | None
    score: float | None
    margin: float | None
    best_speaker_id: Hashable | None
    threshold: float


@dataclass(frozen=True)
class LabelVerification:
    """A label against the claimed speaker: ``accepted`` iff ``score >= threshold``."""

    score: float
    accepted: bool
    threshold: float


def identify_labels(centroids: Mapping[str, np.ndarray], gallery: Gallery) -> dict[str, LabelIdentity]:
    """Open-set identification of every label's centroid (see module docstring).

    Labels are judged independently: two labels may name the same speaker
    (e.g. one voice split in two by the clustering); the scores say how sure
    each match is.
    """
    labels = list(centroids)
    if not labels:
        return {}
    if len(gallery.speaker_ids) == 0:
        return {lab: LabelIdentity("no_speakers", None, None, None, None, gallery.threshold)
                for lab in labels}
    scores = np.asarray(gallery.scorer(np.stack([centroids[lab] for lab in labels]),
                                       np.asarray(gallery.voiceprints)), dtype=np.float64)
    out = {}
    for row, lab in zip(scores, labels):
        order = np.argsort(-row, kind="stable")
        best = float(row[order[0]])
        margin = float(best - row[order[1]]) if len(order) > 1 else None
        owner = gallery.speaker_ids[int(order[0])]
        hit = best >= gallery.threshold
        out[lab] = LabelIdentity("identified" if hit else "unknown", owner if hit else None,
                                 round(best, 6), None if margin is None else round(margin, 6),
                                 owner, gallery.threshold)
    return out


def verify_claim(centroids: Mapping[str, np.ndarray], claimed_voiceprint: np.ndarray,
                 threshold: float, scorer: Scorer = cosine_scores) -> dict[str, LabelVerification]:
    """Score every label against the claimed speaker's voiceprint (1:1)."""
    labels = list(centroids)
    if not labels:
        return {}
    scores = np.asarray(scorer(np.stack([centroids[lab] for lab in labels]),
                               np.asarray(claimed_voiceprint)[None, :]), dtype=np.float64)[:, 0]
    return {lab: LabelVerification(round(float(s), 6), bool(s >= threshold), threshold)
            for lab, s in zip(labels, scores)}
