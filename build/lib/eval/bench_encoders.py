"""Encoder speed: ms per 5 s clip, batch throughput and memory, as Markdown.

    python -m eval.bench_encoders [--encoders ge2e,ecapa_tdnn,panns_cnn14]
        [--model-dir ecapa_tdnn=PATH] [--repeat 20] [--threads 2]
        [--backends auto,dygraph]

Each encoder (and backend) is measured in a fresh subprocess, so "peak RSS"
(``resource.getrusage`` max RSS, MB) is that encoder's own: the process
after ``import`` and model load. Columns:

* ``ms/clip``: median and p90 wall time of ``embed`` on one 5 s clip, the
  same clip every call (after 2 warm-up calls), and the median CPU time
  (all threads) of those calls -- less disturbed by other load on the machine;
* ``ms/clip, new lengths``: median of ``embed`` on 5 s clips whose length
  differs by a few frames each call, as a service sees them (kernels that
  specialise on input shape pay here);
* ``batch 16``: clips per second of ``embed_batch`` on 16 different 5 s clips
  of equal length, and CPU time per clip.

CPU times (``time.process_time``, all threads) are the steadier figures on a
shared machine; with ``--threads 1`` they approximate wall time on an idle core.

The PaddleSpeech encoders load real weights when they find them (``--model-dir``,
``VOICEPRINT_ECAPA_MODEL_DIR`` / ``VOICEPRINT_PANNS_MODEL_DIR``, PaddleSpeech's
cache; downloads are not attempted). Otherwise a full-size randomly
initialised checkpoint in PaddleSpeech's format is written under
``eval/cache/random-weights/`` (its exports go there too) and loaded through
the same code: the row says "random weights (speed only)" -- same compute,
meaningless vectors.
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
from pathlib import Path
from typing import Any

import numpy as np

PADDLE_ENCODERS = ("ecapa_tdnn", "panns_cnn14")
RANDOM_DIR = Path(__file__).resolve().parent / "cache" / "random-weights"

#: PaddleSpeech recipe examples/voxceleb/sv0/conf/ecapa_tdnn.yaml (model part)
ECAPA_FULL_CONFIG: dict[str, Any] = {
    "sr": 16000, "n_mels": 80, "window_size": 400, "hop_size": 160, "num_speakers": 7205,
    "model": {"input_size": 80, "channels": [1024, 1024, 1024, 1024, 3072],
              "kernel_sizes": [5, 3, 3, 3, 1], "dilations": [1, 2, 3, 4, 1],
              "attention_channels": 128, "lin_neurons": 192},
}


def write_random_ecapa(directory: Path, seed: int = 0) -> Path:
    """Full-size random ECAPA-TDNN training checkpoint (``backbone.`` keys +
    classifier), laid out like PaddleSpeech's archive."""
    import paddle
    import yaml
    from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn
    from paddlespeech.vector.modules.sid_model import SpeakerIdetification

    if (directory / "model" / "model.pdparams").is_file():
        return directory
    paddle.seed(seed)
    model = SpeakerIdetification(backbone=EcapaTdnn(**ECAPA_FULL_CONFIG["model"]),
                                 num_class=ECAPA_FULL_CONFIG["num_speakers"])
    (directory / "conf").mkdir(parents=True, exist_ok=True)
    (directory / "model").mkdir(parents=True, exist_ok=True)
    (directory / "conf" / "model.yaml").write_text(yaml.safe_dump(ECAPA_FULL_CONFIG))
    paddle.save(model.state_dict(), str(directory / "model" / "model.pdparams"))
    return directory


def write_random_cnn14(directory: Path, seed: int = 0) -> Path:
    """Full-size random CNN14 checkpoint (``cnn14.pdparams`` + ``panns.yaml``)."""
    import paddle
    import yaml
    from paddlespeech.cls.models.panns import CNN14

    if (directory / "cnn14.pdparams").is_file():
        return directory
    paddle.seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    feature = {"sample_rate": 32000, "n_fft": 1024, "hop_length": 320, "window": "hann",
               "window_length": 1024, "f_min": 50.0, "f_max": 14000.0, "n_mels": 64}
    (directory / "panns.yaml").write_text(yaml.safe_dump({"feature": feature}))
    paddle.save(CNN14(extract_embedding=True).state_dict(), str(directory / "cnn14.pdparams"))
    return directory


