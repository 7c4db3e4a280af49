"""Diarization error rate (DER), pure numpy, as NIST md-eval and pyannote.metrics define it.

A turn is ``(start, end, label)`` in seconds. Over the scored time::

    DER = (missed + false_alarm + confusion) / total

with, integrated over time (seconds; a region with ``n_ref`` reference and
``n_hyp`` hypothesis speakers, ``n_correct`` of them matched by the mapping):

- ``total``       = n_ref
- ``missed``      = max(0, n_ref - n_hyp)
- ``false_alarm`` = max(0, n_hyp - n_ref)
- ``confusion``   = min(n_ref, n_hyp) - n_correct

The mapping of hypothesis labels to reference labels is one-to-one and
maximises the total time both are active together (Hungarian assignment,
:func:`scipy.optimize.linear_sum_assignment`). Overlapped speech is scored
(a region with two reference speakers counts twice in ``total``) unless
``skip_overlap``.

Collar (md-eval's ``-c``): no scoring within ``collar`` seconds *on either
side* of every reference boundary, i.e. a ``2 * collar`` wide band around each
start and end of a reference speaker's speech (a speaker's touching or
overlapping turns are merged first, so only real speech edges get a collar).
pyannote.metrics' ``collar=0.5`` is the same as ``collar=0.25`` here.

Scoring region: ``uem`` ``(start, end)`` if given, else from the earliest to
the latest turn of reference and hypothesis together.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Turn = tuple[float, float, Hashable]

__all__ = ["Turn", "DerComponents", "merge_turns", "scored_regions", "label_activity",
           "optimal_mapping", "der_components", "diarization_error_rate"]


@dataclass(frozen=True)
class DerComponents:
    """Seconds of ``total`` reference speech, ``missed``, ``false_alarm``, ``confusion``.

    ``mapping``: hypothesis label -> reference label (unmapped labels absent).
    Rates are fractions of ``total`` (0.1 = 10 %).
    """

    total: float
    missed: float
    false_alarm: float
    confusion: float
    mapping: dict[Hashable, Hashable] = field(default_factory=dict)

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.total if self.total > 0 else 0.0

    def rate(self, part: str) -> float:
        """``missed``, ``false_alarm`` or ``confusion`` as a fraction of ``total``."""
        return float(getattr(self, part)) / self.total if self.total > 0 else 0.0

    def __add__(self, other: "DerComponents") -> "DerComponents":
        """Pool two recordings (sums of seconds; the mapping is not kept)."""
        return DerComponents(self.total + other.total, self.missed + other.missed,
                             self.false_alarm + other.false_alarm, self.confusion + other.confusion)


def merge_turns(turns: Iterable[Turn]) -> dict[Hashable, np.ndarray]:
    """Label -> (n, 2) array of disjoint, sorted ``[start, end)`` intervals (touching ones merged)."""
    by_label: dict[Hashable, list[tuple[float, float]]] = {}
    for start, end, label in turns:
        if not (np.isfinite(start) and np.isfinite(end)):
            raise ValueError(f"turn times must be finite, got ({start}, {end})")
        if end < start:
            raise ValueError(f"turn ends before it starts: ({start}, {end}, {label!r})")
        if end > start:
            by_label.setdefault(label, []).append((float(start), float(end)))
    out = {}
    for label, spans in by_label.items():
        spans.sort()
        merged = [list(spans[0])]
        for s, e in spans[1:]:
            if s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out[label] = np.array(merged, dtype=np.float64)
    return out


def scored_regions(reference: dict[Hashable, np.ndarray], uem: tuple[float, float],
                   collar: float) -> np.ndarray:
    """(n, 2) sorted disjoint intervals of ``uem`` outside the collars of the reference edges."""
    lo, hi = uem
    if collar <= 0:
        return np.array([[lo, hi]]) if hi > lo else np.zeros((0, 2))
    edges = np.concatenate([iv.ravel() for iv in reference.values()]) if reference else np.zeros(0)
    holes = sorted((e - collar, e + collar) for e in edges)
    out, cursor = [], lo
    for a, b in holes:
        if a > cursor:
            out.append((cursor, min(a, hi)))
        cursor = max(cursor, b)
        if cursor >= hi:
            break
    if cursor < hi:
        out.append((cursor, hi))
    return np.array([(a, b) for a, b in out if b > a], dtype=np.float64).reshape(-1, 2)


def label_activity(intervals: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Bool per time point: inside one of the disjoint sorted ``[start, end)`` intervals."""
    if len(intervals) == 0:
        return np.zeros(len(times), dtype=bool)
    idx = np.searchsorted(intervals[:, 0], times, side="right") - 1
    ok = idx >= 0
    inside = np.zeros(len(times), dtype=bool)
    inside[ok] = times[ok] < intervals[idx[ok], 1]
    return inside


