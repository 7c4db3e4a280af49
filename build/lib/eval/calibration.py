"""Do calibrated thresholds hold on speakers never seen in calibration?

    python -m eval.calibration [--encoder ge2e --encoder campplus] [--fsdd DIR] [--synth DIR]
                               [--write-defaults] [--out DIR]

Speakers (real FSDD recordings + voices synthesised with flite/festival/
espeak-ng, ``eval/synth_voices.py``) are split by speaker into a calibration
half and a held-out half, alternating within each source. The calibration
half goes through the service's own ``calibrate_embeddings`` (points with
trial counts and 95 % intervals, AS-norm chosen on folds, trust verdict);
then, on the held-out half:

1. observed FAR/FRR (with exact 95 % intervals) at every calibrated point,
   raw cosine and AS-norm (cohort = the calibration half, as in the service);
   does the observed FAR sit inside the calibrated interval?
2. EER and minDCF(0.01) of both normalisations, and whether the one
   calibration activated is the better one here;
3. open-set identification (``eval/open_set.py``): observed vs predicted
   false-identification rate of never-enrolled callers at N = 10, 100, 1000
   enrolled (real held-out speakers plus a synthetic gallery).

``--write-defaults`` measures the uncalibrated default of each encoder on
*all* speakers (threshold at FAR 0.1 % and its bound) and writes
``voiceprint/scoring/encoder_defaults.json``.

FSDD clips are single digits (~0.4 s), so each FSDD "clip" here is
``--fsdd-concat`` digits of one speaker concatenated (about 2 s).
Embeddings are cached per encoder in ``--cache`` (reruns only embed what is
missing). Writes ``calibration.json`` and ``calibration.md`` to ``--out``.
"""
from __future__ import annotations

from eval.datasets import fsdd_dir

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from voiceprint.audio import decode_file, resample
from voiceprint.audio.corpus import labelled_clips
from voiceprint.scoring.calibration import score_trials, split_models_probes
from voiceprint.scoring.intervals import clopper_pearson
from voiceprint.scoring.metrics import compute_eer, compute_min_dcf, rates_at_threshold
from voiceprint.services.calibration import calibrate_embeddings

HERE = Path(__file__).resolve().parent
DEFAULTS_JSON = HERE.parent / "voiceprint" / "scoring" / "encoder_defaults.json"
DEFAULT_FAR = 0.001


DEFAULT_FSDD = fsdd_dir()


# -- corpus --------------------------------------------------------------------------------
def fsdd_groups(root: Path, concat: int, per_speaker: int) -> dict[str, list[list[Path]]]:
    """Per FSDD speaker, ``per_speaker`` groups of ``concat`` digit files (one clip each)."""
    out = {}
    for spk, paths in labelled_clips(root).items():
        paths = sorted(paths, key=lambda p: (int(p.stem.split("_")[2]), int(p.stem.split("_")[0])))
        out[f"fsdd-{spk}"] = [paths[i:i + concat]
                              for i in range(0, min(len(paths), concat * per_speaker), concat)]
    return out


def folder_groups(root: Path, per_speaker: int) -> dict[str, list[list[Path]]]:
    return {f"synth-{spk}": [[p] for p in paths[:per_speaker]]
            for spk, paths in labelled_clips(root).items()}


def corpus(args: argparse.Namespace) -> dict[str, list[list[Path]]]:
    groups: dict[str, list[list[Path]]] = {}
    if args.fsdd and Path(args.fsdd).is_dir():
        groups.update(fsdd_groups(Path(args.fsdd), args.fsdd_concat, args.clips_per_speaker))
    if args.synth:
        synth = Path(args.synth)
        if not synth.is_dir() or not any(synth.iterdir()):
            from eval.synth_voices import synthesize_corpus
            print(f"synthesising voices into {synth} ...", flush=True)
            synthesize_corpus(synth, clips_per_speaker=args.clips_per_speaker)
        groups.update(folder_groups(synth, args.clips_per_speaker))
    if len(groups) < 8:
        raise SystemExit("need at least 8 speakers (give --fsdd and/or --synth)")
    return groups


