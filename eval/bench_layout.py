"""Service layout on this machine: worker processes x concurrent callers x intra-op threads.

Run through ``python -m eval.bench_encoders --layout [--encoders NAME] [--clips N]``.
Each configuration starts W worker processes (gunicorn workers), each loads
the encoder with T intra-op threads (``num_threads``), warms it up and waits;
then all start at once and C threads per process (gunicorn threads) embed 5 s
clips until N clips are done in total. Printed per configuration: clips/s
over the whole run, median and p90 latency of one ``embed`` call, and CPU ms
per clip.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

#: (workers, callers per worker, threads per call) tried by default on 2 cores
CONFIGS = ((1, 1, 1), (1, 1, 2), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 2, 1), (2, 1, 2))


def child(name: str, threads: int, callers: int, clips: int, cache_dir: str, seconds: float,
          ready: Path, go: Path, out: Path) -> None:
    from eval.encoder_seeds import test_clip
    from voiceprint.encoders.registry import load_encoder

    enc = load_encoder(name, num_threads=threads, cache_dir=cache_dir, offline=True)
    enc.warmup()
    waves = [test_clip(enc.sample_rate, seconds, seed=i) for i in range(4)]
    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    latencies: list[float] = []
    lock = threading.Lock()
    todo = [clips]

    def caller(k: int) -> None:
        while True:
            with lock:
                if todo[0] <= 0:
                    return
                todo[0] -= 1
            t = time.perf_counter()
            enc.embed(waves[k % len(waves)])
            with lock:
                latencies.append(time.perf_counter() - t)

    c0, t0 = time.process_time(), time.time()
    workers = [threading.Thread(target=caller, args=(k,)) for k in range(callers)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.write_text(json.dumps({"start": t0, "end": time.time(), "latencies": latencies,
                               "cpu": time.process_time() - c0}))


def run_config(name: str, workers: int, callers: int, threads: int, clips: int,
               args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="layout_"))
    go = tmp / "go"
    per = [clips // workers + (1 if i < clips % workers else 0) for i in range(workers)]
    procs = []
    for i in range(workers):
        cmd = [sys.executable, "-m", "eval.bench_layout", "--child", name, str(threads), str(callers),
               str(per[i]), args.cache_dir, str(args.seconds), str(tmp / f"ready{i}"), str(go),
               str(tmp / f"out{i}.json")]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    deadline = time.time() + 600
    while not all((tmp / f"ready{i}").exists() for i in range(workers)):
        if any(p.poll() not in (None, 0) for p in procs) or time.time() > deadline:
            for p in procs:
                p.kill()
            return {"error": "a worker failed to start"}
        time.sleep(0.05)
    go.touch()
    for p in procs:
        p.wait()
    results = [json.loads((tmp / f"out{i}.json").read_text()) for i in range(workers)]
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = np.concatenate([r["latencies"] for r in results])
    return {"workers": workers, "callers": callers, "threads": threads, "clips_per_s": clips / span,
            "latency_median_ms": 1e3 * float(np.median(lat)),
            "latency_p90_ms": 1e3 * float(np.percentile(lat, 90)),
            "cpu_ms_per_clip": 1e3 * sum(r["cpu"] for r in results) / clips}


def run_layout(name: str, args: argparse.Namespace) -> int:
    print(f"{name}: {args.clips} clips of {args.seconds:g} s per configuration; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| workers | callers/worker | threads/call | clips/s | latency median ms | p90 ms | CPU ms/clip |")
    print("|---|---|---|---|---|---|---|")
    for w, c, t in CONFIGS:
        r = run_config(name, w, c, t, args.clips, args)
        if "error" in r:
            print(f"| {w} | {c} | {t} | {r['error']} | | | |", flush=True)
            continue
        print(f"| {w} | {c} | {t} | {r['clips_per_s']:.1f} | {r['latency_median_ms']:.0f} "
              f"| {r['latency_p90_ms']:.0f} | {r['cpu_ms_per_clip']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        a = sys.argv[2:]
        child(a[0], int(a[1]), int(a[2]), int(a[3]), a[4], float(a[5]), Path(a[6]), Path(a[7]), Path(a[8]))
    else:
        raise SystemExit("run it through: python -m eval.bench_encoders --layout")
