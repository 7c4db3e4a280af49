"""Diarization and identification of participants on built conversations.

    python -m eval.diarize [--sources fsdd,synth] [--calls 8] [--minutes 1.5] [--encoder ge2e]
    python -m eval.diarize --tune            # cosine merge threshold on other seeds
    python -m eval.diarize --long-minutes 60 # one long call: speed and peak memory

Conversations come from :mod:`eval.diarize_data` (FSDD real voices and
synthesized voices), per condition: two speakers without overlap, two
speakers with overlap, three or four speakers with overlap. Deterministic
given ``--seed`` (``--tune`` uses seeds 1000+ so the reported seeds stay
unseen).

Printed per source and condition (Markdown):

- DER and its parts (missed speech, false alarm, confusion) in % of
  reference speech, 0.25 s collar on either side of reference boundaries,
  overlap scored, optimal one-to-one label mapping
  (:mod:`voiceprint.scoring.der`); pooled over the calls (total error time
  over total reference time); how often the number of speakers was right,
  and the DER when the number of speakers is given (``num_speakers``);
- identification: in every call about half of the participants are enrolled
  (from clips not used in any call) next to every speaker of the source who
  is not in the call; the others are never enrolled. Judged at the encoder's
  uncalibrated default threshold (what the service uses before
  ``voiceprint calibrate``) and at values chosen on the ``--tune`` seeds.
  *enrolled identified*: the label mapped to an enrolled participant names
  them; *never-enrolled unknown*: the label mapped to a never-enrolled
  participant is ``unknown``; *labels naming the wrong person*: labels
  naming someone who is not the participant they map to.
  *Baseline*: the whole recording as one voice (what ``/identify`` does):
  how often its single answer names each enrolled participant, and how often
  it names someone who is not in the call (thresholds: cosine, or
  ``--id-threshold``);
- speed: CPU seconds (process time, all threads) per minute of audio, per
  step, with the machine's load average (timings on a shared machine are
  pessimistic).
"""
from __future__ import annotations

from voiceprint.scoring.cosine import cosine_matrix

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eval.datasets import fsdd_dir
from eval.diarize_data import (Conversation, Plan, Source, build_conversation,
                               enrollment_utterances, fsdd_source, synth_source)
from voiceprint.diarization.identify import Gallery, identify_labels
from voiceprint.scoring.der import DerComponents, der_components

HERE = Path(__file__).resolve().parent
SYNTH = HERE / "cache" / "synth_voices"
CONDITIONS: dict[str, tuple[tuple[int, ...], float]] = {
    # name: (speaker counts, overlap probability at a turn change)
    "2 spk, no overlap": ((2,), 0.0),
    "2 spk, overlap": ((2,), 0.3),
    "3-4 spk": ((3, 4), 0.2),
}