def embed_corpus(encoder_name: str, groups: dict[str, list[list[Path]]], cache: Path,
                 num_threads: int | None = None) -> dict[str, np.ndarray]:
    """Embeddings per speaker; cached in an .npz (a speaker's first clips are reused)."""
    have: dict[str, np.ndarray] = dict(np.load(cache)) if cache.exists() else {}
    todo = [s for s in groups if s not in have or len(have[s]) < len(groups[s])]
    encoder = None
    for i, spk in enumerate(todo):
        if encoder is None:
            from voiceprint.encoders.registry import load_encoder
            encoder = load_encoder(encoder_name, num_threads=num_threads)
        t0 = time.process_time()
        waves = [np.concatenate([resample(a.samples, a.sample_rate, encoder.sample_rate)
                                 for a in map(decode_file, g)]) for g in groups[spk]]
        have[spk] = encoder.embed_batch(waves)
        print(f"  {encoder_name}: {spk} {len(waves)} clips, {time.process_time() - t0:.1f} s CPU "
              f"({i + 1}/{len(todo)})", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **have)
    return {s: have[s][:len(groups[s])] for s in groups}


def split_speakers(speakers: list[str]) -> tuple[list[str], list[str]]:
    """Alternate within each source (fsdd-*, synth-*) so both halves mix sources."""
    cal, test = [], []
    for prefix in sorted({s.split("-")[0] for s in speakers}):
        group = sorted(s for s in speakers if s.startswith(prefix + "-"))
        cal += group[0::2]
        test += group[1::2]
    return cal, test


