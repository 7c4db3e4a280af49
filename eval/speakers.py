"""Closed-set speaker identification and verification on any folder of clips.

    python -m eval.speakers --data DIR [--encoder ge2e] [--enroll-clips 10] [--concat 5]

Layouts (detected automatically):

* ``DIR/<speaker>/<clip>.wav|flac|...`` -- per speaker the clips are shuffled
  (``--seed``); the first ``--enroll-clips`` enroll, the rest are held out;
* FSDD's flat ``DIR/{digit}_{speaker}_{index}.wav`` -- the dataset's own
  split: indices 0-4 of every digit are test (held out), 5-49 train; the
  enrollment clips are drawn from the train part.

Per speaker the enrollment embedding is the L2-normalised mean of the
L2-normalised clip embeddings (``--enroll-mode concat``: one embedding of the
clips joined end to end). Each query is the waveform concatenation of
``--concat`` held-out clips of one speaker (disjoint groups). Every query is
scored against every enrolled speaker by cosine similarity (in [-1, 1]):

* identification: top-1 accuracy over the enrolled speakers (closed set);
* verification: all query x speaker pairs, genuine = the query's speaker;
  EER, minDCF (p_target 0.01), and the false reject rate at 1 % false accepts.

Output in ``--out`` (default ``eval/results/speakers-<stamp>/``):
``results.json``, ``README.md``, ``scores.png`` (genuine vs impostor
histograms) and ``det.png``.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eval import report

log = logging.getLogger("eval.speakers")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")
FSDD_NAME = re.compile(r"^(\d+)_([A-Za-z0-9\-]+)_(\d+)\.wav$")
FSDD_TEST_INDICES = range(0, 5)


@dataclass
class SpeakerClips:
    """One speaker's clips: ``enroll_pool`` to draw enrollments from, ``held_out`` for queries."""

    speaker: str
    enroll_pool: list[Path]
    held_out: list[Path]


def _audio(folder: Path, recursive: bool) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def discover(root: Path, *, seed: int = 0,
             enroll_clips: int = 10) -> tuple[str, list[SpeakerClips]]:
    """Detect the layout of ``root``; returns ``(layout name, speakers)``."""
    root = Path(root)
    if not root.is_dir():
        raise SystemExit(f"{root} is not a directory")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    speakers: list[SpeakerClips] = []
    with_audio = [(d, _audio(d, True)) for d in subdirs]
    with_audio = [(d, files) for d, files in with_audio if files]
    if with_audio:
        rng = np.random.default_rng(seed)
        for d, files in with_audio:
            order = rng.permutation(len(files))
            shuffled = [files[i] for i in order]
            speakers.append(SpeakerClips(d.name, shuffled[:enroll_clips], shuffled[enroll_clips:]))
        return "folders", speakers
    flat = _audio(root, False)
    fsdd = [(p, FSDD_NAME.match(p.name)) for p in flat]
    if flat and all(m is not None for _, m in fsdd):
        by_speaker: dict[str, tuple[list[Path], list[Path]]] = {}
        for p, m in fsdd:
            assert m is not None
            train, test = by_speaker.setdefault(m.group(2), ([], []))
            (test if int(m.group(3)) in FSDD_TEST_INDICES else train).append(p)
        for spk in sorted(by_speaker):
            train, test = by_speaker[spk]
            rng = np.random.default_rng([seed, len(spk)] + [ord(c) for c in spk])
            pool = [train[i] for i in rng.permutation(len(train))]
            test = [test[i] for i in rng.permutation(len(test))]
            speakers.append(SpeakerClips(spk, pool, test))
        return "fsdd", speakers
    raise SystemExit(f"{root}: expected <speaker>/<clips> folders or FSDD "
                     "{digit}_{speaker}_{index}.wav files")


