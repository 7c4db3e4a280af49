"""Encoder speed against the machine's arithmetic peak and against the seed's pipeline.

    python -m eval.bench_encoders [--encoders campplus,ge2e,ecapa_tdnn,panns_cnn14]
        [--variants auto/auto,native/fp32] [--threads 2] [--repeat 20] [--quick]
        [--model-dir NAME=PATH] [--json]
    python -m eval.bench_encoders --layout [--encoders campplus] [--clips 24]

Each (encoder, runtime/precision) row is measured in a fresh subprocess, so
the RSS figures are that encoder's own. In one run, first the fp32 peak of
this machine is measured: a 2048x2048 float32 numpy matmul (OpenBLAS) with
the same thread count. Columns:

* ``ms/5 s clip``: median and p90 wall time of ``embed`` on one 5 s
  speech-like clip (after ``warmup()``), and median CPU ms (all threads);
* ``GFLOP``: multiply-adds x 2 of the network on that clip, counted from the
  ONNX graph's shapes (:mod:`eval.onnx_flops`; front end not counted);
* ``GFLOP/s``, ``% peak``: GFLOP / median wall time, against the numpy peak;
  ``% MLAS peak`` against the same 2048x2048 product run by ONNX Runtime's
  MatMul (the kernels the encoders use; on this machine's OpenBLAS build
  faster than numpy, so the fairer ceiling);
* ``batch clips/s``: ``embed_batch`` of 16 different 5 s clips of equal length
  (so they share forward passes), vs ``1-by-1 clips/s`` on the same clips;
* ``first call ms``: the first ``embed`` after load without warm-up, and the
  first call of a *new* length after ``warmup()``, vs the steady median;
* ``RSS MB``: peak resident memory after load (and at the end of the run);
* ``seed ms``, ``seed ratio``: the seed's pipeline (:mod:`eval.encoder_seeds`:
  PaddleSpeech's executor path for the paddle models, torch for the others) on
  the same clip, and seed ms / voiceprint ms.

Paddle models load real weights when they find them (``--model-dir``,
PaddleSpeech's cache; no download); else a full-size random checkpoint in
PaddleSpeech's layout is written under ``eval/cache/random-weights/`` and
the row says "random" (same compute, meaningless vectors). Exports are cached
in ``--cache-dir`` (default: ``eval/cache/voiceprint-cache``).

``--layout`` measures throughput and latency of a service layout on this
machine: W worker processes x C concurrent callers per process (gunicorn
threads) x T intra-op threads per call, all embedding 5 s clips at once.

Times are wall clock on whatever else runs on the machine: quote CPU ms, or
re-run on a quiet machine. ``--quick`` (a CI smoke test) measures campplus and
ge2e with 3 repeats.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from eval.encoder_seeds import RANDOM_DIR, RANDOM_WRITERS, seed_pipeline, test_clip
from eval.encoder_seeds import write_random_cnn14, write_random_ecapa

#: write_random_* stay importable from here (eval.bench_sounds uses them)
__all__ = ["main", "measure", "matmul_peak_gflops", "ort_matmul_peak_gflops",
           "write_random_cnn14", "write_random_ecapa"]

CACHE_DIR = Path(__file__).resolve().parent / "cache" / "voiceprint-cache"
ALL = "campplus,ge2e,ecapa_tdnn,panns_cnn14"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_peak_gflops(threads: int | None, n: int = 2048, repeat: int = 5) -> float:
    """Best-of-``repeat`` GFLOP/s of an ``n x n`` float32 numpy matmul."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    best = float("inf")
    with threadpool_limits(limits=threads, user_api="blas") if threads else nullcontext():
        a @ b
        for _ in range(repeat):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def ort_matmul_peak_gflops(threads: int | None, n: int = 2048, repeat: int = 5) -> float:
    """The same product through ONNX Runtime's MatMul (MLAS kernels): the
    kernels the encoders run on, often faster than this numpy's BLAS."""
    from onnx import TensorProto, helper

    from voiceprint.encoders.onnx_runtime import import_onnxruntime

    ort = import_onnxruntime()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or 0
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((n, n), np.float32), "b": rng.standard_normal((n, n), np.float32)}
    session.run(None, feed)
    best = min(_timed(session.run, None, feed)[0] for _ in range(repeat))
    return 2.0 * n ** 3 / best / 1e9


