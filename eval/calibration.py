"""Do calibrated thresholds hold on speakers never seen in calibration?

    python -m eval.calibration [--fsdd DIR] [--synth DIR] [--encoder ge2e] [--out DIR]

Speakers (real FSDD recordings + voices synthesised with flite/festival/
espeak-ng) are split into a calibration half and a test half, alternating
within each source. Operating points are calibrated on the first half with
voiceprint's own calibration code, then applied to the second half:

1. observed FAR/FRR at each calibrated threshold (raw cosine and AS-norm,
   the cohort being the calibration half, as in the service);
2. EER and minDCF(0.01) on the test half for raw cosine vs AS-norm, and for
   the two speaker models (mean voiceprint vs best utterance);
3. open-set identification: half the test speakers enrolled, the other half
   never enrolled; how often enrolled speakers are found, and how often
   never-enrolled ones come back "unknown", against the rate the operating
   point predicts (1 - (1 - FAR)^N for N enrolled speakers).

FSDD clips are single digits (~0.4 s), so each FSDD "clip" here is
``--fsdd-concat`` digits of one speaker concatenated (about 2 s).
Writes ``calibration.json`` and ``calibration.md`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from voiceprint.audio import decode_file, resample
from voiceprint.audio.corpus import labelled_clips
from voiceprint.encoders.base import Encoder, l2_normalize
from voiceprint.scoring.metrics import compute_eer, compute_min_dcf, rates_at_threshold
from voiceprint.services.calibration import (calibrate_embeddings, score_trials,
                                             split_models_probes)

HERE = Path(__file__).resolve().parent


def _find_fsdd() -> Path:
    """``$VOICEPRINT_FSDD``, else the nearest ``shared/data/fsdd/recordings`` above the repo."""
    import os
    if os.environ.get("VOICEPRINT_FSDD"):
        return Path(os.environ["VOICEPRINT_FSDD"])
    for parent in HERE.parents:
        candidate = parent / "shared" / "data" / "fsdd" / "recordings"
        if candidate.is_dir():
            return candidate
    return HERE.parents[1] / "shared" / "data" / "fsdd" / "recordings"


DEFAULT_FSDD = _find_fsdd()


def fsdd_waveforms(root: Path, sr: int, concat: int, per_speaker: int) -> dict[str, list[np.ndarray]]:
    """Per FSDD speaker, ``per_speaker`` clips of ``concat`` digits each (16 kHz)."""
    out: dict[str, list[np.ndarray]] = {}
    for spk, paths in labelled_clips(root).items():
        paths = sorted(paths, key=lambda p: (int(p.stem.split("_")[2]), int(p.stem.split("_")[0])))
        clips = []
        for i in range(0, min(len(paths), concat * per_speaker), concat):
            parts = [decode_file(p) for p in paths[i:i + concat]]
            clips.append(np.concatenate([resample(a.samples, a.sample_rate, sr) for a in parts]))
        out[f"fsdd-{spk}"] = clips
    return out


def folder_waveforms(root: Path, sr: int, per_speaker: int) -> dict[str, list[np.ndarray]]:
    out = {}
    for spk, paths in labelled_clips(root).items():
        audios = [decode_file(p) for p in paths[:per_speaker]]
        out[f"synth-{spk}"] = [resample(a.samples, a.sample_rate, sr) for a in audios]
    return out


def embed_all(encoder: Encoder, waves: dict[str, list[np.ndarray]], cache: Path) -> dict[str, np.ndarray]:
    """Embeddings per speaker, cached in an .npz keyed by speaker (rerun resumes)."""
    have: dict[str, np.ndarray] = dict(np.load(cache)) if cache.exists() else {}
    todo = [s for s in waves if s not in have or len(have[s]) != len(waves[s])]
    for i, spk in enumerate(todo):
        t0 = time.perf_counter()
        have[spk] = encoder.embed_batch(waves[spk])
        print(f"  embedded {spk}: {len(waves[spk])} clips in {time.perf_counter() - t0:.1f} s "
              f"({i + 1}/{len(todo)})", flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **have)
    return {s: have[s] for s in waves}


def split_speakers(speakers: list[str]) -> tuple[list[str], list[str]]:
    """Alternate within each source (fsdd-*, synth-*) so both halves mix sources."""
    cal, test = [], []
    for prefix in sorted({s.split("-")[0] for s in speakers}):
        group = sorted(s for s in speakers if s.startswith(prefix + "-"))
        cal += group[0::2]
        test += group[1::2]
    return cal, test


def best_utterance_trials(embs: dict[str, np.ndarray], enroll: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores = max over a speaker's enrollment clips (instead of their mean)."""
    names = [n for n in sorted(embs) if len(embs[n]) > enroll]
    scores, labels = [], []
    for j, n in enumerate(names):
        probes = embs[n][enroll:]
        for k, m in enumerate(names):
            scores.append((probes @ embs[m][:enroll].T).max(axis=1))
            labels.append(np.full(len(probes), int(j == k)))
    return np.concatenate(scores), np.concatenate(labels)


