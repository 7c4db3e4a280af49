"""Sound search quality on a real corpus with the real aisfx weights (issue #14).

    python -m eval.sounds [--corpus eval/cache/sound-corpus] [--queries 300] [--seed 0]
        [--latency] [--sizes 10000 100000] [--milvus lite server] [--out DIR]

Build the corpus first: ``python -m eval.sound_corpus`` (Debian packages).

What is measured, all with cosine similarity of L2-normalised aisfx vectors:

* **near-duplicate retrieval**: ``--queries`` corpus sounds (seeded draw) are
  perturbed (:mod:`eval.sound_perturb`: gain, noise, 8 kHz round trip, MP3,
  Vorbis, speed, cuts and excerpts), written to file bytes, decoded and
  resampled as the service does, embedded, and searched among **all** corpus
  sounds: how often the original is rank 1 and in the top 3, per way of
  scoring (:mod:`voiceprint.scoring.sound_match`: file mean, block max,
  block mean-of-max), exactly (numpy, no ANN error);
* **same-category precision@5**: each labelled corpus sound queried against
  the others (leave one out), effect categories and voice packs apart;
* **near-duplicate threshold**: the score above which an insert would be
  reported as ``near_duplicate_of``; chosen so that at most 1% of the corpus
  sounds, inserted into a library holding all the others, would be flagged
  (their best score against a *different* sound); reported with the share of
  perturbed copies it catches;
* with ``--latency``: search latency at 10k/100k sounds on Milvus Lite and a
  Milvus server (:mod:`eval.sound_latency`).

Output: Markdown tables on stdout, ``results.json`` under ``--out``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from eval.sound_corpus import DEFAULT_OUT as DEFAULT_CORPUS, Entry, read_manifest
from eval.sound_perturb import PERTURBATIONS, TARGETS_TOP3
from voiceprint.scoring.sound_match import AGGREGATIONS, fused_order, group_starts

CACHE = Path(__file__).resolve().parent / "cache" / "sounds"
#: bump when the encoder's blocks or front end change (invalidates cached corpus vectors)
EMBEDDING_VERSION = "aisfx-1:blocks100-hop50-end-aligned:tile-short:peak1"
#: false-match rate the near-duplicate threshold is set for (share of distinct corpus sounds)
TARGET_FMR = 0.01
EMBED_BATCH = 16
#: aligned landmarks from which a stored sound ranks above every cosine-only match
MIN_LANDMARKS_RANK = 8
#: the approaches compared: cosine aggregations, alone and fused with landmark fingerprints
APPROACHES = ("file", "block_max", "block_mean_max", "file+fp", "block_max+fp")


# -- corpus vectors -------------------------------------------------------------------
class CorpusVectors:
    """Block vectors grouped by sound, their starts, and file vectors."""

    def __init__(self, blocks: np.ndarray, counts: np.ndarray, files: np.ndarray) -> None:
        self.blocks = blocks.astype(np.float32)
        self.counts = counts.astype(np.int64)
        self.files = files.astype(np.float32)
        self.starts = group_starts(self.counts)

    def of(self, i: int) -> np.ndarray:
        return self.blocks[self.starts[i]:self.starts[i] + self.counts[i]]


def load_audio(root: Path, entry: Entry) -> tuple[np.ndarray, int]:
    """Mono float32 samples at the file's own rate, decoded as the service does."""
    from voiceprint.audio.decode import decode_file

    audio = decode_file(root / entry.path)
    return audio.samples, audio.sample_rate