def _timed(fn: Any, *args: Any) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t, time.process_time() - c


def _load(name: str, options: dict[str, Any]) -> tuple[Any, str]:
    from voiceprint.encoders.registry import load_encoder
    from voiceprint.errors import EncoderUnavailable

    try:
        return load_encoder(name, **options), "real"
    except EncoderUnavailable:
        if name not in RANDOM_WRITERS or options.get("model_dir"):
            raise
    root = RANDOM_WRITERS[name](RANDOM_DIR / name)
    return load_encoder(name, **{**options, "model_dir": str(root)}), "random"


def _flops(encoder: Any, clip: np.ndarray, cache_dir: str) -> float | None:
    """GFLOP of the encoder's fp32 ONNX graph on ``clip`` (the export in use,
    else the newest fp32 export in the cache; None when there is none)."""
    from eval.onnx_flops import graph_flops

    export = getattr(getattr(encoder, "runner_choice", None), "export", None)
    if export is not None and "-onnx-fp32-" in export.entry.name:
        path: Path | None = export.entry / "model.onnx"
    else:
        entries = sorted(Path(cache_dir).glob(f"exports/{encoder.name}-onnx-fp32-*/model.onnx"),
                         key=lambda q: q.stat().st_mtime)
        path = entries[-1] if entries else None
    if path is None or not path.is_file():
        return None
    if encoder.name == "ge2e":
        x = encoder.windows(clip)
    else:
        x = encoder.features(clip)[None]
    return graph_flops(path, x)[0] / 1e9


