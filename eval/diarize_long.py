"""``python -m eval.diarize --long-minutes 60``: one long call, as a job would process it.

The call (three synthesized voices, turns, pauses and overlaps) is written as
a FLAC file; a fresh process (``--run-file``) then loads the models, decodes
the file block by block to 16 kHz, diarizes it through a memory map and
prints CPU time per step, resident memory (with the models loaded, and the
peaks during the run, anonymous and file-backed apart) and the DER.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.diarize import load_models, make_diarizer
from eval.diarize_data import Plan, build_conversation, synth_source
from voiceprint.scoring.der import der_components


def long_call(args: argparse.Namespace) -> None:
    """Build one long synthesized call as a FLAC file, then diarize it in a fresh process."""
    import subprocess

    import soundfile as sf

    source = synth_source(Path(args.synth))
    rng = np.random.default_rng(args.seed)
    speakers = [str(s) for s in rng.choice(source.speakers, size=3, replace=False)]
    conv = build_conversation(source, speakers, Plan(minutes=args.long_minutes, overlap_prob=0.2), rng)
    with tempfile.TemporaryDirectory() as tmp:
        audio, ref = Path(tmp) / "call.flac", Path(tmp) / "reference.json"
        sf.write(audio, conv.waveform, 16000, subtype="PCM_16")
        ref.write_text(json.dumps({"speakers": speakers, "turns": conv.reference}))
        del conv, source
        cmd = [sys.executable, "-m", "eval.diarize", "--run-file", str(audio), "--reference",
               str(ref), "--encoder", args.encoder, "--threads", str(args.threads),
               "--step", str(args.step)]
        if args.threshold is not None:
            cmd += ["--threshold", str(args.threshold)]
        subprocess.run(cmd, check=True)


def run_file(args: argparse.Namespace) -> None:
    """Diarize one file as a job does (block-wise decode to 16 kHz, memory map); print CPU
    time, memory and, with ``--reference``, the DER."""
    from voiceprint.audio.decode import AudioLimits
    from voiceprint.diarization.longaudio import decode_to_file

    seg, encoder = load_models(args)
    diarizer = make_diarizer(seg, encoder, args, args.threshold)
    with_models = _proc_status()
    peaks = {"RssAnon": 0, "RssFile": 0}
    marks: list[float] = []

    def on_progress(fraction: float) -> None:
        marks.append(fraction)
        for k, v in _proc_status().items():
            if k in peaks:
                peaks[k] = max(peaks[k], v)

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        audio = decode_to_file(args.run_file, Path(tmp) / "audio.f32", AudioLimits(
            max_bytes=2**62, max_seconds=4 * 3600))
        decode_cpu = time.process_time() - c0
        on_progress(0.0)
        result = diarizer.run(audio.open(), progress=on_progress)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    minutes = audio.duration_s / 60
    out: dict[str, Any] = {
        "minutes": round(minutes, 1), "labels": len(result.labels),
        "cpu_seconds_per_minute": round(cpu / minutes, 2), "wall_seconds": round(wall, 1),
        "cpu_seconds": {"decode": round(decode_cpu, 1), **(result.stats.get("cpu_seconds") or {})},
        "rss_mb_with_models_loaded": round(with_models.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_anonymous_mb_during_run": round(peaks["RssAnon"] / 1024, 1),
        "anonymous_mb_with_models_loaded": round(with_models.get("RssAnon", 0) / 1024, 1),
        "peak_file_backed_mb_during_run": round(peaks["RssFile"] / 1024, 1),
        "progress_reports": len(marks), "load_average": round(os.getloadavg()[0], 1)}
    if args.reference:
        ref = json.loads(Path(args.reference).read_text())
        d = der_components([tuple(t) for t in ref["turns"]],
                           [(s.start, s.end, s.label) for s in result.segments])
        out.update(speakers=len(ref["speakers"]), der_percent=round(100 * d.der, 2),
                   confusion_percent=round(100 * d.rate("confusion"), 2))
    print(json.dumps(out, indent=1))


def _proc_status() -> dict[str, int]:
    """Resident memory parts in kB from /proc/self/status (empty where unavailable)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines)
            if k.startswith("Rss") or k == "VmRSS"}
