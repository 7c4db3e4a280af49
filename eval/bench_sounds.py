"""Sound search at scale: insert throughput and search latency through the service layer.

    python -m eval.bench_sounds [--n 10000] [--milvus lite|server|URI] [--model small|full|aisfx|DIR]
        [--batch 16] [--queries 200] [--seconds 2.0] [--database URL]

What is measured (wall clock, this process, one thread of requests):

* **insert**: ``n`` generated clips (tones, chirps, noise bursts, clicks, FM
  tones, melodies; ``--seconds`` long on average, 16-48 kHz WAV/FLAC/OGG)
  go through :meth:`SoundService.insert` in batches of ``--batch`` files,
  i.e. decode, silence check, de-duplication, resampling to 32 kHz, CNN14
  embedding, and the atomic write of rows, audio files and vectors: clips/s,
  and the share of time spent in the encoder;
* **search**: ``--queries`` perturbed copies of random stored clips (gain,
  20 dB SNR noise, 0.5 s cut, resampling) through :meth:`SoundService.search`
  with ``top_k`` 10: p50/p99 of the whole call (decode + embed + Milvus +
  database) and of the Milvus search alone on the same query vectors, plus
  how often the original is in the top 3.

``--model aisfx`` is the aiSFX model with its real weights (from the
``aisfx`` wheel; the library is created with that encoder).
``--model small`` (default) is the test suite's small CNN14 checkpoint
(random weights, calibrated batch norm: the service's cost without most of
the network's); ``full`` is a full-size random CNN14 (80.8 M parameters:
PaddleSpeech's compute, meaningless vectors); a directory is a real
checkpoint. Results print as a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

RANDOM_FULL = Path(__file__).resolve().parent / "cache" / "random-weights" / "panns_cnn14"
SMALL = Path(__file__).resolve().parent / "cache" / "small-cnn14"


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def build_encoder(model: str) -> Any:
    from eval import sound_fixtures as sfx
    from voiceprint.encoders.panns_cnn14 import PannsCnn14Encoder

    if model == "aisfx":
        from voiceprint.encoders.aisfx import AisfxEncoder
        return AisfxEncoder.load(num_threads=2)
    if model == "small":
        if not (SMALL / "cnn14.pdparams").is_file():
            if SMALL.exists():
                import shutil
                shutil.rmtree(SMALL)
            sfx.write_small_cnn14(SMALL)
        return PannsCnn14Encoder.load(model_dir=str(SMALL))
    if model == "full":
        from eval.bench_encoders import write_random_cnn14
        return PannsCnn14Encoder.load(model_dir=str(write_random_cnn14(RANDOM_FULL)))
    return PannsCnn14Encoder.load(model_dir=model)


def make_clips(n: int, seconds: float, seed: int) -> list[Any]:
    """``n`` distinct generated sounds whose lengths average ``seconds``."""
    from eval import sound_fixtures as sfx

    clips = sfx.library(n, seed=seed)
    scale = seconds / 2.5  # the generator's mean length
    for c in clips:
        c.samples = c.samples[:max(int(c.samples.size * scale), c.sample_rate // 2)]
    return clips


def run(args: argparse.Namespace) -> dict[str, Any]:
    from eval import sound_fixtures as sfx
    from voiceprint import create_app
    from voiceprint.services.intake import Upload
    from voiceprint.services.sounds import SoundService
    from voiceprint.stores import migrate

    os.environ.setdefault("VOICEPRINT_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="bench_sounds_"))
    print(f"stores in {work}{'' if args.keep else ' (removed at the end; --keep keeps them)'}")
    server = None
    milvus = args.milvus
    if milvus == "lite":
        milvus = str(work / "milvus.db")
    elif milvus == "server":
        from voiceprint.stores.milvus_server import milvus_server
        server = milvus_server(work / "milvus-server")
        try:
            milvus = server.__enter__()
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    url = args.database or f"sqlite:///{work / 'voiceprint.db'}"
    migrate.upgrade(url)
    app = create_app({"DATA_DIR": str(work), "DATABASE_URL": url, "MILVUS_URI": milvus,
                      "MILVUS_COLLECTION_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
                      "AUDIO_DIR": str(work / "audio"), "PRELOAD_MODELS": False,
                      "MILVUS_INDEX": args.index,
                      "SOUND_ENCODER": "aisfx" if args.model == "aisfx" else "panns_cnn14"})
    rt = app.extensions["voiceprint"]
    try:
        encoder = build_encoder(args.model)
        rt.models.put(encoder)
        embed_time = [0.0]
        real_embed = encoder.embed_batch

        def timed_embed(waves: Any) -> np.ndarray:
            t = time.perf_counter()
            try:
                return real_embed(waves)
            finally:
                embed_time[0] += time.perf_counter() - t

        encoder.embed_batch = timed_embed  # type: ignore[method-assign]
        t0 = time.perf_counter()
        clips = make_clips(args.n, args.seconds, seed=args.seed)
        payloads = [Upload(c.encode(), c.filename) for c in clips]
        gen_s = time.perf_counter() - t0
        print(f"generated {len(clips)} clips ({sum(len(p.data) for p in payloads) / 2**20:.0f} MiB) "
              f"in {gen_s:.0f} s", flush=True)

        svc = SoundService(rt, 1)
        ids: list[int] = []
        t0 = time.perf_counter()
        for start in range(0, len(payloads), args.batch):
            res = svc.insert(payloads[start:start + args.batch], "bench", max_files=args.batch)
            ids += [o.id for o in res.items]
            if (start // args.batch) % 50 == 0:
                el = time.perf_counter() - t0
                print(f"  {start + len(res.items)}/{len(payloads)} inserted, "
                      f"{(start + len(res.items)) / el:.1f} clips/s", flush=True)
        insert_s = time.perf_counter() - t0
        insert_embed_s = embed_time[0]
        lib = svc.catalog.library("bench")
        t0 = time.perf_counter()
        rt.vectors.flush(lib.collection)  # seal segments so the index is really built
        index = wait_for_index(rt, lib.collection)
        index_s = time.perf_counter() - t0
        print(f"index: {index.get('state')} {index.get('indexed_rows')}/{index.get('total_rows')} "
              f"rows after {index_s:.0f} s", flush=True)
        warm_s = settle(rt, lib.collection, encoder.dim)
        print(f"search latency steady after {warm_s:.0f} s of warm-up searches", flush=True)
        count = svc.count("bench")

        rng = np.random.default_rng(args.seed + 1)
        picks = rng.choice(len(clips), args.queries, replace=False)
        kinds = ["gain_-6dB", "noise_20dB", "crop_0.5s", "resample"]
        total: list[float] = []
        ann: list[float] = []
        hits: dict[str, list[bool]] = {k.split("_")[0]: [] for k in kinds}
        for q, i in enumerate(picks):
            variants = sfx.perturbations(clips[i], seed=int(i))
            name = [k for k in variants if k.startswith(kinds[q % 4].split("_")[0])][0]
            up = Upload(variants[name], "query.wav")
            t = time.perf_counter()
            result = svc.search(up, "bench", top_k=10)
            total.append(time.perf_counter() - t)
            hits[name.split("_")[0]].append(ids[i] in [r["id"] for r in result.results[:3]])
        qvecs = encoder.embed_batch([resample_clip(clips[i], encoder.sample_rate) for i in picks[:50]])
        for v in qvecs:
            t = time.perf_counter()
            rt.vectors.search(lib.collection, v[None], 10, tenant=1)
            ann.append(time.perf_counter() - t)
        return {
            "model": args.model, "milvus": "lite" if rt.vectors.is_lite else "server",
            "index": rt.vectors.index.index_type, "n": len(ids), "count": count,
            "insert_clips_per_s": len(ids) / insert_s, "insert_s": insert_s, "index_s": index_s,
            "warm_s": warm_s,
            "embed_share": insert_embed_s / insert_s if insert_s else 0.0,
            "search_p50_ms": _pct(total, 50), "search_p99_ms": _pct(total, 99),
            "ann_p50_ms": _pct(ann, 50), "ann_p99_ms": _pct(ann, 99),
            "hit3": {k: float(np.mean(v)) for k, v in hits.items() if v},
            "seconds": args.seconds,
        }
    finally:
        rt.close()
        if server is not None:
            server.__exit__(None, None, None)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def wait_for_index(rt: Any, collection: str, timeout_s: float = 900.0) -> dict[str, Any]:
    """Poll until Milvus reports the vector index built for every row (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = rt.vectors.describe_index(collection)
        built = info.get("state") == "Finished" and not info.get("pending_index_rows")
        if built or time.monotonic() > deadline:
            return info
        time.sleep(0.5)


def settle(rt: Any, collection: str, dim: int, timeout_s: float = 600.0) -> float:
    """Search until latency is steady (Milvus Lite keeps building segment indexes in the
    background after reporting the index finished); returns the seconds it took."""
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        times = []
        for _ in range(10):
            v = rng.standard_normal((1, dim)).astype(np.float32)
            v /= np.linalg.norm(v)
            t = time.perf_counter()
            rt.vectors.search(collection, v, 10, tenant=1)
            times.append(time.perf_counter() - t)
        if max(times) < 3 * float(np.median(times)) and time.perf_counter() - t0 > 2.0:
            break
    return time.perf_counter() - t0


def resample_clip(clip: Any, rate: int) -> np.ndarray:
    from voiceprint.audio import resample
    return resample(clip.samples, clip.sample_rate, rate)


def report(r: dict[str, Any]) -> str:
    hit = ", ".join(f"{k} {v:.0%}" for k, v in r["hit3"].items())
    return "\n".join([
        "| sounds | Milvus | index | model | insert clips/s | embedding share | "
        "search p50 / p99 ms | Milvus search p50 / p99 ms | original in top 3 |",
        "|---:|---|---|---|---:|---:|---:|---:|---|",
        f"| {r['n']} ({r['count']['vectors']} vectors) | {r['milvus']} | {r['index']} | {r['model']} | "
        f"{r['insert_clips_per_s']:.1f} | {r['embed_share']:.0%} | "
        f"{r['search_p50_ms']:.0f} / {r['search_p99_ms']:.0f} | "
        f"{r['ann_p50_ms']:.1f} / {r['ann_p99_ms']:.1f} | {hit} |",
        f"\nclips average {r['seconds']:.1f} s; insert time excludes the {r['index_s']:.0f} s "
        "Milvus took after the last insert to finish building the index; search = decode + "
        "embed + Milvus + database, top_k 10, one request at a time, measured after "
        f"{r['warm_s']:.0f} s of warm-up searches (until latency was steady)",
    ])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10000, help="sounds to insert")
    p.add_argument("--milvus", default="lite", help="lite, server (started here) or a URI")
    p.add_argument("--model", default="small", help="small, full (random full-size CNN14), aisfx (real weights) or a CNN14 model dir")
    p.add_argument("--index", default="HNSW")
    p.add_argument("--batch", type=int, default=16, help="files per insert call")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--seconds", type=float, default=2.0, help="mean clip length")
    p.add_argument("--database", default=None, help="database URL (default: a temporary SQLite)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the temporary stores (printed)")
    args = p.parse_args(argv)
    args.queries = min(args.queries, args.n)
    print(report(run(args)))


if __name__ == "__main__":
    main()
