"""Build a speaker corpus from the speech synthesizers installed on this machine.

    python -m eval.synth_voices --out DIR [--clips-per-speaker 20] [--seconds-per-clip 3]

writes ``DIR/<speaker>/<nn>.wav`` (16 kHz, mono, 16-bit PCM) and
``DIR/voices.json`` (engine, voice, identity and the text of every clip).
Run ``--list`` to see the voices this machine offers.

Speakers come from three engines, each skipped when its program is missing:

- **flite** (``flite -lv``): kal16/kal, awb, rms, slt - recorded humans;
  limited-domain voices such as ``awb_time`` are skipped;
- **festival** (``text2wave``): every voice directory under
  ``/usr/share/festival/voices/<language>/``;
- **espeak-ng**: the formant synthesizer with each voice variant
  (``m1``-``m8``, ``f1``-``f5`` and the named ones), each variant paired with one
  English accent (en-us, en-gb, Scotland, RP, ...) chosen by a stable hash.

One speaker is one fixed voice configuration. Within a speaker, clips vary
only by text and a small speed change (+-8 %) and, for espeak-ng, a small pitch
offset (+-4 on its 0-99 scale), so no clip drifts towards another speaker.

Two kinds of near-duplicates are left out by default, because a verification
benchmark needs speakers that really differ:

- engines that re-synthesize the *same recorded person* (festival
  ``kal_diphone`` and flite ``kal16`` are both Kal; festival and flite ``slt``
  are both SLT): the first voice per ``identity`` is kept
  (``include_shared_identities=True`` keeps all, and ``voices.json`` records
  the identity so an evaluation can treat them as one person);
- espeak-ng variants that sound the same (:data:`ESPEAK_NEAR_DUPLICATES`,
  measured with the GE2E encoder, see there).

Texts are drawn from a seeded generator (word lists, pangrams, Harvard
sentences, numbers) keyed by speaker and clip index, so reruns produce the
same texts and existing files are reused.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceprint.audio.resample import resample

SAMPLE_RATE = 16_000
"""Output sample rate in Hz."""
TARGET_RMS_DBFS = -20.0
"""Every clip is scaled so its speech RMS is this level (dBFS, full scale = 1.0)."""
PEAK_LIMIT = 0.95
"""Maximum absolute sample value after scaling."""
WORDS_PER_SECOND = 2.6
"""Rough speaking rate used to size the text for ``seconds_per_clip``."""
FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
"""espeak-ng English voices that need no MBROLA data."""
ESPEAK_PREFERRED = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5")
ESPEAK_NEAR_DUPLICATES = frozenset({
    # espeak-ng 1.51 variants (``default`` = no variant) whose mean GE2E
    # (resemblyzer) embedding over 20 clips has cosine >= 0.90 with a voice kept
    # before it (ESPEAK_PREFERRED, then the other variants alphabetically,
    # ``default`` last), accents as assigned by :func:`espeak_voices`. For scale:
    # two clips of one voice average 0.89. Dropping them takes the GE2E
    # all-pairs EER of the corpus from 3.4 % (109 voices) to 1.5 % (63 voices).
    'Alex', 'anikaRobot', 'belinda', 'caleb', 'croak', 'default', 'Denis', 'Diogo', 'edward2',
    'f2', 'f4', 'fast', 'Gene2', 'grandpa', 'Hugo', 'iven2', 'iven3', 'john', 'klatt',
    'klatt2', 'klatt3', 'klatt5', 'klatt6', 'linda', 'm3', 'm6', 'Mario', 'max', 'Michael',
    'michel', 'miguel', 'Mike', 'RicishayMax3', 'robert', 'robosoft2', 'robosoft3',
    'robosoft4', 'robosoft5', 'robosoft7', 'steph2', 'steph3', 'Storm', 'whisperf',
})
FLITE_LIMITED_DOMAIN = frozenset({"awb_time"})
"""flite voices that can only say a fixed phrase set (``awb_time`` speaks the time)."""


@dataclass(frozen=True)
class Voice:
    """One speaker: an engine plus a fixed voice configuration.

    ``identity`` names the recorded person (or espeak variant) behind the voice,
    so two engines re-synthesizing the same person share it.
    """

    speaker: str
    engine: str
    voice: str
    identity: str
    accent: str | None = None


@dataclass
class ClipPlan:
    voice: Voice
    index: int
    path: Path
    text: str
    speed: float
    pitch: int


# ------------------------------------------------------------------ texts

_ADJ = ("quiet red small bright heavy old young green tall cold warm silver narrow "
        "gentle loud simple brave careful golden empty busy sudden dark clever wooden "
        "fresh broken distant plain rough smooth yellow happy lonely patient").split()
_NOUN = ("garden river teacher window engine market ladder pocket village doctor "
         "bottle captain kitchen mountain letter blanket station farmer basket mirror "
         "bridge forest candle pilot hammer orange island painter button rabbit "
         "library wagon harbor sister uncle tiger violin marble shovel airport").split()
_VERB = ("carried painted found opened watched followed lifted cleaned counted "
         "visited repaired borrowed noticed dropped pushed packed measured ordered "
         "answered covered crossed collected delivered finished remembered").split()
_ADV = ("slowly quickly quietly early late again carefully suddenly happily twice "
        "yesterday today outside upstairs together").split()
_PLACE = ("near the old bridge|behind the station|after the long winter|before lunch|"
          "in the small kitchen|across the river|under the tall trees|at the market|"
          "on Monday morning|during the storm|beside the harbor|in the library").split("|")
_NAME = ("Anna Peter Maria John Lucy David Sarah Thomas Emma Robert Alice Henry "
         "Grace Oliver Nora Victor").split()
_MONTH = ("January February March April May June July August September October "
          "November December").split()
PANGRAMS = (
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump.",
    "Sphinx of black quartz, judge my vow.",
    "The five boxing wizards jump quickly.",
    "Jackdaws love my big sphinx of quartz.",
    "Bright vixens jump; dozy fowl quack.",
    "Waltz, bad nymph, for quick jigs vex.",
)
HARVARD = (  # Harvard sentences (IEEE 1969), public domain
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
)


def _sentence(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        s = (f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_VERB)} the "
             f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_PLACE)}.")
    elif kind < 0.6:
        s = (f"{rng.choice(_NAME)} {rng.choice(_VERB)} {rng.randint(2, 99)} "
             f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}s {rng.choice(_ADV)}.")
    elif kind < 0.72:
        digits = " ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(4, 7)))
        s = f"The code for the {rng.choice(_NOUN)} is {digits}."
    elif kind < 0.8:
        s = (f"On {rng.choice(_MONTH)} {rng.randint(1, 28)}, {rng.randint(1950, 2030)}, "
             f"{rng.choice(_NAME)} {rng.choice(_VERB)} the {rng.choice(_NOUN)}.")
    elif kind < 0.9:
        s = rng.choice(HARVARD)
    else:
        s = rng.choice(PANGRAMS)
    return s


def clip_text(speaker: str, index: int, seconds: float, seed: int = 0) -> str:
    """Deterministic text for clip ``index`` of ``speaker``, sized for about ``seconds`` of speech."""
    rng = random.Random(zlib.crc32(f"{seed}/{speaker}/{index}".encode()))
    target = max(3, int(round(seconds * WORDS_PER_SECOND)))
    parts = [_sentence(rng)]
    words = len(parts[0].split())
    while words < target:  # add sentences while that brings the count closer to the target
        s = _sentence(rng)
        n = len(s.split())
        if abs(words + n - target) >= abs(words - target):
            break
        parts.append(s)
        words += n
    return " ".join(parts)


# ------------------------------------------------------------------ voice discovery

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _identity_from_name(name: str) -> str:
    """``kal16`` -> ``kal``, ``cmu_us_slt_arctic_hts`` -> ``slt``, ``kal_diphone`` -> ``kal``."""
    core = re.sub(r"^cmu_[a-z]{2}_", "", name)
    core = core.split("_")[0]
    return re.sub(r"\d+$", "", core) or name


def flite_voices() -> list[Voice]:
    """Voices listed by ``flite -lv``; kal16 is ordered before kal (8 kHz)."""
    exe = shutil.which("flite")
    if not exe:
        return []
    out = subprocess.run([exe, "-lv"], capture_output=True, text=True, timeout=30)
    listed = (out.stdout + out.stderr).split(":", 1)[-1].split()
    names = [n for n in listed if n not in FLITE_LIMITED_DOMAIN]
    names.sort(key=lambda n: (_identity_from_name(n), n != "kal16", n))
    return [Voice(f"flite-{_slug(n)}", "flite", n, _identity_from_name(n)) for n in names]


def festival_voices(root: Path = FESTIVAL_VOICE_ROOT) -> list[Voice]:
    """One voice per directory ``root/<language>/<voice>`` when ``text2wave`` exists."""
    if not shutil.which("text2wave") or not root.is_dir():
        return []
    names = sorted(p.name for p in root.glob("*/*") if p.is_dir())
    return [Voice(f"festival-{_slug(n)}", "festival", n, _identity_from_name(n)) for n in names]


def espeak_variants() -> list[str]:
    """Variant names espeak-ng knows (``espeak-ng --voices=variant``), preferred ones first."""
    exe = shutil.which("espeak-ng")
    if not exe:
        return []
    out = subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, timeout=30)
    names: list[str] = []
    for line in out.stdout.splitlines()[1:]:
        m = re.search(r"!v/(.+?)(?:\s{2,}|\s*$)", line)
        if m:
            names.append(m.group(1))
    found = set(names)
    preferred = [n for n in ESPEAK_PREFERRED if n in found]
    return preferred + sorted(found - set(preferred), key=str.lower)


def espeak_voices(variants: Sequence[str] | None = None) -> list[Voice]:
    """Each espeak-ng variant, then the base voice (``default``), each with one accent chosen by a stable hash."""
    if not shutil.which("espeak-ng"):
        return []
    variants = list(espeak_variants() if variants is None else variants)
    voices = []
    for variant in [*variants, "default"]:
        accent = ESPEAK_ACCENTS[zlib.crc32(variant.encode()) % len(ESPEAK_ACCENTS)]
        spec = accent if variant == "default" else f"{accent}+{variant}"
        voices.append(Voice(f"espeak-{_slug(variant)}-{accent}", "espeak-ng", spec,
                            f"espeak:{variant}", accent))
    return voices


def available_voices(*, engines: Iterable[str] = ("flite", "festival", "espeak-ng"),
                     include_shared_identities: bool = False,
                     include_near_duplicates: bool = False) -> list[Voice]:
    """Every usable voice on this machine, one per identity unless asked otherwise."""
    engines = set(engines)
    voices: list[Voice] = []
    if "flite" in engines:
        voices += flite_voices()
    if "festival" in engines:
        voices += festival_voices()
    if "espeak-ng" in engines or "espeak" in engines:
        voices += [v for v in espeak_voices()
                   if include_near_duplicates or v.identity.split(":", 1)[1] not in ESPEAK_NEAR_DUPLICATES]
    if include_shared_identities:
        return voices
    kept, seen = [], set()
    for v in voices:
        if v.identity not in seen:
            seen.add(v.identity)
            kept.append(v)
    return kept


# ------------------------------------------------------------------ synthesis

def _command(plan: ClipPlan, raw: Path, text_file: Path) -> list[str]:
    v = plan.voice
    if v.engine == "flite":
        return ["flite", "-voice", v.voice, "--setf", f"duration_stretch={plan.speed:.3f}",
                "-f", str(text_file), "-o", str(raw)]
    if v.engine == "festival":
        return ["text2wave", "-eval", f"(voice_{v.voice})",
                "-eval", f"(Parameter.set 'Duration_Stretch {plan.speed:.3f})",
                "-o", str(raw), str(text_file)]
    if v.engine == "espeak-ng":
        wpm = int(round(175 / plan.speed))
        return ["espeak-ng", "-v", v.voice, "-s", str(wpm), "-p", str(plan.pitch),
                "-w", str(raw), "-f", str(text_file)]
    raise ValueError(f"unknown engine {v.engine!r}")


def _finish(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono, 16 kHz, speech RMS at :data:`TARGET_RMS_DBFS`, peak at most :data:`PEAK_LIMIT`."""
    x = samples.mean(axis=1) if samples.ndim == 2 else samples
    x = resample(x.astype(np.float32), sample_rate, SAMPLE_RATE)
    active = x[np.abs(x) > 0.01 * (np.abs(x).max() + 1e-12)]
    rms = float(np.sqrt(np.mean(active.astype(np.float64) ** 2))) if active.size else 0.0
    if rms <= 0.0:
        raise RuntimeError("synthesizer produced silence")
    gain = 10 ** (TARGET_RMS_DBFS / 20) / rms
    gain = min(gain, PEAK_LIMIT / float(np.abs(x).max()))
    return (x * gain).astype(np.float32)


