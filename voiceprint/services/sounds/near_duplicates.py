"""Landmark lookup, fused ranking and near-duplicate reports of the sound service.

Stored sounds keep their landmark fingerprints in ``sound_landmarks``
(:mod:`voiceprint.audio.landmarks`); these helpers look a query's landmarks
up, merge landmark matches into a cosine ranking
(:func:`voiceprint.scoring.sound_match.fused_order`) and decide which new
sounds are near-duplicates of stored ones (or of earlier files of the same
request). Scores stay cosine similarities in [-1, 1]; landmark evidence is
reported beside them as a count.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from voiceprint.audio.landmarks import LandmarkIndex, Landmarks, match_postings
from voiceprint.encoders.base import Encoder
from voiceprint.runtime import Runtime
from voiceprint.scoring.cosine import cosine_matrix
from voiceprint.scoring.sound_match import MIN_LANDMARKS_DUPLICATE, MIN_LANDMARKS_RANK, fused_order
from voiceprint.services.sounds.catalog import Library
from voiceprint.stores.records import sound_landmarks, sounds
from voiceprint.stores.types import from_blob

#: query hashes per landmark lookup statement
LANDMARK_LOOKUP_CHUNK = 500
#: nearest vectors checked per new sound (extra ones cover vectors without a row)
NEAR_CANDIDATES = 9


def landmark_counts(conn: Connection, library_id: int, query: Landmarks) -> dict[int, int]:
    """Stored sound id -> aligned landmark count with ``query`` (sounds sharing a hash)."""
    hashes = sorted(set(query.hashes.tolist()))
    postings: list[tuple[int, int, int]] = []
    for start in range(0, len(hashes), LANDMARK_LOOKUP_CHUNK):
        chunk = hashes[start:start + LANDMARK_LOOKUP_CHUNK]
        postings += [(int(r.sound_id), int(r.hash), int(r.frame)) for r in conn.execute(
            sa.select(sound_landmarks.c.sound_id, sound_landmarks.c.hash, sound_landmarks.c.frame)
            .where(sound_landmarks.c.library_id == library_id, sound_landmarks.c.hash.in_(chunk)))]
    return match_postings(query, postings)


def with_landmarks(conn: Connection, library_id: int, query: np.ndarray,
                   scored: list[tuple[int, float]], counts: dict[int, int],
                   allowed: sa.Select[Any] | None = None) -> list[tuple[int, float]]:
    """``scored`` (sound id, cosine) plus the sounds with at least ``MIN_LANDMARKS_RANK``
    aligned landmarks (among ``allowed`` ids when given), in fused order: those by count,
    then the rest by cosine."""
    promoted = {sid for sid, n in counts.items() if n >= MIN_LANDMARKS_RANK}
    extra = sorted(promoted - {int(i) for i, _ in scored})
    if extra:
        q = sa.select(sounds.c.id, sounds.c.embedding).where(
            sounds.c.library_id == library_id, sounds.c.id.in_(extra))
        if allowed is not None:
            q = q.where(sounds.c.id.in_(allowed))
        scored = scored + [(int(r.id), float(cosine_matrix(from_blob(r.embedding), query)[0, 0]))
                           for r in conn.execute(q)]
    if not scored or not promoted:
        return scored
    order = fused_order(np.array([c for _, c in scored]),
                        np.array([counts.get(int(i), 0) for i, _ in scored]), MIN_LANDMARKS_RANK)
    return [scored[int(i)] for i in order]


def mark_near_duplicates(rt: Runtime, tenant_id: int, lib: Library, encoder: Encoder,
                         items: Sequence[tuple[Any, Landmarks | None]], vectors: np.ndarray) -> None:
    """Set ``near_duplicate_of`` on the outcome of each new sound (``items``: (outcome,
    landmarks), parallel to ``vectors``) whose cosine with a stored sound or an earlier item
    reaches ``encoder.near_duplicate_cosine`` (when the encoder has one), or that shares
    ``MIN_LANDMARKS_DUPLICATE`` aligned landmarks with it. Landmark evidence outranks
    cosine; among equals the strongest is reported as ``{id, name, score, landmarks}``
    (``index`` instead of ``id``/``name`` for an earlier item)."""
    min_cos = getattr(encoder, "near_duplicate_cosine", None)
    # per item: (by landmarks, landmarks if so, cosine, landmarks, reference)
    best: list[tuple[bool, int, float, int, dict[str, Any]] | None] = [None] * len(items)

    def offer(k: int, count: int, score: float, ref: dict[str, Any]) -> None:
        by_marks = count >= MIN_LANDMARKS_DUPLICATE
        if by_marks or (min_cos is not None and score >= min_cos):
            cand = (by_marks, count if by_marks else 0, score, count, ref)
            current = best[k]
            if current is None or cand[:3] > current[:3]:
                best[k] = cand

    hits = rt.vectors.search(lib.collection, vectors, NEAR_CANDIDATES, tenant=tenant_id)
    with rt.engine.connect() as conn:
        counts = [landmark_counts(conn, lib.id, marks) if marks is not None else {}
                  for _, marks in items]
        wanted = {h.id for row in hits for h in row} | {
            sid for c in counts for sid, n in c.items() if n >= MIN_LANDMARKS_DUPLICATE}
        rows = {int(r.id): r for r in conn.execute(
            sa.select(sounds.c.id, sounds.c.name, sounds.c.embedding).where(
                sounds.c.id.in_(sorted(wanted)), sounds.c.library_id == lib.id))} if wanted else {}
    for k in range(len(items)):
        for sid in {h.id for h in hits[k]} | set(counts[k]):
            row = rows.get(sid)
            if row is not None:  # else: a vector without a row, or too few landmarks
                offer(k, counts[k].get(sid, 0), float(cosine_matrix(from_blob(row.embedding), vectors[k])[0, 0]),
                      {"id": sid, "name": row.name})
    within = cosine_matrix(vectors, vectors)
    earlier = LandmarkIndex()
    for k, (out, marks) in enumerate(items):
        got = earlier.match(marks) if k and marks is not None else {}
        for i in range(k):
            offer(k, got.get(i, 0), float(within[k, i]), {"index": items[i][0].index})
        if marks is not None:
            earlier.add(k, marks)
    for (out, _), found in zip(items, best):
        if found is not None:
            _, _, score, count, ref = found
            out.near_duplicate_of = {**ref, "score": round(float(np.clip(score, -1, 1)), 6),
                                     "landmarks": int(count)}