def optimal_mapping(cooccurrence: np.ndarray, ref_labels: Sequence[Hashable],
                    hyp_labels: Sequence[Hashable]) -> dict[Hashable, Hashable]:
    """Hypothesis -> reference mapping maximising total co-occurrence (seconds).

    Pairs that never co-occur are left unmapped.
    """
    if cooccurrence.size == 0:
        return {}
    r, h = linear_sum_assignment(cooccurrence, maximize=True)
    return {hyp_labels[j]: ref_labels[i] for i, j in zip(r, h) if cooccurrence[i, j] > 0}


def der_components(reference: Iterable[Turn], hypothesis: Iterable[Turn], *, collar: float = 0.25,
                   skip_overlap: bool = False, uem: tuple[float, float] | None = None
                   ) -> DerComponents:
    """DER parts in seconds for one recording (see the module docstring)."""
    ref = merge_turns(reference)
    hyp = merge_turns(hypothesis)
    if uem is None:
        spans = [iv for d in (ref, hyp) for iv in d.values()]
        if not spans:
            return DerComponents(0.0, 0.0, 0.0, 0.0)
        allv = np.concatenate(spans)
        uem = (float(allv[:, 0].min()), float(allv[:, 1].max()))
    regions = scored_regions(ref, uem, collar)
    cuts = np.unique(np.concatenate([regions.ravel(),
                                     *[iv.ravel() for iv in ref.values()],
                                     *[iv.ravel() for iv in hyp.values()]]))
    cuts = cuts[(cuts >= uem[0]) & (cuts <= uem[1])]
    if len(cuts) < 2:
        return DerComponents(0.0, 0.0, 0.0, 0.0)
    mids = (cuts[:-1] + cuts[1:]) / 2
    dur = np.diff(cuts) * label_activity(regions, mids)
    ref_labels, hyp_labels = list(ref), list(hyp)
    R = np.stack([label_activity(ref[k], mids) for k in ref_labels]) if ref_labels else np.zeros((0, len(mids)), bool)
    H = np.stack([label_activity(hyp[k], mids) for k in hyp_labels]) if hyp_labels else np.zeros((0, len(mids)), bool)
    n_ref, n_hyp = R.sum(axis=0), H.sum(axis=0)
    if skip_overlap:
        dur = dur * (n_ref <= 1)
    co = (R[:, None, :] & H[None, :, :]) @ dur if ref_labels and hyp_labels else np.zeros((len(ref_labels), len(hyp_labels)))
    mapping = optimal_mapping(co, ref_labels, hyp_labels)
    correct = np.zeros(len(mids))
    for h, r in mapping.items():
        correct += R[ref_labels.index(r)] & H[hyp_labels.index(h)]
    return DerComponents(
        total=float(n_ref @ dur),
        missed=float(np.maximum(0, n_ref - n_hyp) @ dur),
        false_alarm=float(np.maximum(0, n_hyp - n_ref) @ dur),
        confusion=float((np.minimum(n_ref, n_hyp) - correct) @ dur),
        mapping=mapping)


def diarization_error_rate(reference: Iterable[Turn], hypothesis: Iterable[Turn], *,
                           collar: float = 0.25, skip_overlap: bool = False,
                           uem: tuple[float, float] | None = None) -> float:
    """DER as a fraction of reference speech (0.1 = 10 %); may exceed 1 with many false alarms."""
    return der_components(reference, hypothesis, collar=collar, skip_overlap=skip_overlap,
                          uem=uem).der
