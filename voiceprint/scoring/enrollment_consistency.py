"""Do an enrollment's clips come from one voice? Flag the clips that disagree.

Each clip is scored (cosine in [-1, 1]) against the voiceprint the *other*
clips make: the centroid of the enrollment's other clips, together with the
speaker's existing voiceprint weighted by its number of utterances when
there is one. That is the same comparison as a genuine verification trial
(a probe against a mean voiceprint), so the rule comes from the encoder's
genuine score distribution (calibrated, else the encoder's measured default,
both raw cosine):

* a clip is **inconsistent** when its score is below the
  ``GENUINE_QUANTILE`` (1 %) quantile of genuine scores: fewer than 1 in 100
  same-speaker trials score that low;
* its reason is ``different_speaker`` when the score is also no higher than
  the median impostor score (it resembles the others no more than a typical
  *different* speaker does), else ``inconsistent_clip`` (unlike the others:
  another speaker, noise, a bad channel or recording).

With only two clips and no existing voiceprint the two scores are one
cosine and nothing says which clip is the odd one: both are flagged with
reason ``clips_disagree``. Identical recordings (same bytes) must be counted
once before this is called (the service checks the SHA-256): a duplicate
agrees with itself and would hide a disagreement.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from voiceprint.scoring.cosine import cosine_matrix, l2_normalize
from voiceprint.scoring.samples import ScoreSample

__all__ = ["GENUINE_QUANTILE", "ConsistencyRule", "ClipAgreement", "check_clips"]

GENUINE_QUANTILE = 0.01


@dataclass(frozen=True)
class ConsistencyRule:
    """Cosine thresholds: below ``inconsistent_below`` a clip is flagged; at or below
    ``different_speaker_at_or_below`` its reason is ``different_speaker``."""

    inconsistent_below: float
    different_speaker_at_or_below: float
    source: str

    @classmethod
    def from_samples(cls, samples: dict[str, Any], source: str,
                     quantile: float = GENUINE_QUANTILE) -> "ConsistencyRule":
        """From stored raw-cosine score samples ``{"genuine": ..., "impostor": {"trials": ...}}``."""
        genuine = ScoreSample.from_json(samples["genuine"])
        impostor = ScoreSample.from_json(samples["impostor"]["trials"])
        k_gen = int(np.floor(quantile * genuine.n))
        low = genuine.score_at_upper_rank(genuine.n - 1 - k_gen)
        median_imp = impostor.score_at_upper_rank(impostor.n // 2)
        return cls(float(low), float(min(median_imp, low)), source)

    def to_dict(self) -> dict[str, Any]:
        return {"inconsistent_below": self.inconsistent_below,
                "different_speaker_at_or_below": self.different_speaker_at_or_below,
                "source": self.source}


@dataclass(frozen=True)
class ClipAgreement:
    index: int
    score: float  # cosine with the voiceprint of the other clips (+ existing voiceprint)
    consistent: bool
    reason: str | None = None  # None | "inconsistent_clip" | "different_speaker" | "clips_disagree"
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, "consistent": self.consistent,
                "reason": self.reason, "message": self.message}


def check_clips(embeddings: np.ndarray, rule: ConsistencyRule,
                existing: np.ndarray | None = None, existing_count: int = 0) -> list[ClipAgreement]:
    """Score each clip of one enrollment against the others and flag the ones that disagree.

    ``embeddings`` (n, d): the request's accepted clips, L2-normalised, one
    row per distinct recording. ``existing`` (d,): the speaker's current
    voiceprint (a centroid of ``existing_count`` utterances), if any.
    A single clip with no existing voiceprint has nothing to agree with and
    is reported consistent (score NaN).
    """
    e = l2_normalize(np.atleast_2d(np.asarray(embeddings, dtype=np.float32)))
    n = len(e)
    has_existing = existing is not None and existing_count > 0
    if n == 0:
        return []
    if n == 1 and not has_existing:
        return [ClipAgreement(0, float("nan"), True)]
    total = e.sum(axis=0)
    if has_existing:
        total = total + existing_count * l2_normalize(np.asarray(existing, dtype=np.float32))
    refs = l2_normalize(total[None, :] - e)  # leave-one-out voiceprints
    scores = np.einsum("ij,ij->i", e, refs)
    pair_only = n == 2 and not has_existing
    out = []
    for i, s in enumerate(scores.astype(float)):
        if s >= rule.inconsistent_below:
            out.append(ClipAgreement(i, s, True))
        elif pair_only:
            out.append(ClipAgreement(i, s, False, "clips_disagree",
                                     f"the two clips disagree (cosine {s:.3f} < "
                                     f"{rule.inconsistent_below:.3f}); send a third clip to tell "
                                     "which one is off"))
        elif s <= rule.different_speaker_at_or_below:
            out.append(ClipAgreement(i, s, False, "different_speaker",
                                     f"this clip sounds like a different speaker (cosine {s:.3f} "
                                     f"with the other clips, a typical different speaker scores "
                                     f"{rule.different_speaker_at_or_below:.3f})"))
        else:
            out.append(ClipAgreement(i, s, False, "inconsistent_clip",
                                     f"this clip is unlike the other clips (cosine {s:.3f} < "
                                     f"{rule.inconsistent_below:.3f}, lower than 99% of same-speaker "
                                     "trials): another speaker or a bad recording"))
    return out


def pairwise_agreement(embeddings: np.ndarray) -> np.ndarray:
    """Cosine matrix of an enrollment's clips (for reports); ``(n, n)``."""
    e = l2_normalize(np.atleast_2d(embeddings))
    return cosine_matrix(e, e)