def embed_samples(encoder: Any, items: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(file vectors, block vectors per item) of (samples, rate) pairs, resampled to the encoder's rate."""
    from voiceprint.audio.resample import resample

    files, blocks = [], []
    for start in range(0, len(items), EMBED_BATCH):
        chunk = [resample(x, sr, encoder.sample_rate) for x, sr in items[start:start + EMBED_BATCH]]
        f, b = encoder.embed_with_blocks(chunk)
        files.append(f)
        blocks.extend(b)
    return np.concatenate(files), blocks


def corpus_vectors(encoder: Any, root: Path, entries: Sequence[Entry], *, log: bool = True) -> CorpusVectors:
    """Embed the corpus (cached under ``eval/cache/sounds`` by content and encoder version)."""
    key = hashlib.sha256("\n".join([EMBEDDING_VERSION, *(e.sha256 for e in entries)]).encode()).hexdigest()[:16]
    path = CACHE / f"corpus-{key}.npz"
    if path.is_file():
        z = np.load(path)
        return CorpusVectors(z["blocks"], z["counts"], z["files"])
    t0 = time.perf_counter()
    files, blocks = [], []
    for start in range(0, len(entries), 64):
        items = [load_audio(root, e) for e in entries[start:start + 64]]
        f, b = embed_samples(encoder, items)
        files.append(f)
        blocks.extend(b)
        if log:
            print(f"  embedded {start + len(items)}/{len(entries)} corpus sounds "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    cv = CorpusVectors(np.concatenate(blocks), np.array([len(b) for b in blocks]), np.concatenate(files))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, blocks=cv.blocks, counts=cv.counts, files=cv.files)
    return cv


# -- landmarks and shared material -------------------------------------------------------------
def corpus_landmarks(root: Path, entries: Sequence[Entry]) -> tuple[Any, list[Any]]:
    """An in-memory landmark index of the corpus and each sound's landmarks."""
    from voiceprint.audio.landmarks import LandmarkIndex, landmarks

    index, marks = LandmarkIndex(), []
    for i, e in enumerate(entries):
        m = landmarks(*load_audio(root, e))
        index.add(i, m)
        marks.append(m)
    return index, marks


def counts_vector(matches: dict[int, int], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    for j, c in matches.items():
        out[j] = c
    return out


def shared_material(root: Path, entries: Sequence[Entry], pairs: Iterable[tuple[int, int]],
                    min_correlation: float = 0.5) -> dict[int, set[int]]:
    """Corpus sounds that contain the same recording (games share samples): pairs whose
    waveforms (8 kHz, unit energy) reach ``min_correlation`` normalised cross-correlation
    at some lag. Such pairs are true near-duplicates: a hit, never a false match."""
    from scipy.signal import correlate

    from voiceprint.audio.resample import resample

    cache: dict[int, np.ndarray] = {}

    def wave(i: int) -> np.ndarray:
        if i not in cache:
            x, sr = load_audio(root, entries[i])
            y = resample(x, sr, 8000).astype(np.float64)
            cache[i] = y / (np.linalg.norm(y) + 1e-12)
        return cache[i]

    out: dict[int, set[int]] = {}
    for i, j in pairs:
        if float(np.max(np.abs(correlate(wave(i), wave(j), mode="full", method="fft")))) >= min_correlation:
            out.setdefault(i, set()).add(j)
            out.setdefault(j, set()).add(i)
    return out


# -- scoring ---------------------------------------------------------------------------------
def scores_for(approach: str, qf: np.ndarray, qb: np.ndarray, cv: CorpusVectors) -> np.ndarray:
    return AGGREGATIONS[approach](qf, qb, cv.files, cv.blocks, cv.starts)


def sound_matrix(approach: str, cv: CorpusVectors) -> np.ndarray:
    """``(n, n)`` scores of every corpus sound (rows, as query) against every other."""
    n = len(cv.counts)
    out = np.empty((n, n), dtype=np.float32)
    for i in range(n):
        out[i] = scores_for(approach, cv.files[i], cv.of(i), cv)
    return out


def precision_at_k(matrix: np.ndarray, labels: Sequence[str], k: int = 5,
                   keep: Sequence[bool] | None = None) -> tuple[float, int]:
    """Mean share of the ``k'`` best *other* sounds with the query's label, over labelled
    queries (``keep`` selects which), where ``k' = min(k, other members of the label)`` so
    a perfect ranking scores 1 even in a category of 2 (most variant groups here have 2-4
    members); returns (precision, number of queries)."""
    lab = np.asarray(labels, dtype=object)
    sizes = {c: int(np.sum(lab == c)) for c in set(labels) if c}
    precisions = []
    for i in range(len(lab)):
        if not lab[i] or (keep is not None and not keep[i]):
            continue
        row = matrix[i].astype(np.float64).copy()
        row[i] = -np.inf
        kk = max(1, min(k, sizes[lab[i]] - 1))
        top = np.argsort(-row, kind="stable")[:kk]
        precisions.append(float(np.mean(lab[top] == lab[i])))
    return (float(np.mean(precisions)) if precisions else float("nan")), len(precisions)


def distinct_best(matrix: np.ndarray, shared: dict[int, set[int]]) -> np.ndarray:
    """Per sound, its best score against a *distinct* sound (not itself, no shared material)."""
    m = matrix.astype(np.float64).copy()
    np.fill_diagonal(m, -np.inf)
    for i, js in shared.items():
        m[i, list(js)] = -np.inf
    return m.max(axis=1)


def threshold_at_fmr(negatives: np.ndarray, fmr: float) -> float:
    """Smallest threshold ``t`` (scores ``>= t`` flagged) with at most ``fmr`` of ``negatives`` flagged."""
    neg = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    allowed = int(np.floor(fmr * neg.size))
    if allowed >= neg.size:
        return float(neg[-1])
    return float(np.nextafter(neg[allowed], np.inf))


# -- near-duplicate queries ------------------------------------------------------------------------
def perturbed_queries(root: Path, entries: Sequence[Entry], picks: Sequence[int], seed: int,
                      names: Sequence[str]) -> dict[str, list[tuple[int, np.ndarray, int]]]:
    """Per perturbation, (corpus index, decoded samples, rate) of each applicable query."""
    from voiceprint.audio.decode import decode_bytes

    out: dict[str, list[tuple[int, np.ndarray, int]]] = {n: [] for n in names}
    for qi, idx in enumerate(picks):
        x, sr = load_audio(root, entries[idx])
        for pi, name in enumerate(names):
            rng = np.random.default_rng([seed, qi, pi])
            data = PERTURBATIONS[name](x, sr, rng)
            if data is None:
                continue
            audio = decode_bytes(data)
            out[name].append((idx, audio.samples, audio.sample_rate))
    return out


def ordering(approach: str, qf: np.ndarray, qb: np.ndarray, counts: np.ndarray,
             cv: CorpusVectors) -> tuple[np.ndarray, np.ndarray]:
    """(sound order best first, cosines) for ``approach`` (``X+fp``: fused with landmarks)."""
    base, _, fp = approach.partition("+")
    cos = scores_for(base, qf, qb, cv)
    if fp:
        return fused_order(cos, counts, MIN_LANDMARKS_RANK), cos
    return np.argsort(-cos, kind="stable"), cos


def run_quality(encoder: Any, root: Path, entries: Sequence[Entry], *, queries: int, seed: int,
                perturbations: Sequence[str], approaches: Sequence[str]) -> dict[str, Any]:
    from voiceprint.audio.landmarks import landmarks

    n = len(entries)
    cv = corpus_vectors(encoder, root, entries)
    lm_index, lm_marks = corpus_landmarks(root, entries)
    lm_matrix = np.stack([counts_vector(lm_index.match(m), n) for m in lm_marks])
    cos = {a: sound_matrix(a, cv) for a in {x.partition("+")[0] for x in approaches} | {"file"}}
    candidates = {(i, int(j)) for i in range(n) for j in np.nonzero(cos["file"][i] >= 0.95)[0] if i < j}
    candidates |= {(min(i, int(j)), max(i, int(j))) for i in range(n)
                   for j in np.nonzero(lm_matrix[i] >= 5)[0] if i != j}
    shared = shared_material(root, entries, sorted(candidates))
    print(f"  {sum(1 for v in shared.values() if v)} corpus sounds share a recording with another",
          file=sys.stderr)

    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(n, size=min(queries, n), replace=False).tolist())
    t0 = time.perf_counter()
    qs = perturbed_queries(root, entries, picks, seed, perturbations)
    retrieval: dict[str, dict[str, Any]] = {}
    positives: dict[str, dict[str, list[tuple[float, int]]]] = {}
    for name in perturbations:
        items = qs[name]
        if not items:
            continue
        qf, qb = embed_samples(encoder, [(x, sr) for _, x, sr in items])
        counts = [counts_vector(lm_index.match(landmarks(x, sr)), n) for _, x, sr in items]
        row: dict[str, Any] = {"queries": len(items)}
        for a in approaches:
            top1 = top3 = 0
            for k, (idx, _, _) in enumerate(items):
                order, c = ordering(a, qf[k], qb[k], counts[k], cv)
                ok = {idx} | shared.get(idx, set())
                top1 += int(order[0]) in ok
                top3 += bool(ok & {int(j) for j in order[:3]})
            row[a] = {"top1": top1 / len(items), "top3": top3 / len(items)}
        positives[name] = {"file": [(float(scores_for("file", qf[k], qb[k], cv)[idx]),
                                     int(counts[k][idx])) for k, (idx, _, _) in enumerate(items)]}
        retrieval[name] = row
        print(f"  {name}: {len(items)} queries ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    labels = [e.category for e in entries]
    voices = [":voice:" in c for c in labels]
    categories = {}
    for a, m in cos.items():
        p_fx, n_fx = precision_at_k(m, labels, 5, [bool(c) and not v for c, v in zip(labels, voices)])
        p_v, n_v = precision_at_k(m, labels, 5, voices)
        categories[a] = {"effects_p@5": p_fx, "effects_queries": n_fx,
                         "voices_p@5": p_v, "voices_queries": n_v}
    # near-duplicate threshold: file cosine and aligned landmarks, each at half the FMR budget
    neg_cos = distinct_best(cos["file"], shared)
    neg_lm = distinct_best(lm_matrix.astype(np.float64), shared)
    t_cos = threshold_at_fmr(neg_cos, TARGET_FMR / 2)
    t_lm = int(np.ceil(threshold_at_fmr(neg_lm, TARGET_FMR / 2)))
    flagged = (neg_cos >= t_cos) | (neg_lm >= t_lm)
    caught = {name: float(np.mean([c >= t_cos or k >= t_lm for c, k in v["file"]]))
              for name, v in positives.items()}
    caught_cos = {name: float(np.mean([c >= t_cos for c, _ in v["file"]])) for name, v in positives.items()}
    worst = np.argsort(-neg_cos)[:5]
    t_cos_alone = threshold_at_fmr(neg_cos, TARGET_FMR)
    threshold = {
        "cosine_alone": {"min_cosine": t_cos_alone, "fmr": float(np.mean(neg_cos >= t_cos_alone)),
                         "caught": {name: float(np.mean([c >= t_cos_alone for c, _ in v["file"]]))
                                    for name, v in positives.items()}},
        "min_cosine": t_cos, "min_landmarks": t_lm, "fmr": float(np.mean(flagged)),
        "fmr_cosine_only": float(np.mean(neg_cos >= t_cos)),
        "fmr_landmarks_only": float(np.mean(neg_lm >= t_lm)),
        "caught": caught, "caught_cosine_only": caught_cos,
        "distinct_cosine_percentiles": {str(q): float(np.percentile(neg_cos, q)) for q in (50, 90, 99)},
        "closest_distinct": [(entries[i].path, float(neg_cos[i])) for i in worst],
    }
    return {"corpus": {"sounds": n, "blocks": int(cv.blocks.shape[0]),
                       "sharing_a_recording": sum(1 for v in shared.values() if v)},
            "queries": len(picks), "seed": seed, "retrieval": retrieval,
            "categories": categories, "near_duplicate": threshold}


# -- report ------------------------------------------------------------------------------------------
def markdown(res: dict[str, Any], approaches: Sequence[str]) -> str:
    c = res["corpus"]
    out = [f"Corpus: {c['sounds']} sounds ({c['blocks']} blocks; {c['sharing_a_recording']} share a "
           f"recording with another and count as its duplicates), {res['queries']} queries "
           f"(seed {res['seed']}); share of queries with the original at rank 1 / in the top 3 "
           "among all corpus sounds (exact search).", "",
           "| perturbation | queries | target top-3 | " + " | ".join(
               f"{a} top-1 | {a} top-3" for a in approaches) + " |",
           "|---|---|---|" + "---|---|" * len(approaches)]
    for name, row in res["retrieval"].items():
        target = TARGETS_TOP3.get(name)
        cells = " | ".join(f"{row[a]['top1']:.0%} | {row[a]['top3']:.0%}" for a in approaches)
        out.append(f"| {name} | {row['queries']} | {'' if target is None else f'{target:.0%}'} | {cells} |")
    out += ["", "| scoring | same-category P@5, effects (queries) | same voice pack P@5 (queries) |",
            "|---|---|---|"]
    for a, cat in res["categories"].items():
        out.append(f"| {a} | {cat['effects_p@5']:.2f} ({cat['effects_queries']}) | "
                   f"{cat['voices_p@5']:.2f} ({cat['voices_queries']}) |")
    t = res["near_duplicate"]
    out += ["", f"Near-duplicate threshold: file cosine >= {t['min_cosine']:.4f} or >= "
            f"{t['min_landmarks']} aligned landmarks; false-match rate on distinct corpus sounds "
            f"{t['fmr']:.1%} (cosine alone {t['fmr_cosine_only']:.1%}, landmarks alone "
            f"{t['fmr_landmarks_only']:.1%}).", "",
            "| perturbation | flagged as near-duplicate | by cosine alone |", "|---|---|---|"]
    for name, v in t["caught"].items():
        out.append(f"| {name} | {v:.0%} | {t['caught_cosine_only'][name]:.0%} |")
    alone = t["cosine_alone"]
    out += ["", f"For comparison, cosine alone at {TARGET_FMR:.0%} false matches: "
            f">= {alone['min_cosine']:.4f} (FMR {alone['fmr']:.1%}); flags "
            + ", ".join(f"{k} {v:.0%}" for k, v in alone["caught"].items()) + "."]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perturbations", nargs="*", default=list(PERTURBATIONS))
    ap.add_argument("--approaches", nargs="*", default=list(APPROACHES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="use the first N corpus sounds only")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--milvus", nargs="*", default=["lite", "server"])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "sounds")
    args = ap.parse_args(argv)
    if not (args.corpus / "manifest.csv").is_file():
        print(f"no corpus at {args.corpus}: run python -m eval.sound_corpus first", file=sys.stderr)
        return 2
    from voiceprint.encoders.aisfx import AisfxEncoder

    entries = read_manifest(args.corpus)[:args.limit]
    encoder = AisfxEncoder.load(num_threads=args.threads)
    res = run_quality(encoder, args.corpus, entries, queries=args.queries, seed=args.seed,
                      perturbations=args.perturbations, approaches=args.approaches)
    res["encoder"] = encoder.describe()
    print(markdown(res, args.approaches))
    if args.latency:
        from eval.sound_latency import markdown as lat_md, run_latency

        cv = corpus_vectors(encoder, args.corpus, entries)
        _, marks = corpus_landmarks(args.corpus, entries)
        res["latency"] = run_latency(cv, sizes=args.sizes, backends=args.milvus, seed=args.seed,
                                     marks=marks)
        print()
        print(lat_md(res["latency"]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