def test_clip(sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    """A speech-like clip: a gliding harmonic tone with syllable-rate
    amplitude modulation plus noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = 120.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t)) + 0.05 * rng.standard_normal(n)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(name: str, *, model_dir: str | None, backend: str | None, threads: int | None,
            repeat: int, batch: int, seconds: float) -> dict[str, Any]:
    """Load one encoder and time it (runs inside the worker subprocess)."""
    os.environ.setdefault("VOICEPRINT_OFFLINE", "1")
    weights = "real"
    t0 = time.perf_counter()
    if name in PADDLE_ENCODERS:
        from voiceprint.errors import EncoderUnavailable

        if name == "ecapa_tdnn":
            from voiceprint.encoders.ecapa_tdnn import EcapaTdnnEncoder as cls
        else:
            from voiceprint.encoders.panns_cnn14 import PannsCnn14Encoder as cls  # type: ignore[assignment]
        try:
            encoder = cls.load(model_dir=model_dir, num_threads=threads, backend=backend,
                               allow_download=False)
        except EncoderUnavailable:
            weights = "random weights (speed only)"
            writer = write_random_ecapa if name == "ecapa_tdnn" else write_random_cnn14
            root = writer(RANDOM_DIR / name)
            # keep exports of throw-away weights out of the user's cache
            os.environ["VOICEPRINT_CACHE_DIR"] = str(RANDOM_DIR / "voiceprint-cache")
            t0 = time.perf_counter()
            encoder = cls.load(model_dir=str(root), num_threads=threads, backend=backend)
    else:
        from voiceprint.encoders.registry import load_encoder

        encoder = load_encoder(name, model_dir=model_dir, num_threads=threads)
        weights = "real (shipped in wheel)" if name == "ge2e" else "real"
    load_s = time.perf_counter() - t0
    rss = _max_rss_mb()

    sr = encoder.sample_rate
    clip = test_clip(sr, seconds, seed=1)
    for _ in range(2):
        encoder.embed(clip)
    same, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        encoder.embed(clip)
        same.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    # lengths that differ by 1..repeat frames of 10 ms: a new input shape each call
    fresh = []
    for i in range(repeat):
        c = test_clip(sr, seconds + 0.01 * (i + 1), seed=100 + i)
        t = time.perf_counter()
        encoder.embed(c)
        fresh.append(time.perf_counter() - t)
    clips = [test_clip(sr, seconds, seed=200 + i) for i in range(batch)]
    encoder.embed_batch(clips)
    rounds = max(1, repeat // 10)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        encoder.embed_batch(clips)
    per_s = rounds * batch / (time.perf_counter() - t)
    batch_cpu_ms = 1e3 * (time.process_time() - c) / (rounds * batch)
    return {
        "encoder": name, "weights": weights, "backend": getattr(encoder, "backend", "torch"),
        "threads": threads, "load_s": load_s, "rss_mb_after_load": rss,
        "ms_median": 1e3 * float(np.median(same)), "ms_p90": 1e3 * float(np.percentile(same, 90)),
        "cpu_ms_median": 1e3 * float(np.median(cpu)),
        "ms_fresh_median": 1e3 * float(np.median(fresh)),
        "ms_fresh_p90": 1e3 * float(np.percentile(fresh, 90)),
        "batch": batch, "batch_clips_per_s": per_s, "batch_cpu_ms_per_clip": batch_cpu_ms,
        "rss_mb_end": _max_rss_mb(),
    }


def _run_worker(args: argparse.Namespace, name: str, backend: str | None,
                model_dir: str | None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    cmd = [sys.executable, "-m", "eval.bench_encoders", "--worker", name, "--out", out,
           "--repeat", str(args.repeat), "--batch", str(args.batch), "--seconds", str(args.seconds)]
    if backend:
        cmd += ["--backends", backend]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if model_dir:
        cmd += ["--model-dir", f"{name}={model_dir}"]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            return {"encoder": name, "backend": backend or "default", "error": " | ".join(tail)}
        return json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)


def markdown(rows: list[dict[str, Any]], seconds: float) -> str:
    head = (f"| encoder | weights | backend | threads | load s | ms/{seconds:g} s clip median | p90 "
            "| CPU ms/clip "
            f"| ms/clip, new lengths median | p90 | batch {rows[0].get('batch', 16) if rows else 16} "
            "clips/s | batch CPU ms/clip | peak RSS after load MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['encoder']} | - | {r['backend']} | - | failed: {r['error']} "
                         + "| - " * 9 + "|")
            continue
        lines.append(
            f"| {r['encoder']} | {r['weights']} | {r['backend']} | {r['threads'] or 'default'} "
            f"| {r['load_s']:.1f} | {r['ms_median']:.0f} | {r['ms_p90']:.0f} | {r['cpu_ms_median']:.0f} "
            f"| {r['ms_fresh_median']:.0f} | {r['ms_fresh_p90']:.0f} "
            f"| {r['batch_clips_per_s']:.1f} | {r['batch_cpu_ms_per_clip']:.0f} "
            f"| {r['rss_mb_after_load']:.0f} |")
    return "\n".join(lines)


def _model_dirs(values: list[str], names: list[str]) -> dict[str, str]:
    dirs: dict[str, str] = {}
    for v in values:
        if "=" in v and v.split("=", 1)[0] in names + list(PADDLE_ENCODERS) + ["ge2e"]:
            k, p = v.split("=", 1)
            dirs[k] = p
        elif len(names) == 1:
            dirs[names[0]] = v
        else:
            raise SystemExit(f"--model-dir {v}: say which encoder, e.g. ecapa_tdnn={v}")
    return dirs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.bench_encoders", description=__doc__.split("\n")[0])
    p.add_argument("--encoders", default="ge2e,ecapa_tdnn,panns_cnn14")
    p.add_argument("--model-dir", action="append", default=[],
                   help="NAME=PATH (or PATH with a single encoder): checkpoint dir or archive")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=5.0, help="clip length, s")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: encoder's)")
    p.add_argument("--backends", default="auto",
                   help="for the paddle encoders: comma list of auto,dygraph,inference,onednn")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    dirs = _model_dirs(args.model_dir, [args.worker] if args.worker else names)
    if args.worker:
        row = measure(args.worker, model_dir=dirs.get(args.worker),
                      backend=None if args.backends == "auto" else args.backends,
                      threads=args.threads, repeat=args.repeat, batch=args.batch, seconds=args.seconds)
        Path(args.out).write_text(json.dumps(row))
        return 0

    rows = []
    for name in names:
        backends = [b.strip() for b in args.backends.split(",")] if name in PADDLE_ENCODERS else [None]
        for backend in backends:
            print(f"measuring {name} ({backend or 'default'}) ...", file=sys.stderr, flush=True)
            rows.append(_run_worker(args, name, backend, dirs.get(name)))
    print(markdown(rows, args.seconds))
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
