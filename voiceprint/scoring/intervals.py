"""How far a measured error rate can be trusted: exact binomial intervals and trial counts.

An error rate measured as ``k`` errors in ``n`` trials has an exact
(Clopper-Pearson) 95 % confidence interval from the beta distribution. With
``k = 0`` the upper bound is about ``3 / n`` (the "rule of three"), so a
target false-accept rate ``far`` cannot be resolved by fewer than about
``3 / far`` impostor trials: 0 errors in 84 trials still allows a FAR of
3.5 %.

Caveat: verification trials are not independent (every probe meets every
model, so two trials share a speaker), so the intervals here are the
*narrowest* honest ones; the real uncertainty is larger.

Impostor trials in a calibration grow as ``S * (S - 1) * P`` for ``S``
speakers with ``P`` probe clips each (every probe against every other
speaker's model); :func:`speakers_needed` and :func:`probes_needed` invert
that.
"""
from __future__ import annotations

import math

from scipy.stats import beta

__all__ = ["clopper_pearson", "RULE_OF_THREE", "min_trials", "resolvable", "impostor_trials",
           "speakers_needed", "probes_needed"]

#: expected-error count that makes a rate measurable: n >= RULE_OF_THREE / rate
RULE_OF_THREE = 3.0


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for ``k`` successes in ``n`` trials.

    Returns ``(low, high)``, fractions in [0, 1]; ``(0.0, 1.0)`` when ``n == 0``.
    """
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    a = (1.0 - confidence) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return low, high


def min_trials(rate: float) -> int:
    """Trials needed before ``rate`` is resolvable: ``ceil(3 / rate)`` (rule of three)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError("rate must be within (0, 1]")
    return int(math.ceil(RULE_OF_THREE / rate - 1e-9))


def resolvable(rate: float, n: int) -> bool:
    """True when ``n`` trials can resolve an error rate as small as ``rate``."""
    return n >= min_trials(rate)


def impostor_trials(speakers: int, probes_per_speaker: float) -> int:
    """Impostor trials of an all-against-all calibration: ``S * (S - 1) * P``."""
    return int(round(speakers * (speakers - 1) * probes_per_speaker))


def speakers_needed(rate: float, probes_per_speaker: float) -> int:
    """Smallest ``S`` with ``S * (S - 1) * P >= 3 / rate`` at ``P`` probes per speaker."""
    need = min_trials(rate)
    p = max(probes_per_speaker, 1e-9)
    s = int(math.ceil((1.0 + math.sqrt(1.0 + 4.0 * need / p)) / 2.0))
    while s > 2 and (s - 1) * (s - 2) * p >= need:
        s -= 1
    while s * (s - 1) * p < need:
        s += 1
    return max(s, 2)


def probes_needed(rate: float, speakers: int) -> int:
    """Smallest probes per speaker ``P`` with ``S * (S - 1) * P >= 3 / rate`` at ``S`` speakers."""
    if speakers < 2:
        raise ValueError("impostor trials need at least 2 speakers")
    return int(math.ceil(min_trials(rate) / (speakers * (speakers - 1))))
