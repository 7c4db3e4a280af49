"""Check (and repair) that Milvus holds exactly the vectors the database says.

The database is the source of truth: it keeps every embedding. A vector
without a row is an orphan (deleted); a row without a vector is re-inserted
from the stored embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import sqlalchemy as sa

from voiceprint.runtime import Runtime
from voiceprint.stores.records import from_blob, utterances, voiceprints


@dataclass
class CollectionReport:
    collection: str
    rows: int
    vectors: int
    missing: list[int] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing and not self.orphans

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "rows": self.rows, "vectors": self.vectors,
                "missing": len(self.missing), "orphans": len(self.orphans),
                "ok": self.ok, "repaired": self.repaired}


def _reconcile(rt: Runtime, collection: str, expected: dict[int, tuple[int, bytes]],
               repair: bool) -> CollectionReport:
    """``expected``: primary key -> (owner, embedding bytes)."""
    present = rt.vectors.ids(collection)
    report = CollectionReport(collection, len(expected), len(present),
                              sorted(set(expected) - present), sorted(present - set(expected)))
    if repair and not report.ok:
        if report.orphans:
            rt.vectors.delete(collection, report.orphans)
        if report.missing:
            vecs = np.stack([from_blob(expected[i][1]) for i in report.missing])
            rt.vectors.ensure_collection(collection, vecs.shape[1])
            rt.vectors.upsert(collection, report.missing, vecs,
                              [expected[i][0] for i in report.missing])
        report.repaired = True
    return report


def check_speakers(rt: Runtime, encoders: Iterable[str] | None = None,
                   repair: bool = False) -> list[CollectionReport]:
    """Reconcile utterance and voiceprint collections of each encoder in the database."""
    with rt.engine.connect() as conn:
        names = set(encoders or []) or {r[0] for r in conn.execute(
            sa.select(utterances.c.encoder).distinct())}
        reports = []
        for enc in sorted(names):
            utts = {r.id: (r.speaker_id, r.embedding) for r in conn.execute(
                sa.select(utterances.c.id, utterances.c.speaker_id, utterances.c.embedding)
                .where(utterances.c.encoder == enc))}
            vps = {r.speaker_id: (r.speaker_id, r.embedding) for r in conn.execute(
                sa.select(voiceprints.c.speaker_id, voiceprints.c.embedding)
                .where(voiceprints.c.encoder == enc, voiceprints.c.enrolled.is_(True)))}
            reports.append(_reconcile(rt, rt.collection(enc, "utterances"), utts, repair))
            reports.append(_reconcile(rt, rt.collection(enc, "speakers"), vps, repair))
    return reports
