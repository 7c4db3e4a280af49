"""Synthetic speaker embeddings with the shape of the CN-Celeb search benchmark.

CN-Celeb 1+2 development data is about 650,000 utterances of about 3,000
speakers; the benchmark enrolls all of them (192-dim ECAPA-TDNN embeddings)
and looks up 10,000 held-out utterances. This module generates vectors with
that shape and a realistic geometry, without the corpus:

* one centre per speaker, uniform on the unit sphere (random centres in
  192 dimensions have cosine about 0 +- 0.07 with each other);
* an utterance is ``normalise(centre + noise)`` with isotropic Gaussian
  noise of norm about ``sigma`` (times a per-speaker factor in
  [0.85, 1.15]). Two utterances of one speaker then have cosine about
  ``1 / (1 + sigma**2)``; ``sigma`` is chosen from the requested mean
  within-speaker cosine (default 0.65, typical of ECAPA on CN-Celeb);
* queries are further utterances of the enrolled speakers (held out: drawn
  from a separate random stream, never inserted).

Everything is float32, L2-normalised, deterministic for a given seed, and
produced in chunks so the generator itself never holds more than one chunk.
``scale`` multiplies the enrolled, query *and speaker* counts, so the number
of utterances per speaker (the cluster size, which decides how hard the
nearest-neighbour search is) stays the same at every scale.

``python -m eval.synthetic --scale 0.01`` prints the sizes and the measured
within/between-speaker cosine.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Iterator

import numpy as np

_STREAM_CENTRES, _STREAM_ENROLL, _STREAM_QUERY, _STREAM_SPREAD, _STREAM_PAIRS = range(5)


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and geometry of a synthetic corpus (cosine values in [-1, 1])."""

    n_enroll: int = 650_000
    n_query: int = 10_000
    dim: int = 192
    n_speakers: int = 3_000
    within_cosine: float = 0.65
    seed: int = 0
    chunk: int = 50_000

    def scaled(self, scale: float) -> "SyntheticSpec":
        """Multiply the enrolled, query and speaker counts by ``scale`` (at least 2 each)."""
        if scale <= 0:
            raise ValueError("scale must be positive")
        return replace(self,
                       n_enroll=max(2, round(self.n_enroll * scale)),
                       n_query=max(2, round(self.n_query * scale)),
                       n_speakers=max(2, round(self.n_speakers * scale)))

    @property
    def sigma(self) -> float:
        """Noise norm giving ``within_cosine`` between two utterances of one speaker."""
        if not 0.0 < self.within_cosine < 1.0:
            raise ValueError("within_cosine must be within (0, 1)")
        return math.sqrt(1.0 / self.within_cosine - 1.0)

    def describe(self) -> dict[str, object]:
        return {**asdict(self), "sigma": self.sigma}


def _rng(spec: SyntheticSpec, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([spec.seed, stream, index])


def _normalize(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def speaker_centres(spec: SyntheticSpec) -> np.ndarray:
    """Speaker centres, shape (n_speakers, dim), float32 unit rows."""
    g = _rng(spec, _STREAM_CENTRES).standard_normal((spec.n_speakers, spec.dim), dtype=np.float32)
    return _normalize(g)


def speaker_spread(spec: SyntheticSpec) -> np.ndarray:
    """Per-speaker noise norm, shape (n_speakers,): ``sigma`` times U(0.85, 1.15)."""
    return (spec.sigma * _rng(spec, _STREAM_SPREAD).uniform(0.85, 1.15, spec.n_speakers)
            ).astype(np.float32)


def _utterances(spec: SyntheticSpec, centres: np.ndarray, spread: np.ndarray,
                rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    owners = rng.integers(0, spec.n_speakers, n)
    noise = rng.standard_normal((n, spec.dim), dtype=np.float32)
    noise *= (spread[owners] / math.sqrt(spec.dim))[:, None]
    noise += centres[owners]
    return owners.astype(np.int64), _normalize(noise)


def iter_enroll_chunks(spec: SyntheticSpec) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(ids, owners, vectors)`` chunks of the enrolled set.

    ``ids`` run 0..n_enroll-1; ``owners`` are speaker indices; ``vectors``
    float32 (chunk, dim) unit rows. Chunk ``i`` depends only on the seed and
    ``i``, so chunks can be regenerated independently.
    """
    centres, spread = speaker_centres(spec), speaker_spread(spec)
    for index, start in enumerate(range(0, spec.n_enroll, spec.chunk)):
        n = min(spec.chunk, spec.n_enroll - start)
        owners, vectors = _utterances(spec, centres, spread, _rng(spec, _STREAM_ENROLL, index), n)
        yield np.arange(start, start + n, dtype=np.int64), owners, vectors


def enroll_set(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """The whole enrolled set: ``(owners (n,), vectors (n, dim))``; row i has id i."""
    vectors = np.empty((spec.n_enroll, spec.dim), dtype=np.float32)
    owners = np.empty(spec.n_enroll, dtype=np.int64)
    for ids, own, vec in iter_enroll_chunks(spec):
        vectors[ids[0]:ids[-1] + 1] = vec
        owners[ids[0]:ids[-1] + 1] = own
    return owners, vectors


def query_set(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray]:
    """Held-out queries of the enrolled speakers: ``(owners (n_query,), vectors)``."""
    centres, spread = speaker_centres(spec), speaker_spread(spec)
    owners = np.empty(spec.n_query, dtype=np.int64)
    vectors = np.empty((spec.n_query, spec.dim), dtype=np.float32)
    for index, start in enumerate(range(0, spec.n_query, spec.chunk)):
        n = min(spec.chunk, spec.n_query - start)
        own, vec = _utterances(spec, centres, spread, _rng(spec, _STREAM_QUERY, index), n)
        owners[start:start + n], vectors[start:start + n] = own, vec
    return owners, vectors


def cosine_stats(owners: np.ndarray, vectors: np.ndarray, n_pairs: int = 20_000,
                 seed: int = 0) -> dict[str, float]:
    """Mean and standard deviation of cosine for random same/different-speaker pairs."""
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    by_owner = np.argsort(owners, kind="stable")
    sorted_owners = owners[by_owner]
    a = rng.integers(0, len(owners), n_pairs)
    # same speaker: a random other member of a's speaker
    lo = np.searchsorted(sorted_owners, owners[a], "left")
    hi = np.searchsorted(sorted_owners, owners[a], "right")
    ok = hi - lo > 1
    a, lo, hi = a[ok], lo[ok], hi[ok]
    b = by_owner[lo + (rng.random(len(a)) * (hi - lo)).astype(np.int64)]
    keep = a != b
    same = np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]])
    c = rng.integers(0, len(owners), (n_pairs, 2))
    diff_mask = owners[c[:, 0]] != owners[c[:, 1]]
    diff = np.einsum("ij,ij->i", vectors[c[diff_mask, 0]], vectors[c[diff_mask, 1]])
    out["within_mean"], out["within_std"] = float(same.mean()), float(same.std())
    out["between_mean"], out["between_std"] = float(diff.mean()), float(diff.std())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.synthetic",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--within-cosine", type=float, default=0.65)
    args = ap.parse_args(argv)
    spec = SyntheticSpec(seed=args.seed, within_cosine=args.within_cosine).scaled(args.scale)
    owners, vectors = enroll_set(spec)
    print(json.dumps({"spec": spec.describe(), "cosine": cosine_stats(owners, vectors)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