# -- held-out transfer ---------------------------------------------------------------------
def observed(points: dict[str, Any], scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Each calibrated point applied to held-out trials: FAR/FRR with exact 95 % intervals."""
    n_imp, n_gen = int((labels == 0).sum()), int(labels.sum())
    out = {}
    for name, p in points.items():
        far, frr = rates_at_threshold(scores, labels, p["threshold"])
        fa = int(round(far * n_imp))
        lo, hi = clopper_pearson(fa, n_imp)
        out[name] = {"threshold": p["threshold"], "resolvable": p["resolvable"],
                     "calibrated_far": p["expected_far"], "calibrated_far_ci_95": p["far_ci_95"],
                     "calibrated_trials": p["trials"]["impostor"],
                     "observed_far": far, "observed_far_ci_95": [lo, hi], "observed_frr": frr,
                     "held_out_impostor_trials": n_imp, "held_out_genuine_trials": n_gen,
                     "far_within_calibrated_ci": bool(p["far_ci_95"][0] <= far <= p["far_ci_95"][1])}
    return out


def run_encoder(args: argparse.Namespace, encoder: str, groups: dict[str, list[list[Path]]]
                ) -> dict[str, Any]:
    from eval.open_set import evaluate_open_set

    embs = embed_corpus(encoder, groups, Path(args.cache) / f"calibration-{encoder}.npz",
                        args.threads)
    cal_names, test_names = split_speakers(list(embs))
    cal = {n: embs[n] for n in cal_names}
    test = {n: embs[n] for n in test_names}
    e = args.enroll_clips
    t0 = time.process_time()
    calibration = calibrate_embeddings(cal, e)
    cal_cpu = time.process_time() - t0
    cohort = np.concatenate(list(cal.values()))
    _, models, probes, owner = split_models_probes(test, e)
    result: dict[str, Any] = {
        "encoder": encoder, "enroll_clips": e, "calibration_cpu_s": round(cal_cpu, 2),
        "calibration_speakers": cal_names, "test_speakers": test_names,
        "calibration": {k: calibration[k] for k in ("n_speakers", "n_probes", "trusted", "warnings")},
        "normalization": {k: v for k, v in calibration["normalization"].items()}, "test": {},
    }
    for norm in ("none", "asnorm"):
        trials = score_trials(models, probes, owner, *((cohort, None) if norm == "asnorm" else ()))
        s, lab = trials.flat()
        result["test"][norm] = {
            "eer": compute_eer(s, lab)[0], "min_dcf": compute_min_dcf(s, lab, 0.01)[0],
            "n_genuine": int(lab.sum()), "n_impostor": int((lab == 0).sum()),
            "calibration_eer": calibration[norm]["eer"],
            "calibration_min_dcf": calibration[norm]["min_dcf"],
            "points": observed(calibration[norm]["points"], s, lab)}
    active = calibration["normalization"]["active"]
    other = "asnorm" if active == "none" else "none"
    result["normalization"]["held_out_check"] = {
        "active": active, "active_min_dcf": result["test"][active]["min_dcf"],
        "other_min_dcf": result["test"][other]["min_dcf"],
        "active_is_better_or_equal": result["test"][active]["min_dcf"] <= result["test"][other]["min_dcf"]}
    result["open_set"] = evaluate_open_set(calibration, cal, test, e, active, cohort,
                                           ns=tuple(args.gallery_sizes), targets=tuple(args.targets),
                                           seed=args.seed)
    return result


def defaults_entry(encoder: str, embs: dict[str, np.ndarray], enroll_clips: int) -> dict[str, Any]:
    """The uncalibrated default: threshold at FAR 0.1 % on all speakers, raw cosine."""
    full = calibrate_embeddings(embs, enroll_clips)
    point = full["none"]["points"]["far_0.1pct"]
    per_source = {}
    for src in sorted({n.split("-")[0] for n in embs}):
        part = {n: v for n, v in embs.items() if n.startswith(src + "-")}
        if len(part) >= 2:
            r = calibrate_embeddings(part, enroll_clips)["none"]
            per_source[src] = {"speakers": len(part), "eer": r["eer"],
                               "far_0.1pct": {k: r["points"]["far_0.1pct"][k] for k in
                                              ("threshold", "far", "far_ci_95", "resolvable", "frr")}}
    return {"threshold": round(point["threshold"], 4), "target_far": DEFAULT_FAR,
            "normalization": "none", "eer": full["none"]["eer"], "min_dcf": full["none"]["min_dcf"],
            "point": {k: point[k] for k in ("threshold", "far", "frr", "far_ci_95", "frr_ci_95",
                                            "trials", "resolvable")},
            "data": {"speakers": len(embs), "per_source": per_source,
                     "enroll_clips": enroll_clips,
                     "description": "FSDD (real, 8 kHz, digits concatenated 5 per clip) + voices "
                                    "synthesised by eval/synth_voices.py (espeak-ng, flite), 20 "
                                    "clips per speaker; measured by python -m eval.calibration "
                                    "--write-defaults"},
            "samples": full["none"]["samples"]}


def write_defaults(entries: dict[str, dict[str, Any]], path: Path = DEFAULTS_JSON) -> None:
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(entries)
    path.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    from eval.calibration_report import markdown

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", action="append", default=None,
                   help="repeatable; default ge2e and campplus (those that load)")
    p.add_argument("--fsdd", default=str(DEFAULT_FSDD))
    p.add_argument("--synth", default=str(HERE / "cache" / "synth_voices"),
                   help="folder <speaker>/<clips>; synthesised there when empty")
    p.add_argument("--clips-per-speaker", type=int, default=20)
    p.add_argument("--fsdd-concat", type=int, default=5)
    p.add_argument("--enroll-clips", type=int, default=3)
    p.add_argument("--gallery-sizes", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--targets", type=float, nargs="+", default=[0.01, 0.05],
                   help="target false-identification rates of never-enrolled callers")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-defaults", action="store_true",
                   help=f"write per-encoder defaults to {DEFAULTS_JSON.relative_to(HERE.parent)}")
    p.add_argument("--cache", default=str(HERE / "cache"))
    p.add_argument("--out", default=str(HERE / "results" / "calibration"))
    args = p.parse_args(argv)
    groups = corpus(args)
    results, defaults = [], {}
    for enc in args.encoder or ["ge2e", "campplus"]:
        print(f"== {enc}", flush=True)
        results.append(run_encoder(args, enc, groups))
        if args.write_defaults:
            embs = embed_corpus(enc, groups, Path(args.cache) / f"calibration-{enc}.npz")
            defaults[enc] = defaults_entry(enc, embs, args.enroll_clips)
            results[-1]["default"] = {k: v for k, v in defaults[enc].items() if k != "samples"}
    if defaults:
        write_defaults(defaults)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(results, indent=2))
    md = markdown(results)
    (out / "calibration.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