@dataclass
class Tally:
    """Pooled results of one (source, condition).

    Identification is kept as raw outcomes so it can be judged at several
    thresholds: per label ``(best speaker, best score, mapped reference speaker,
    enrolled?)`` and per call the whole-file baseline ``(best, score, speakers,
    enrolled)``.
    """

    der: DerComponents = field(default_factory=lambda: DerComponents(0.0, 0.0, 0.0, 0.0))
    der_hinted: DerComponents = field(default_factory=lambda: DerComponents(0.0, 0.0, 0.0, 0.0))
    calls: int = 0
    minutes: float = 0.0
    count_right: int = 0
    participants: list[tuple[str, bool, str | None, float | None]] = field(default_factory=list)
    labels: list[tuple[str | None, float, str | None]] = field(default_factory=list)
    baseline: list[tuple[str, float, list[str], list[str]]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def identification(self, threshold: float) -> dict[str, tuple[int, int]]:
        """(hits, trials) per outcome at ``threshold`` (cosine, accept iff score >= threshold)."""
        enrolled = [(best == spk and score is not None and score >= threshold)
                    for spk, is_enrolled, best, score in self.participants if is_enrolled]
        never = [(score is not None and score < threshold)
                 for spk, is_enrolled, best, score in self.participants if not is_enrolled]
        false = [score >= threshold and best != ref for best, score, ref in self.labels]
        b_hit = sum(best in enr and score >= threshold for best, score, _, enr in self.baseline)
        b_enr = sum(len(enr) for *_, enr in self.baseline)
        b_wrong = [score >= threshold and best not in spk for best, score, spk, _ in self.baseline]
        return {"enrolled": (sum(enrolled), len(enrolled)), "never": (sum(never), len(never)),
                "false": (sum(false), len(false)), "base_hit": (b_hit, b_enr),
                "base_wrong": (sum(b_wrong), len(b_wrong))}


def voiceprints(encoder: Any, source: Source) -> dict[str, np.ndarray]:
    """Speaker -> L2-normalised mean of the embeddings of its enrollment utterances."""
    out = {}
    for spk in source.speakers:
        e = encoder.embed_batch(enrollment_utterances(source, spk)).mean(axis=0)
        out[spk] = (e / np.linalg.norm(e)).astype(np.float32)
    return out


def score_call(tally: Tally, conv: Conversation, result: Any, enrolled: list[str],
               prints: dict[str, np.ndarray], encoder: Any) -> None:
    """Add one call's DER and raw identification outcomes to ``tally``.

    The gallery holds the call's enrolled participants and every speaker of
    the source who is not in the call.
    """
    hyp = [(s.start, s.end, s.label) for s in result.segments]
    parts = der_components(conv.reference, hyp, collar=0.25)
    tally.der = tally.der + parts
    tally.calls += 1
    tally.minutes += conv.duration / 60
    tally.count_right += int(len(result.labels) == len(conv.speakers))
    gallery_ids = [s for s in prints if s in enrolled or s not in conv.speakers]
    # threshold +inf: keep raw best scores; decisions are taken per threshold later
    gallery = Gallery(gallery_ids, np.stack([prints[s] for s in gallery_ids]), float("inf"))
    ids = identify_labels(result.centroids(), gallery)
    mapped = {ref: hyp_label for hyp_label, ref in parts.mapping.items()}
    for spk in conv.speakers:
        got = ids.get(mapped.get(spk, ""))
        tally.participants.append((spk, spk in enrolled, got.best_speaker_id if got else None,
                                   got.score if got else None))
    for label, ident in ids.items():
        tally.labels.append((ident.best_speaker_id, ident.score, parts.mapping.get(label)))
    whole = identify_labels({"all": encoder.embed(conv.waveform)}, gallery)["all"]
    tally.baseline.append((whole.best_speaker_id, whole.score, list(conv.speakers), list(enrolled)))
    for k, v in result.stats.get("cpu_seconds", {}).items():
        tally.cpu[k] = tally.cpu.get(k, 0.0) + v


def calls_for(source: Source, condition: str, n: int, minutes: float, seed: int
              ) -> list[tuple[Conversation, list[str]]]:
    """``n`` conversations of a condition and, per call, the enrolled participants."""
    counts, overlap = CONDITIONS[condition]
    rng = np.random.default_rng([seed, sum(map(ord, source.name + condition))])
    out = []
    for i in range(n):
        k = counts[i % len(counts)]
        speakers = [str(s) for s in rng.choice(source.speakers, size=k, replace=False)]
        conv = build_conversation(source, speakers, Plan(minutes=minutes, overlap_prob=overlap), rng)
        enrolled = speakers[: max(1, k // 2)]
        out.append((conv, enrolled))
    return out


def pct(a: float, b: float) -> str:
    return f"{100 * a / b:.1f}" if b else "-"


def frac(pair: tuple[int, int]) -> str:
    hits, n = pair
    return f"{hits}/{n} ({pct(hits, n)} %)"


def print_tables(rows: list[tuple[str, str, Tally]], title: str, thresholds: Sequence[float]) -> None:
    print(f"\n### {title}\n")
    print("| source | condition | calls | minutes | DER % | missed % | false alarm % | confusion % "
          "| speaker count right | DER % with the count given |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for src, cond, t in rows:
        d = t.der
        print(f"| {src} | {cond} | {t.calls} | {t.minutes:.1f} | {100 * d.der:.1f} "
              f"| {100 * d.rate('missed'):.1f} | {100 * d.rate('false_alarm'):.1f} "
              f"| {100 * d.rate('confusion'):.1f} | {t.count_right}/{t.calls} "
              f"| {100 * t.der_hinted.der:.1f} |")
    print("\nIdentification (threshold: cosine of label centroid vs voiceprint)\n")
    print("| source | condition | threshold | enrolled identified | never-enrolled unknown "
          "| labels naming the wrong person | baseline: enrolled named | baseline: wrong person named |")
    print("|---|---|---|---|---|---|---|---|")
    for src, cond, t in rows:
        for thr in thresholds:
            r = t.identification(thr)
            print(f"| {src} | {cond} | {thr:.2f} | {frac(r['enrolled'])} | {frac(r['never'])} "
                  f"| {frac(r['false'])} | {frac(r['base_hit'])} | {frac(r['base_wrong'])} |")
    cpu: dict[str, float] = {}
    minutes = sum(t.minutes for _, _, t in rows)
    for _, _, t in rows:
        for k, v in t.cpu.items():
            cpu[k] = cpu.get(k, 0.0) + v
    total = sum(cpu.values())
    print(f"\nspeed: {total / max(minutes, 1e-9):.2f} CPU s per minute of audio ("
          + ", ".join(f"{k} {v / max(minutes, 1e-9):.2f}" for k, v in cpu.items())
          + f"); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def load_models(args: argparse.Namespace) -> tuple[Any, Any]:
    from voiceprint.diarization.segmentation import SegmentationModel
    from voiceprint.encoders.registry import load_encoder

    return (SegmentationModel.load(num_threads=args.threads),
            load_encoder(args.encoder, num_threads=args.threads))


def make_diarizer(seg: Any, encoder: Any, args: argparse.Namespace, threshold: float | None = None
                  ) -> Any:
    from voiceprint.diarization.pipeline import DiarizationOptions, Diarizer

    return Diarizer(seg, encoder, DiarizationOptions(step_seconds=args.step, threshold=threshold))


def sources(args: argparse.Namespace) -> list[Source]:
    out = []
    for name in args.sources.split(","):
        if name == "fsdd":
            if not Path(args.fsdd).is_dir():
                print(f"skip fsdd: {args.fsdd} not found", file=sys.stderr)
                continue
            out.append(fsdd_source(Path(args.fsdd)))
        elif name == "synth":
            if not Path(args.synth).is_dir():
                from eval.synth_voices import synthesize_corpus
                synthesize_corpus(args.synth, clips_per_speaker=24, seconds_per_clip=4,
                                  patterns=("flite-*", "espeak-m?-*", "espeak-f?-*"))
            out.append(synth_source(Path(args.synth)))
        else:
            raise SystemExit(f"unknown source {name!r} (fsdd, synth)")
    return out


#: identification thresholds shown besides the service's uncalibrated default (the encoder
#: spec's) when --id-threshold is not given: around the best trade-off on the --tune seeds (1000+)
ID_THRESHOLDS: dict[str, tuple[float, ...]] = {"ge2e": (0.80, 0.90), "campplus": (0.70, 0.85)}


def id_thresholds(encoder: str, given: str | None) -> list[float]:
    if given:
        return [float(x) for x in given.split(",")]
    from voiceprint.encoders.registry import SPECS
    spec = SPECS.get(encoder)
    default = [round(spec.default_threshold, 4)] if spec else []
    return sorted(set(ID_THRESHOLDS.get(encoder, (0.5,))) | set(default))


def evaluate(args: argparse.Namespace) -> list[tuple[str, str, Tally]]:
    seg, encoder = load_models(args)
    diarizer = make_diarizer(seg, encoder, args, args.threshold)
    thresholds = id_thresholds(args.encoder, args.id_threshold)
    rows = []
    for source in sources(args):
        prints = voiceprints(encoder, source)
        for cond in CONDITIONS:
            tally = Tally()
            for conv, enrolled in calls_for(source, cond, args.calls, args.minutes, args.seed):
                analysis = diarizer.analyse(conv.waveform)
                result = diarizer.cluster(analysis)
                score_call(tally, conv, result, enrolled, prints, encoder)
                hinted = diarizer.cluster(analysis, num_speakers=len(conv.speakers))
                tally.der_hinted = tally.der_hinted + der_components(
                    conv.reference, [(s.start, s.end, s.label) for s in hinted.segments])
            rows.append((source.name, cond, tally))
            print(f"{source.name} / {cond}: DER {100 * tally.der.der:.1f} %", file=sys.stderr)
    print_tables(rows, f"encoder {args.encoder}, merge threshold {diarizer.threshold}, "
                       f"step {diarizer.options.step_seconds} s, seed {args.seed}", thresholds)
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text(json.dumps(
            [{"source": src, "condition": cond, **dataclasses.asdict(t)}
             for src, cond, t in rows], default=str))
    return rows


def tune(args: argparse.Namespace) -> None:
    """On seeds 1000+: DER per merge threshold, then identification per decision threshold.

    Segmentation and embeddings are computed once per call; the identification
    table uses the merge threshold ``--threshold`` (default: the encoder's).
    """
    seg, encoder = load_models(args)
    diarizer = make_diarizer(seg, encoder, args, args.threshold)
    grid = [round(x, 2) for x in np.arange(args.tune_from, args.tune_to + 1e-9, 0.05)]
    totals = {t: DerComponents(0.0, 0.0, 0.0, 0.0) for t in grid}
    right = {t: 0 for t in grid}
    calls = 0
    own: list[tuple[float, bool]] = []   # enrolled participant: (own score, own is best)
    never: list[float] = []              # never-enrolled participant: best score
    for source in sources(args):
        prints = voiceprints(encoder, source)
        for cond in CONDITIONS:
            for conv, enrolled in calls_for(source, cond, args.calls, args.minutes, 1000 + args.seed):
                analysis = diarizer.analyse(conv.waveform)
                calls += 1
                for t in grid:
                    r = diarizer.cluster(analysis, threshold=t)
                    totals[t] = totals[t] + der_components(
                        conv.reference, [(s.start, s.end, s.label) for s in r.segments])
                    right[t] += int(len(r.labels) == len(conv.speakers))
                r = diarizer.cluster(analysis)
                parts = der_components(conv.reference, [(s.start, s.end, s.label) for s in r.segments])
                mapped = {ref: lab for lab, ref in parts.mapping.items()}
                ids = [s for s in prints if s in enrolled or s not in conv.speakers]
                models = np.stack([prints[s] for s in ids])
                for spk in conv.speakers:
                    if spk not in mapped:
                        continue
                    scores = cosine_matrix(models, r.labels[mapped[spk]].centroid)[:, 0]
                    if spk in enrolled:
                        k = ids.index(spk)
                        own.append((float(scores[k]), int(np.argmax(scores)) == k))
                    else:
                        never.append(float(scores.max()))
    print(f"\n| merge threshold ({args.encoder}) | DER % | confusion % | speaker count right |")
    print("|---|---|---|---|")
    for t in grid:
        print(f"| {t:.2f} | {100 * totals[t].der:.1f} | {100 * totals[t].rate('confusion'):.1f} "
              f"| {right[t]}/{calls} |")
    print(f"\nidentification at merge threshold {diarizer.threshold} "
          f"({len(own)} enrolled, {len(never)} never-enrolled participants with a label)\n")
    print("| decision threshold (cosine) | enrolled identified % | never-enrolled unknown % |")
    print("|---|---|---|")
    for t in np.arange(0.2, 0.951, 0.05):
        hit = sum(ok and sc >= t for sc, ok in own)
        unk = sum(sc < t for sc in never)
        print(f"| {t:.2f} | {pct(hit, len(own))} | {pct(unk, len(never))} |")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.diarize", description=__doc__.split("\n")[0])
    ap.add_argument("--sources", default="fsdd,synth")
    ap.add_argument("--fsdd", default=str(fsdd_dir()))
    ap.add_argument("--synth", default=str(SYNTH))
    ap.add_argument("--encoder", default="ge2e")
    ap.add_argument("--calls", type=int, default=8, help="calls per source and condition")
    ap.add_argument("--minutes", type=float, default=1.5, help="length of each call")
    ap.add_argument("--step", type=float, default=2.5, help="analysis window step (s)")
    ap.add_argument("--threshold", type=float, help="cosine merge threshold (default per encoder)")
    ap.add_argument("--id-threshold", help="identification thresholds (cosine), comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--tune-from", type=float, default=0.4)
    ap.add_argument("--tune-to", type=float, default=0.9)
    ap.add_argument("--long-minutes", type=float)
    ap.add_argument("--save", help="write the raw per-call outcomes (JSON) here")
    ap.add_argument("--run-file", help="diarize this audio file (speed, memory; used by --long-minutes)")
    ap.add_argument("--reference", help="with --run-file: JSON {speakers, turns} to score against")
    args = ap.parse_args(argv)
    if args.tune:
        tune(args)
    elif args.run_file:
        from eval.diarize_long import run_file
        run_file(args)
    elif args.long_minutes:
        from eval.diarize_long import long_call
        long_call(args)
    else:
        evaluate(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