def load_clip(path: Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz."""
    from voiceprint.audio.decode import decode_file
    from voiceprint.audio.resample import resample

    audio = decode_file(path)
    return resample(audio.samples, audio.sample_rate, sample_rate)


def _embed(encoder: Any, waves: Sequence[np.ndarray], batch: int) -> np.ndarray:
    parts = [encoder.embed_batch(list(waves[i:i + batch])) for i in range(0, len(waves), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)


def evaluate(encoder: Any, speakers: Sequence[SpeakerClips], *, enroll_clips: int,
             concat: int, batch: int = 16, max_queries: int | None = None,
             enroll_mode: str = "mean") -> dict[str, Any]:
    """Enroll every speaker, build queries, score; returns metrics and raw scores.

    ``enroll_mode`` "mean": mean of the L2-normalised clip embeddings;
    "concat": one embedding of the clips' waveform concatenation.
    """
    if enroll_mode not in ("mean", "concat"):
        raise ValueError("enroll_mode must be 'mean' or 'concat'")
    from tqdm import tqdm

    from voiceprint.scoring.cosine import centroid, cosine_matrix, l2_normalize
    from voiceprint.scoring.metrics import (compute_eer, compute_min_dcf, det_curve,
                                            rates_at_threshold, threshold_at_far)

    sr = encoder.sample_rate
    enrolled, names, query_waves, query_owner = [], [], [], []
    audio_s = 0.0
    t_decode = t_embed = 0.0
    n_enroll_clips = 0
    for spk in tqdm(speakers, desc="speakers", unit="spk"):
        chosen = spk.enroll_pool[:enroll_clips]
        if not chosen:
            log.warning("speaker %s has no enrollment clips; skipped", spk.speaker)
            continue
        groups = [spk.held_out[i:i + concat]
                  for i in range(0, len(spk.held_out) - concat + 1, concat)]
        if max_queries is not None:
            groups = groups[:max_queries]
        t0 = time.perf_counter()
        clips = [load_clip(p, sr) for p in chosen]
        t1 = time.perf_counter()
        emb = _embed(encoder, clips if enroll_mode == "mean" else [np.concatenate(clips)], batch)
        t2 = time.perf_counter()
        t_decode += t1 - t0
        t_embed += t2 - t1
        n_enroll_clips += len(clips)
        audio_s += sum(len(c) for c in clips) / sr
        enrolled.append(centroid(emb))
        names.append(spk.speaker)
        for g in groups:
            query_waves.append(np.concatenate([load_clip(p, sr) for p in g]))
            query_owner.append(len(names) - 1)
    if len(names) < 2 or not query_waves:
        raise SystemExit("need at least two speakers with enrollment clips and held-out queries")
    t0 = time.perf_counter()
    queries = l2_normalize(_embed(encoder, query_waves, batch))
    t_query = time.perf_counter() - t0
    E = np.stack(enrolled)
    owner = np.array(query_owner)
    scores = cosine_matrix(queries, E)  # (n_query, n_speakers) cosine in [-1, 1]
    top1 = float(np.mean(scores.argmax(axis=1) == owner))
    labels = np.zeros_like(scores, dtype=np.int64)
    labels[np.arange(len(owner)), owner] = 1
    flat_s, flat_y = scores.ravel().astype(np.float64), labels.ravel()
    eer, eer_thr = compute_eer(flat_s, flat_y)
    dcf, dcf_thr = compute_min_dcf(flat_s, flat_y, p_target=0.01)
    thr_far1 = threshold_at_far(flat_s, flat_y, 0.01)
    far1, frr1 = rates_at_threshold(flat_s, flat_y, thr_far1)
    fpr, fnr, _ = det_curve(flat_s, flat_y)
    per_speaker = {n: float(np.mean(scores[owner == i].argmax(axis=1) == i))
                   for i, n in enumerate(names) if np.any(owner == i)}
    query_seconds = [len(w) / sr for w in query_waves]
    return {
        "speakers": len(names),
        "queries": len(query_waves),
        "genuine_trials": int(flat_y.sum()),
        "impostor_trials": int(flat_y.size - flat_y.sum()),
        "top1_accuracy": top1,
        "eer": eer, "eer_threshold": eer_thr,
        "min_dcf_0.01": dcf, "min_dcf_threshold": dcf_thr,
        "threshold_far_1pct": thr_far1, "far_at_that_threshold": far1,
        "frr_at_far_1pct": frr1,
        "genuine_mean": float(flat_s[flat_y == 1].mean()),
        "impostor_mean": float(flat_s[flat_y == 0].mean()),
        "per_speaker_top1": per_speaker,
        "enroll_clips_per_speaker": n_enroll_clips / len(names),
        "enroll_audio_s_per_speaker": audio_s / len(names),
        "query_mean_s": float(np.mean(query_seconds)),
        "timing": {"enroll_decode_ms_per_clip": 1e3 * t_decode / max(1, n_enroll_clips),
                   "enroll_embed_ms_per_clip": 1e3 * t_embed / max(1, n_enroll_clips),
                   "query_embed_ms_per_query": 1e3 * t_query / len(query_waves)},
        "_scores": flat_s, "_labels": flat_y, "_det": (fpr, fnr),
    }


def write_outputs(result: dict[str, Any], context: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, labels = result.pop("_scores"), result.pop("_labels")
    fpr, fnr = result.pop("_det")
    name = context["encoder"]["name"]
    title = f"{name} on {Path(context['data']).name}: {result['speakers']} speakers"
    report.plot_scores(scores[labels == 1], scores[labels == 0], out_dir / "scores.png",
                       title=title, threshold=result["eer_threshold"])
    report.plot_det(fpr, fnr, out_dir / "det.png", title=title, eer=result["eer"])
    report.write_json(out_dir / "results.json", {**context, "results": result})
    summary = {k: v for k, v in result.items() if k not in ("per_speaker_top1", "timing")}
    for k in ("top1_accuracy", "eer", "min_dcf_0.01", "frr_at_far_1pct", "far_at_that_threshold"):
        summary[k] = f"{summary[k]:.4f}"
    report.write_markdown(out_dir / "README.md", f"Speaker evaluation: {title}", [
        ("Results", report.markdown_dict(summary)),
        ("Per-speaker top-1", report.markdown_dict(
            {k: f"{v:.3f}" for k, v in result["per_speaker_top1"].items()})),
        ("Timing", report.markdown_dict({k: f"{v:.1f}" for k, v in result["timing"].items()})),
        ("Setup", report.markdown_dict({k: v for k, v in context.items() if k != "machine"})),
        ("Machine", report.markdown_dict(context["machine"])),
        ("Plots", "![scores](scores.png)\n\n![DET](det.png)"),
    ])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.speakers", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="<speaker>/<clips> folder or FSDD recordings/")
    ap.add_argument("--encoder", default="ge2e")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--enroll-clips", type=int, default=10)
    ap.add_argument("--concat", type=int, default=5, help="held-out clips per query")
    ap.add_argument("--enroll-mode", choices=("mean", "concat"), default="mean",
                    help="mean of clip embeddings, or one embedding of the concatenated clips")
    ap.add_argument("--max-queries", type=int, default=None, help="per speaker")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from voiceprint.encoders.registry import load_encoder

    if args.enroll_clips < 1 or args.concat < 1:
        raise SystemExit("--enroll-clips and --concat must be >= 1")
    layout, speakers = discover(Path(args.data), seed=args.seed, enroll_clips=args.enroll_clips)
    encoder = load_encoder(args.encoder, model_dir=args.model_dir)
    result = evaluate(encoder, speakers, enroll_clips=args.enroll_clips, concat=args.concat,
                      batch=args.batch, max_queries=args.max_queries,
                      enroll_mode=args.enroll_mode)
    out_dir = Path(args.out) if args.out else RESULTS_DIR / f"speakers-{report.stamp()}"
    context = {"data": str(Path(args.data).resolve()), "layout": layout,
               "encoder": encoder.describe(), "enroll_clips": args.enroll_clips,
               "concat": args.concat, "enroll_mode": args.enroll_mode, "seed": args.seed,
               "split": ("FSDD: indices 0-4 held out (queries), 5-49 enrollment pool"
                         if layout == "fsdd" else
                         f"per speaker: {args.enroll_clips} random clips enroll, rest held out"),
               "machine": report.machine_stamp()}
    write_outputs(result, context, out_dir)
    print((out_dir / "README.md").read_text())
    print(f"results written to {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