def observed(points: dict[str, Any], scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    out = {}
    for name, p in points.items():
        far, frr = rates_at_threshold(scores, labels, p["threshold"])
        out[name] = {"threshold": p["threshold"], "calibrated_far": p["far"],
                     "observed_far": float(far), "calibrated_frr": p["frr"], "observed_frr": float(frr)}
    return out


def open_set(test: dict[str, np.ndarray], enroll: int, thresholds: dict[str, float],
             cohort: np.ndarray | None, per_trial_far: dict[str, float]) -> dict[str, Any]:
    """Enroll every other test speaker; probe with everybody's held-out clips."""
    names = sorted(test)
    enrolled, unknown = names[0::2], names[1::2]
    models = l2_normalize(np.stack([test[n][:enroll].mean(axis=0) for n in enrolled]))
    out: dict[str, Any] = {"enrolled_speakers": len(enrolled), "never_enrolled_speakers": len(unknown)}
    for norm, thr in thresholds.items():
        found = total_in = unknown_ok = total_out = 0
        for n in names:
            probes = test[n][enroll:]
            trials = score_trials(models, probes, np.zeros(len(probes), int),
                                  *((cohort, None) if norm == "asnorm" else ()))
            best = trials.scores.argmax(axis=1)
            top = trials.scores.max(axis=1)
            if n in enrolled:
                total_in += len(probes)
                found += int(np.sum((best == enrolled.index(n)) & (top >= thr)))
            else:
                total_out += len(probes)
                unknown_ok += int(np.sum(top < thr))
        far = per_trial_far[norm]
        out[norm] = {"threshold": thr, "found_rate": found / total_in,
                     "unknown_rate": unknown_ok / total_out,
                     "false_identification_rate": 1 - unknown_ok / total_out,
                     "predicted_false_identification_rate": 1 - (1 - far) ** len(enrolled),
                     "probes_enrolled": total_in, "probes_never_enrolled": total_out}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from voiceprint.encoders.registry import load_encoder

    encoder = load_encoder(args.encoder)
    sr = encoder.sample_rate
    waves: dict[str, list[np.ndarray]] = {}
    if args.fsdd and Path(args.fsdd).is_dir():
        waves.update(fsdd_waveforms(Path(args.fsdd), sr, args.fsdd_concat, args.clips_per_speaker))
    if args.synth:
        synth = Path(args.synth)
        if not synth.is_dir() or not any(synth.iterdir()):
            from eval.synth_voices import synthesize_corpus
            print(f"synthesising voices into {synth} ...", flush=True)
            synthesize_corpus(synth, clips_per_speaker=args.clips_per_speaker)
        waves.update(folder_waveforms(synth, sr, args.clips_per_speaker))
    if len(waves) < 4:
        raise SystemExit("need at least 4 speakers (give --fsdd and/or --synth)")
    embs = embed_all(encoder, waves, Path(args.cache) / f"calibration-{args.encoder}.npz")
    cal_names, test_names = split_speakers(list(embs))
    cal = {n: embs[n] for n in cal_names}
    test = {n: embs[n] for n in test_names}
    e = args.enroll_clips

    calibration = calibrate_embeddings(cal, e, fars=(0.01, 0.001))
    cohort = np.concatenate(list(cal.values()))
    _, models, probes, owner = split_models_probes(test, e)
    result: dict[str, Any] = {
        "encoder": args.encoder, "enroll_clips": e,
        "calibration_speakers": cal_names, "test_speakers": test_names,
        "calibration": {k: calibration[k] for k in ("n_speakers", "n_probes")}, "test": {},
    }
    per_trial_far = {}
    for norm in ("none", "asnorm"):
        trials = score_trials(models, probes, owner, *((cohort, None) if norm == "asnorm" else ()))
        s, lab = trials.flat()
        eer, _ = compute_eer(s, lab)
        dcf, _ = compute_min_dcf(s, lab, 0.01)
        obs = observed(calibration[norm]["points"], s, lab)
        per_trial_far[norm] = obs["far_1pct"]["observed_far"]
        result["test"][norm] = {"eer": eer, "min_dcf": dcf, "n_genuine": int(lab.sum()),
                                "n_impostor": int((lab == 0).sum()), "points": obs,
                                "calibration_eer": calibration[norm]["eer"],
                                "calibration_min_dcf": calibration[norm]["min_dcf"]}
    s, lab = best_utterance_trials(test, e)
    result["speaker_model"] = {
        "centroid": {"eer": result["test"]["none"]["eer"], "min_dcf": result["test"]["none"]["min_dcf"]},
        "best_utterance": {"eer": compute_eer(s, lab)[0], "min_dcf": compute_min_dcf(s, lab, 0.01)[0]},
    }
    thresholds = {n: calibration[n]["points"]["far_1pct"]["threshold"] for n in ("none", "asnorm")}
    result["open_set"] = open_set(test, e, thresholds, cohort, per_trial_far)
    return result


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Calibration transfer ({r['encoder']}, {r['enroll_clips']} enrollment clips)", "",
             f"Calibration speakers ({len(r['calibration_speakers'])}): {', '.join(r['calibration_speakers'])}",
             f"Test speakers ({len(r['test_speakers'])}): {', '.join(r['test_speakers'])}", "",
             "| scores | point | threshold | FAR calibrated | FAR observed | FRR calibrated | FRR observed |",
             "|---|---|---|---|---|---|---|"]
    for norm in ("none", "asnorm"):
        for name, p in r["test"][norm]["points"].items():
            lines.append(f"| {norm} | {name} | {p['threshold']:.4f} | {p['calibrated_far']:.2%} | "
                         f"{p['observed_far']:.2%} | {p['calibrated_frr']:.2%} | {p['observed_frr']:.2%} |")
    lines += ["", "| scores | EER (test) | minDCF 0.01 (test) | trials genuine / impostor |", "|---|---|---|---|"]
    for norm in ("none", "asnorm"):
        t = r["test"][norm]
        lines.append(f"| {norm} | {t['eer']:.2%} | {t['min_dcf']:.4f} | {t['n_genuine']} / {t['n_impostor']} |")
    lines += ["", "| speaker model | EER | minDCF |", "|---|---|---|"]
    for name, m in r["speaker_model"].items():
        lines.append(f"| {name} | {m['eer']:.2%} | {m['min_dcf']:.4f} |")
    o = r["open_set"]
    lines += ["", f"Open set: {o['enrolled_speakers']} enrolled, {o['never_enrolled_speakers']} never enrolled "
              "(threshold: far_1pct)", "",
              "| scores | found (enrolled) | unknown (never enrolled) | false identification | predicted |",
              "|---|---|---|---|---|"]
    for norm in ("none", "asnorm"):
        x = o[norm]
        lines.append(f"| {norm} | {x['found_rate']:.2%} | {x['unknown_rate']:.2%} | "
                     f"{x['false_identification_rate']:.2%} | {x['predicted_false_identification_rate']:.2%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fsdd", default=str(DEFAULT_FSDD))
    p.add_argument("--synth", default=str(HERE / "cache" / "synth_voices"),
                   help="folder <speaker>/<clips>; synthesised there when empty")
    p.add_argument("--encoder", default="ge2e")
    p.add_argument("--clips-per-speaker", type=int, default=20)
    p.add_argument("--fsdd-concat", type=int, default=5)
    p.add_argument("--enroll-clips", type=int, default=3)
    p.add_argument("--cache", default=str(HERE / "cache"))
    p.add_argument("--out", default=str(HERE / "results" / "calibration"))
    args = p.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(result, indent=2))
    md = markdown(result)
    (out / "calibration.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
