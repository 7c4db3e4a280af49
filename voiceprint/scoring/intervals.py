"""How far a measured error rate can be trusted: exact binomial intervals and trial counts.

An error rate measured as ``k`` errors in ``n`` trials has an exact
(Clopper-Pearson) 95 % confidence interval from the beta distribution. With
``k = 0`` the upper bound is about ``3 / n`` (the "rule of three"), so a
target false-accept rate ``far`` cannot be resolved by fewer than about
``3 / far`` impostor trials: 0 errors in 84 trials still allows a FAR of
3.5 %.

Verification trials are not independent: every probe meets every model, so
all trials between the same two speakers rise or fall together, and an
interval that counts trials as independent is too narrow (held-out speakers
landed outside it, see README "Decisions"). :func:`clustered_clopper_pearson`
widens it the Korn-Graubard way: the same exact interval on an *effective*
trial count ``n / design_effect``, the design effect measured from how the
errors cluster by speaker pair (impostor trials) or speaker (genuine).

Impostor trials in a calibration grow as ``S * (S - 1) * P`` for ``S``
speakers with ``P`` probe clips each (every probe against every other
speaker's model); :func:`speakers_needed` and :func:`probes_needed` invert
that.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta

__all__ = ["clopper_pearson", "clustered_clopper_pearson", "design_effect", "RULE_OF_THREE", "min_trials", "resolvable", "impostor_trials",
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


def _cp_real(k: float, n: float, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson for a real-valued (effective) count ``k`` of ``n``."""
    a = (1.0 - confidence) / 2.0
    low = 0.0 if k <= 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k >= n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return low, high


def design_effect(k_per_cluster: np.ndarray, n_per_cluster: np.ndarray) -> float:
    """Variance of an error rate over clustered trials relative to independent ones (>= 1).

    Cluster-robust (between-cluster) variance of ``p = sum k / sum n``
    divided by the binomial ``p (1 - p) / n``. 1.0 when it cannot be
    estimated (no errors, all errors, or fewer than 2 clusters).
    """
    k = np.asarray(k_per_cluster, dtype=np.float64)
    n_c = np.asarray(n_per_cluster, dtype=np.float64)
    n, c = n_c.sum(), int(np.count_nonzero(n_c))
    if n == 0 or c < 2:
        return 1.0
    p = k.sum() / n
    if p <= 0.0 or p >= 1.0:
        return 1.0
    var = c / (c - 1) * float(np.sum((k - p * n_c) ** 2)) / n ** 2
    return max(1.0, var / (p * (1.0 - p) / n))


def clustered_clopper_pearson(k_per_cluster: np.ndarray, n_per_cluster: np.ndarray,
                              confidence: float = 0.95, deff: float | None = None
                              ) -> tuple[float, float, float]:
    """Clopper-Pearson on the effective trial count (Korn & Graubard 1998).

    Returns ``(low, high, effective_n)``. ``deff`` overrides the design
    effect measured from the clusters (e.g. one measured at another threshold).
    """
    k = float(np.sum(k_per_cluster))
    n = float(np.sum(n_per_cluster))
    if n == 0:
        return 0.0, 1.0, 0.0
    d = design_effect(k_per_cluster, n_per_cluster) if deff is None else max(1.0, deff)
    n_eff = n / d
    low, high = _cp_real(k / n * n_eff, n_eff, confidence)
    return low, high, n_eff


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