def _is_valid(path: Path) -> bool:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames > 0


def _plan_record(plan: ClipPlan) -> dict[str, object]:
    """What ``voices.json`` stores per clip; equal records mean an existing file can be reused."""
    rec: dict[str, object] = {"file": plan.path.name, "text": plan.text, "speed": plan.speed}
    if plan.voice.engine == "espeak-ng":
        rec["pitch"] = plan.pitch
    return rec


def _load_previous(out: Path) -> dict[str, dict[str, object]]:
    """``{"speaker/file": record}`` from an existing ``voices.json`` (empty if none)."""
    try:
        manifest = json.loads((out / "voices.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    previous = {}
    for speaker, entry in manifest.get("speakers", {}).items():
        voice = {k: entry.get(k) for k in ("engine", "voice")}
        for clip in entry.get("clips", []):
            previous[f"{speaker}/{clip.get('file')}"] = {**clip, **voice}
    return previous


def synthesize_clip(plan: ClipPlan, *, reuse: bool = True) -> Path:
    """Synthesize one clip to ``plan.path`` (atomically); with ``reuse``, keep a valid existing file."""
    if reuse and _is_valid(plan.path):
        return plan.path
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synth_") as tmp:
        raw, text_file = Path(tmp) / "raw.wav", Path(tmp) / "text.txt"
        text_file.write_text(plan.text + "\n", encoding="utf-8")
        proc = subprocess.run(_command(plan, raw, text_file), capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not raw.exists():
            raise RuntimeError(f"{plan.voice.speaker}: {proc.stderr.strip()[:300] or 'no output'}")
        samples, sr = sf.read(str(raw), dtype="float32")
        out = _finish(samples, sr)
        part = plan.path.with_name(plan.path.name + ".part")  # not *.wav: never mistaken for a clip
        sf.write(str(part), out, SAMPLE_RATE, format="WAV", subtype="PCM_16")
        os.replace(part, plan.path)
    return plan.path


def plan_clips(voice: Voice, out_dir: Path, clips_per_speaker: int, seconds_per_clip: float,
               seed: int = 0) -> list[ClipPlan]:
    """Paths, texts and per-clip speed/pitch for one speaker (deterministic)."""
    width = max(2, len(str(clips_per_speaker - 1)))
    plans = []
    for i in range(clips_per_speaker):
        rng = random.Random(zlib.crc32(f"{seed}/{voice.speaker}/{i}/prosody".encode()))
        plans.append(ClipPlan(voice=voice, index=i,
                              path=out_dir / voice.speaker / f"{i:0{width}d}.wav",
                              text=clip_text(voice.speaker, i, seconds_per_clip, seed),
                              speed=round(rng.uniform(0.92, 1.08), 3),
                              pitch=50 + rng.randint(-4, 4)))
    return plans


@dataclass
class CorpusStats:
    """What :func:`synthesize_corpus` did: counts, seconds of audio, wall time in seconds."""

    speakers: int = 0
    clips: int = 0
    reused: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    per_engine_seconds: dict[str, float] = field(default_factory=dict)
    failed_voices: dict[str, str] = field(default_factory=dict)


def synthesize_corpus(out_dir: str | os.PathLike[str], clips_per_speaker: int = 20,
                      seconds_per_clip: float = 3.0, *, voices: Sequence[Voice] | None = None,
                      patterns: Sequence[str] = (), max_voices: int | None = None,
                      include_shared_identities: bool = False, include_near_duplicates: bool = False,
                      seed: int = 0, jobs: int | None = None,
                      stats: CorpusStats | None = None,
                      log: Callable[[str], None] | None = None) -> dict[str, list[Path]]:
    """Write ``out_dir/<speaker>/<nn>.wav`` for every available voice; return ``{speaker: [paths]}``.

    ``patterns`` (shell globs on the speaker name) and ``max_voices`` narrow the
    voice list. The first clip of every voice is made first; a voice with any
    failing clip is left out of the result (reason in ``stats.failed_voices``).
    An existing valid 16 kHz mono file is reused unless ``voices.json`` records
    a different text, speed, pitch or voice for it. ``voices.json`` in
    ``out_dir`` describes every speaker made there (this run's and earlier
    runs') and every clip's text.
    """
    out = Path(out_dir)
    log = log or (lambda msg: None)
    stats = stats if stats is not None else CorpusStats()
    if voices is None:
        voices = available_voices(include_shared_identities=include_shared_identities,
                                  include_near_duplicates=include_near_duplicates)
    if patterns:
        voices = [v for v in voices if any(fnmatch.fnmatch(v.speaker, p) for p in patterns)]
    if max_voices is not None:
        voices = list(voices)[:max_voices]
    plans = {v.speaker: plan_clips(v, out, clips_per_speaker, seconds_per_clip, seed) for v in voices}
    jobs = jobs or os.cpu_count() or 1
    t0 = time.perf_counter()

    previous = _load_previous(out)

    def reusable(plan: ClipPlan) -> bool:
        """A valid file whose recorded text and voice match the plan (or that no manifest describes yet)."""
        if not _is_valid(plan.path):
            return False
        rec = previous.get(f"{plan.voice.speaker}/{plan.path.name}")
        wanted = {**_plan_record(plan), "engine": plan.voice.engine, "voice": plan.voice.voice}
        return rec is None or rec == wanted

    def run(plan: ClipPlan) -> tuple[ClipPlan, Path | None, str | None, float, bool]:
        existed = reusable(plan)
        start = time.perf_counter()
        try:
            return (plan, synthesize_clip(plan, reuse=existed), None,
                    time.perf_counter() - start, existed)
        except (RuntimeError, OSError, subprocess.SubprocessError, sf.LibsndfileError) as exc:
            return plan, None, str(exc), time.perf_counter() - start, existed

    result: dict[str, list[Path]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        # Probe: first clip of every voice; voices that fail here are dropped.
        probes = list(pool.map(run, [p[0] for p in plans.values() if p]))
        good = []
        for plan, path, err, secs, existed in probes:
            _account(stats, plan, secs, existed)
            if err is not None:
                stats.failed_voices[plan.voice.speaker] = err
                log(f"skip {plan.voice.speaker}: {err}")
            else:
                good.append(plan.voice.speaker)
        rest = [p for s in good for p in plans[s][1:]]
        done: dict[str, list[Path]] = {s: [plans[s][0].path] for s in good}
        for plan, path, err, secs, existed in pool.map(run, rest):
            _account(stats, plan, secs, existed)
            if err is not None:
                stats.failed_voices[plan.voice.speaker] = err
                log(f"clip failed {plan.path}: {err}")
            else:
                done[plan.voice.speaker].append(path)
    for s in good:
        if s not in stats.failed_voices:
            result[s] = sorted(done[s])
    stats.speakers = len(result)
    stats.clips = sum(len(p) for p in result.values())
    stats.audio_seconds = sum(sf.info(str(p)).duration for ps in result.values() for p in ps)
    stats.wall_seconds = time.perf_counter() - t0
    _write_manifest(out, [plans[s] for s in result], clips_per_speaker, seconds_per_clip, seed)
    return result


def _account(stats: CorpusStats, plan: ClipPlan, secs: float, existed: bool) -> None:
    if existed:
        stats.reused += 1
    else:
        e = plan.voice.engine
        stats.per_engine_seconds[e] = stats.per_engine_seconds.get(e, 0.0) + secs


def _write_manifest(out: Path, plans: list[list[ClipPlan]], clips_per_speaker: int,
                    seconds_per_clip: float, seed: int) -> None:
    """Write ``voices.json``: this run's speakers, plus earlier runs' speakers whose folders still exist."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        speakers = json.loads((out / "voices.json").read_text(encoding="utf-8")).get("speakers", {})
    except (OSError, ValueError):
        speakers = {}
    speakers = {k: v for k, v in speakers.items() if (out / k).is_dir()}
    for ps in plans:
        speakers[ps[0].voice.speaker] = {**asdict(ps[0].voice), "clips": [_plan_record(p) for p in ps]}
    manifest = {
        "sample_rate": SAMPLE_RATE, "clips_per_speaker": clips_per_speaker,
        "seconds_per_clip": seconds_per_clip, "seed": seed,
        "speakers": dict(sorted(speakers.items())),
    }
    tmp = out / "voices.json.part"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, out / "voices.json")


# ------------------------------------------------------------------ CLI

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.synth_voices", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="output directory")
    ap.add_argument("--clips-per-speaker", type=int, default=20)
    ap.add_argument("--seconds-per-clip", type=float, default=3.0)
    ap.add_argument("--voices", action="append", default=[], metavar="GLOB",
                    help="only speakers matching this glob (repeatable), e.g. 'flite-*'")
    ap.add_argument("--max-voices", type=int)
    ap.add_argument("--include-shared-identities", action="store_true",
                    help="keep voices of a person another engine already covers")
    ap.add_argument("--include-near-duplicates", action="store_true",
                    help="keep espeak-ng variants that sound like an earlier one")
    ap.add_argument("--jobs", type=int, default=None, help="parallel synthesizer processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--list", action="store_true", help="print the voices and exit")
    args = ap.parse_args(argv)

    voices = available_voices(include_shared_identities=args.include_shared_identities,
                              include_near_duplicates=args.include_near_duplicates)
    if args.list:
        for v in voices:
            print(f"{v.speaker:40s} {v.engine:10s} {v.voice:32s} identity={v.identity}")
        print(f"{len(voices)} voices")
        return 0
    if args.out is None:
        ap.error("--out is required")
    stats = CorpusStats()
    corpus = synthesize_corpus(args.out, args.clips_per_speaker, args.seconds_per_clip,
                               voices=voices, patterns=args.voices, max_voices=args.max_voices,
                               seed=args.seed, jobs=args.jobs, stats=stats,
                               log=lambda m: print(m, file=sys.stderr))
    engines = {}
    for s in corpus:
        e = s.split("-", 1)[0]
        engines[e] = engines.get(e, 0) + 1
    print(f"speakers: {stats.speakers} ({', '.join(f'{k} {v}' for k, v in sorted(engines.items()))})")
    print(f"clips: {stats.clips} ({stats.reused} reused), audio: {stats.audio_seconds:.1f} s "
          f"(mean {stats.audio_seconds / max(stats.clips, 1):.2f} s/clip)")
    print(f"wall time: {stats.wall_seconds:.1f} s with {args.jobs or os.cpu_count()} jobs; "
          "synthesizer CPU-side seconds by engine: "
          + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stats.per_engine_seconds.items())))
    if stats.failed_voices:
        print(f"failed voices: {len(stats.failed_voices)}: {', '.join(sorted(stats.failed_voices))}")
    print(f"wrote {args.out / 'voices.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