def measure(name: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """One row (runs inside the worker subprocess)."""
    runtime, precision = variant.split("/")
    options = {"runtime": runtime, "precision": precision, "num_threads": args.threads,
               "cache_dir": args.cache_dir, "offline": True, "model_dir": args.model_dirs.get(name)}
    t0 = time.perf_counter()
    encoder, weights = _load(name, options)
    load_s, rss_load = time.perf_counter() - t0, _rss_mb()
    sr, s = encoder.sample_rate, args.seconds
    clip = test_clip(sr, s, seed=1)
    cold, _ = _timed(encoder.embed, clip)
    warm_s = encoder.warmup()
    first_new, _ = _timed(encoder.embed, test_clip(sr, s + 0.37, seed=2))
    same = [_timed(encoder.embed, clip) for _ in range(args.repeat)]
    wall, cpu = np.array([w for w, _ in same]), np.array([c for _, c in same])
    clips = [test_clip(sr, s, seed=200 + i) for i in range(args.batch)]
    encoder.embed_batch(clips)
    bw, bc = _timed(encoder.embed_batch, clips)
    ow, _ = _timed(lambda: [encoder.embed(c) for c in clips])
    row: dict[str, Any] = {
        "encoder": name, "variant": variant, "backend": encoder.backend, "weights": weights,
        "threads": args.threads, "load_s": load_s, "rss_load_mb": rss_load,
        "ms_median": 1e3 * float(np.median(wall)), "ms_p90": 1e3 * float(np.percentile(wall, 90)),
        "cpu_ms_median": 1e3 * float(np.median(cpu)), "cold_ms": 1e3 * cold,
        "warmup_s": warm_s, "first_new_length_ms": 1e3 * first_new,
        "batch_clips_per_s": len(clips) / bw, "batch_cpu_ms_per_clip": 1e3 * bc / len(clips),
        "one_by_one_clips_per_s": len(clips) / ow, "gflop": _flops(encoder, clip, args.cache_dir),
    }
    if not args.no_seed:
        seed = seed_pipeline(name, encoder, {k: v for k, v in options.items() if v is not None})
        seed(clip)
        row["seed_ms"] = 1e3 * float(np.median([_timed(seed, clip)[0] for _ in range(max(3, args.repeat // 3))]))
    row["rss_end_mb"] = _rss_mb()
    return row


def _worker(args: argparse.Namespace, name: str, variant: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, "-m", "eval.bench_encoders", "--worker", f"{name}:{variant}", "--out", out,
           "--repeat", str(args.repeat), "--batch", str(args.batch), "--seconds", str(args.seconds),
           "--cache-dir", args.cache_dir]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    cmd += ["--no-seed"] if args.no_seed else []
    for k, v in args.model_dirs.items():
        cmd += ["--model-dir", f"{k}={v}"]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-2:]
            return {"encoder": name, "variant": variant, "error": " | ".join(tail)}
        return json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown(rows: list[dict[str, Any]], peak: float, mlas: float, seconds: float) -> str:
    head = (f"| encoder | runtime/precision | backend | weights | ms/{seconds:g} s clip median | p90 "
            "| CPU ms | GFLOP | GFLOP/s | % peak | % MLAS peak | batch clips/s | 1-by-1 clips/s | first call ms "
            "(cold / new length after warmup) | RSS MB (load / end) | seed ms | seed ratio |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['encoder']} | {r['variant']} | failed: {r['error'][:160]} |" + " |" * 14)
            continue
        gflops = r["gflop"] / (r["ms_median"] / 1e3) if r.get("gflop") else None
        seed = r.get("seed_ms")
        lines.append(
            f"| {r['encoder']} | {r['variant']} | {r['backend']} | {r['weights']} "
            f"| {r['ms_median']:.0f} | {r['ms_p90']:.0f} | {r['cpu_ms_median']:.0f} "
            f"| {_f(r.get('gflop'), '.2f')} | {_f(gflops, '.0f')} "
            f"| {_f(100 * gflops / peak if gflops else None, '.0f')} "
            f"| {_f(100 * gflops / mlas if gflops else None, '.0f')} "
            f"| {r['batch_clips_per_s']:.1f} | {r['one_by_one_clips_per_s']:.1f} "
            f"| {r['cold_ms']:.0f} / {r['first_new_length_ms']:.0f} "
            f"| {r['rss_load_mb']:.0f} / {r['rss_end_mb']:.0f} | {_f(seed, '.0f')} "
            f"| {_f(seed / r['ms_median'] if seed else None, '.1f')}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.bench_encoders", description=__doc__.split("\n")[0])
    p.add_argument("--encoders", default=None, help=f"comma list (default {ALL})")
    p.add_argument("--variants", default="auto/auto",
                   help="comma list of runtime/precision, e.g. auto/auto,native/fp32,onnx/int8")
    p.add_argument("--model-dir", action="append", default=[], help="NAME=PATH")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=5.0, help="clip length, s")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads per call")
    p.add_argument("--cache-dir", default=str(CACHE_DIR))
    p.add_argument("--no-seed", action="store_true", help="skip the seed pipeline")
    p.add_argument("--quick", action="store_true", help="campplus,ge2e; 3 repeats, batch 4")
    p.add_argument("--layout", action="store_true", help="workers x callers x threads grid")
    p.add_argument("--clips", type=int, default=24, help="--layout: clips per configuration")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.model_dirs = dict(v.split("=", 1) for v in args.model_dir)
    if args.quick:
        args.repeat, args.batch = min(args.repeat, 3), min(args.batch, 4)
    names = [n.strip() for n in (args.encoders or ("campplus,ge2e" if args.quick else ALL)).split(",")
             if n.strip()]

    if args.worker:
        name, variant = args.worker.split(":", 1)
        Path(args.out).write_text(json.dumps(measure(name, variant, args)))
        return 0
    if args.layout:
        from eval.bench_layout import run_layout

        return run_layout(names[0], args)

    peak, mlas = matmul_peak_gflops(args.threads), ort_matmul_peak_gflops(args.threads)
    print(f"fp32 peak: {peak:.0f} GFLOP/s (2048x2048 float32 numpy matmul, {args.threads} threads); "
          f"ONNX Runtime MatMul (MLAS): {mlas:.0f} GFLOP/s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n", flush=True)
    rows = []
    for name in names:
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            print(f"measuring {name} {variant} ...", file=sys.stderr, flush=True)
            rows.append(_worker(args, name, variant))
    print(markdown(rows, peak, mlas, args.seconds))
    if args.json:
        print(json.dumps({"peak_gflops": peak, "mlas_peak_gflops": mlas, "rows": rows}, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
