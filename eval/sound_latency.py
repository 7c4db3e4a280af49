"""Search latency of the chosen sound-search design at 10k and 100k sounds.

The design (see README "Sound search"): one aisfx file vector per sound in
Milvus (HNSW, top-k 10 through :class:`voiceprint.stores.vectors.VectorStore`),
plus a landmark lookup: the query's fingerprint hashes looked up in an
indexed relational table ``(hash, sound_id, frame)``. Both are timed here:

* **Milvus**: the corpus' real file vectors, then synthetic ones beside them
  up to the size (a corpus vector plus Gaussian noise, re-normalised, so the
  filler lies where real sounds do); queries are corpus vectors with small
  noise; single-query calls on Milvus Lite (a file) and a Milvus 2.3 server
  (:mod:`voiceprint.stores.milvus_server`), with recall@10 against exact
  search;
* **landmarks**: the corpus' real landmarks repeated under new sound ids up to
  the size, in SQLite (a temporary file) with an index on ``hash``; a query
  is a corpus sound's landmarks: ``SELECT ... WHERE hash IN (...)`` (500
  hashes a statement) plus :func:`voiceprint.audio.landmarks.match_postings`,
  as the service does. (Repeating the corpus makes hash lists
  longer than distinct sounds would: pessimistic.)

Wall-clock figures on a shared machine: read them as upper bounds.
"""
from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eval.search_bench import MilvusIndex, exact_topk, measure


def filler_vectors(base: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    """``n`` unit vectors near random rows of ``base``: cosine about ``1 / sqrt(1 + noise^2)``
    with their row (0.96 at 0.3, like a real sound's nearest distinct neighbour, median
    0.955); at 0.15 the 75 copies of each row at 100k left HNSW ef 64 at recall 0.77."""
    pick = base[rng.integers(0, len(base), n)]
    x = pick + rng.standard_normal(pick.shape).astype(np.float32) * noise / np.sqrt(base.shape[1])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def milvus_latency(files: np.ndarray, sizes: Sequence[int], backends: Sequence[str],
                   rng: np.random.Generator, n_queries: int = 200) -> list[dict[str, Any]]:
    import contextlib

    from voiceprint.stores.milvus_server import milvus_server

    rows: list[dict[str, Any]] = []
    queries = filler_vectors(files, n_queries, rng, noise=0.05)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sound-latency-")))
        uris = {}
        for b in backends:
            if b == "lite":
                uris[b] = str(tmp / "lite.db")
            elif b == "server":
                uris[b] = stack.enter_context(milvus_server(tmp / "server"))
            else:
                uris[b] = b
        for size in sizes:
            base = np.concatenate([files, filler_vectors(files, max(0, size - len(files)), rng)])[:size]
            truth, _ = exact_topk(base, queries, 10)
            for name, uri in uris.items():
                backend = MilvusIndex(name=f"milvus {name}", index="HNSW", uri=uri, n_single=n_queries)
                try:
                    backend.build(base, np.zeros(len(base), dtype=np.int64))
                    row = measure(backend, {"ef": 64}, queries, truth, k=10)
                    rows.append({"store": name, "sounds": size, "p50_ms": row.p50_ms,
                                 "p99_ms": row.p99_ms, "recall_at_10": row.recall_at_10,
                                 "insert_rows_per_s": backend.build_info.get("insert_rows_per_s")})
                finally:
                    backend.close()
    return rows


def landmark_latency(marks: Sequence[Any], sizes: Sequence[int], rng: np.random.Generator,
                     n_queries: int = 100) -> list[dict[str, Any]]:
    from voiceprint.audio.landmarks import match_postings

    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="landmarks-") as tmp:
            db = sqlite3.connect(str(Path(tmp) / "lm.db"))
            db.execute("CREATE TABLE lm (hash INTEGER NOT NULL, sound_id INTEGER NOT NULL, "
                       "frame INTEGER NOT NULL)")
            t0 = time.perf_counter()
            total = 0
            for sid in range(size):
                m = marks[sid % len(marks)]
                db.executemany("INSERT INTO lm VALUES (?, ?, ?)",
                               zip(m.hashes.tolist(), [sid] * len(m), m.frames.tolist()))
                total += len(m)
            db.execute("CREATE INDEX lm_hash ON lm (hash)")
            db.commit()
            build_s = time.perf_counter() - t0
            lat = []
            for qi in rng.integers(0, len(marks), n_queries):
                q = marks[int(qi)]
                if not len(q):
                    continue
                t = time.perf_counter()
                uniq = sorted(set(q.hashes.tolist()))
                hits = []
                for start in range(0, len(uniq), 500):
                    part = uniq[start:start + 500]
                    hits += db.execute(f"SELECT sound_id, hash, frame FROM lm WHERE hash IN "
                                       f"({','.join('?' * len(part))})", part).fetchall()
                match_postings(q, hits)
                lat.append((time.perf_counter() - t) * 1000)
            db.close()
            rows.append({"store": "sqlite landmarks", "sounds": size, "rows": total,
                         "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                         "build_s": build_s})
    return rows


def run_latency(cv: Any, *, sizes: Sequence[int], backends: Sequence[str], seed: int,
                marks: Sequence[Any] | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"milvus": milvus_latency(cv.files, sizes, backends, rng)}
    if marks is not None:
        out["landmarks"] = landmark_latency(marks, sizes, rng)
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = ["| store | sounds | p50 ms | p99 ms | recall@10 |", "|---|---|---|---|---|"]
    for r in res.get("milvus", []):
        lines.append(f"| Milvus {r['store']} (HNSW ef 64, top 10) | {r['sounds']:,} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['recall_at_10']:.3f} |")
    for r in res.get("landmarks", []):
        lines.append(f"| landmark lookup, SQLite ({r['rows']:,} rows) | {r['sounds']:,} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | exact |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eval.sound_latency``: the latency part of ``eval.sounds`` alone."""
    import argparse
    import json

    from eval.sound_corpus import DEFAULT_OUT, read_manifest
    from eval.sounds import corpus_landmarks, corpus_vectors
    from voiceprint.encoders.aisfx import AisfxEncoder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--milvus", nargs="*", default=["lite", "server"])
    ap.add_argument("--no-landmarks", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    entries = read_manifest(args.corpus)
    cv = corpus_vectors(AisfxEncoder.load(num_threads=2), args.corpus, entries)
    marks = None if args.no_landmarks else corpus_landmarks(args.corpus, entries)[1]
    res = run_latency(cv, sizes=args.sizes, backends=args.milvus, seed=args.seed, marks=marks)
    print(markdown(res))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latency.json").write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
