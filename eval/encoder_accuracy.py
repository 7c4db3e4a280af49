"""Speaker EER on real speech per encoder, runtime and precision, and agreement with the original.

    python -m eval.encoder_accuracy [--data DIR] [--encoders campplus,ge2e]
        [--variants native/fp32,onnx/fp32,onnx/int8] [--cache-dir DIR]

On FSDD (``../shared/data/fsdd/recordings``: 6 speakers, 8 kHz, resampled to
16 kHz) the dataset's test split (indices 0-4 of every digit, 300 clips) is
embedded twice:

* ``clips``: every clip alone (about 0.4 s of speech each);
* ``3-digit``: queries of 3 concatenated digits of one speaker and index
  (0-1-2, 3-4-5, 6-7-8), 90 queries.

All pairs are scored by cosine similarity ([-1, 1]); genuine = same speaker.
For each variant other than the first, ``cos to first`` is the per-clip
cosine between its embedding and the first variant's (min and median), and
``max |diff|`` the largest absolute difference of the L2-normalised vectors.
A variant that cannot load (e.g. a refused int8 export) prints why.
"""
from __future__ import annotations

from voiceprint.scoring.cosine import cosine_matrix

import argparse
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def fsdd_test_split(root: Path) -> tuple[list[Path], list[str]]:
    paths, labels = [], []
    for p in sorted(root.iterdir()):
        m = FSDD_NAME.match(p.name)
        if m and int(m.group(3)) < 5:
            paths.append(p)
            labels.append(m.group(2))
    if not paths:
        raise SystemExit(f"no FSDD clips under {root}")
    return paths, labels


def load_16k(path: Path) -> np.ndarray:
    from voiceprint.audio.decode import decode_file
    from voiceprint.audio.resample import resample

    audio = decode_file(path)
    return resample(audio.samples, audio.sample_rate, 16000)


def three_digit_queries(paths: list[Path], waves: list[np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    by_name = {p.name: w for p, w in zip(paths, waves)}
    speakers = sorted({FSDD_NAME.match(p.name).group(2) for p in paths})  # type: ignore[union-attr]
    out, labels = [], []
    for s in speakers:
        for i in range(5):
            for digits in ((0, 1, 2), (3, 4, 5), (6, 7, 8)):
                names = [f"{d}_{s}_{i}.wav" for d in digits]
                if all(n in by_name for n in names):
                    out.append(np.concatenate([by_name[n] for n in names]))
                    labels.append(s)
    return out, labels


def all_pairs_eer(emb: np.ndarray, labels: list[str]) -> float:
    from voiceprint.scoring.metrics import compute_eer

    y = np.asarray(labels)
    iu = np.triu_indices(len(y), 1)
    return float(compute_eer(cosine_matrix(emb, emb)[iu], (y[:, None] == y[None])[iu])[0])


def evaluate(name: str, variant: str, cache_dir: str | None, threads: int | None,
             clips: list[np.ndarray], queries: list[np.ndarray]) -> dict[str, Any]:
    from voiceprint.encoders.registry import load_encoder
    from voiceprint.encoders.options import EncoderOptions
    from voiceprint.errors import EncoderUnavailable

    runtime, precision = variant.split("/")
    try:
        enc = load_encoder(name, EncoderOptions(runtime=runtime, precision=precision,
                                                cache_dir=cache_dir, num_threads=threads))
    except EncoderUnavailable as exc:
        return {"encoder": name, "variant": variant, "error": exc.message}
    t = time.process_time()
    a = np.concatenate([enc.embed_batch(clips[i:i + 32]) for i in range(0, len(clips), 32)])
    cpu = time.process_time() - t
    b = np.concatenate([enc.embed_batch(queries[i:i + 16]) for i in range(0, len(queries), 16)])
    export = getattr(getattr(enc, "runner_choice", None), "export", None)
    return {"encoder": name, "variant": variant, "backend": enc.backend, "clips": a, "queries": b,
            "cpu_s": cpu, "probe_check": export.verification.summary() if export else "-"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.encoder_accuracy", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--encoders", default="campplus,ge2e")
    p.add_argument("--variants", default="native/fp32,onnx/fp32,onnx/int8",
                   help="runtime/precision pairs; the first is the reference")
    p.add_argument("--cache-dir", default=None, help="export cache (default ~/.cache/voiceprint)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    if not args.data.is_dir():
        print(f"no data at {args.data}: pass --data (FSDD recordings)", file=sys.stderr)
        return 2
    paths, labels = fsdd_test_split(args.data)
    clips = [load_16k(p) for p in paths]
    queries, qlabels = three_digit_queries(paths, clips)
    print(f"FSDD test split: {len(clips)} clips, {len(set(labels))} speakers; "
          f"{len(queries)} 3-digit queries\n")
    print("| encoder | runtime/precision | backend | EER clips | EER 3-digit | cos to first min | median "
          "| max abs diff | CPU s (300 clips) | load-time check |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in [n.strip() for n in args.encoders.split(",") if n.strip()]:
        first: dict[str, Any] | None = None
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            r = evaluate(name, variant, args.cache_dir, args.threads, clips, queries)
            if "error" in r:
                print(f"| {name} | {variant} | - | unavailable: {r['error']} |||||||")
                continue
            cos_min = cos_med = diff = "-"
            if first is None:
                first = r
            else:
                cos = (r["clips"] * first["clips"]).sum(axis=1)
                cos_min, cos_med = f"{cos.min():.4f}", f"{np.median(cos):.4f}"
                diff = f"{np.abs(r['clips'] - first['clips']).max():.2e}"
            print(f"| {name} | {variant} | {r['backend']} | {all_pairs_eer(r['clips'], labels):.2%} "
                  f"| {all_pairs_eer(r['queries'], qlabels):.2%} | {cos_min} | {cos_med} | {diff} "
                  f"| {r['cpu_s']:.1f} | {r['probe_check']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
