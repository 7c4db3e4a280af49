"""Conversations with a known reference, built from single-speaker recordings.

Two sources of voices:

- **fsdd**: the Free Spoken Digit Dataset (real people, 8 kHz, resampled to
  16 kHz): a turn is a run of spoken digits of one speaker. Indices 0-4 of
  every digit (the dataset's test split) are kept for enrollment, 5-49 make
  the conversations.
- **synth**: the voices of ``eval.synth_voices`` (flite's recorded humans
  and espeak-ng variants, 16 kHz): a turn is a run of phrases. Clips 0-3 of
  every voice are kept for enrollment, the others make the conversations.

Every clip is cut into *units* (stretches of speech between pauses of
0.3 s or more, found by an energy detector, ``librosa.effects.split`` at
35 dB below the clip's peak), scaled to a common speech level, and placed
on a timeline: turns of 1-8 s made of consecutive units of one speaker with
0.05-0.25 s pauses; between turns either silence (0.2-1.5 s, sometimes 2-4 s)
or, with probability ``overlap_prob``, an overlap of 0.3-1.5 s where the
next speaker starts before the current one stops. The reference turns are
the units (merged when 0.3 s or less apart). Faint white noise (-60 dBFS,
within the band of the source's recordings: up to 4 kHz for FSDD) is added so
there is no digital silence. Everything is deterministic given the
``numpy.random.Generator``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from voiceprint.audio.resample import resample
from voiceprint.scoring.der import Turn

SAMPLE_RATE = 16_000
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
FSDD_ENROLL_INDICES = range(0, 5)
SYNTH_ENROLL_CLIPS = 4
SPEECH_RMS_DBFS = -22.0
NOISE_DBFS = -60.0


@dataclass
class Source:
    """Voices of one kind: per speaker, units of speech for conversations and clips to enroll."""

    name: str
    units: dict[str, list[np.ndarray]]
    enrollment: dict[str, list[np.ndarray]]
    #: sample rate (Hz) of the original recordings: the noise floor is made in their band
    native_rate: int = SAMPLE_RATE

    @property
    def speakers(self) -> list[str]:
        return sorted(self.units)


@dataclass
class Conversation:
    """A mixed recording (16 kHz) and its reference turns ``(start, end, speaker)`` in seconds."""

    waveform: np.ndarray
    reference: list[Turn]
    speakers: list[str]
    overlap_seconds: float = 0.0
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.waveform) / SAMPLE_RATE


def _level(x: np.ndarray, dbfs: float = SPEECH_RMS_DBFS) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) or 1e-9
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def speech_units(x: np.ndarray, min_pause: float = 0.3, top_db: float = 35.0,
                 min_unit: float = 0.12) -> list[np.ndarray]:
    """Stretches of speech of a clean clip, split at pauses of ``min_pause`` s or longer."""
    import librosa

    spans = librosa.effects.split(x, top_db=top_db, frame_length=512, hop_length=128)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] <= min_pause * SAMPLE_RATE:
            merged[-1][1] = b
        else:
            merged.append([int(a), int(b)])
    return [x[a:b] for a, b in merged if b - a >= min_unit * SAMPLE_RATE]


def _read16k(path: Path) -> np.ndarray:
    x, rate = sf.read(str(path), dtype="float32", always_2d=False)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return resample(x, rate, SAMPLE_RATE)


def fsdd_source(root: Path, speakers: Sequence[str] | None = None) -> Source:
    """FSDD recordings folder (``{digit}_{speaker}_{index}.wav``) -> Source."""
    units: dict[str, list[np.ndarray]] = {}
    enroll: dict[str, list[np.ndarray]] = {}
    for p in sorted(Path(root).glob("*.wav")):
        m = FSDD_NAME.match(p.stem)
        if not m or (speakers and m.group(2) not in speakers):
            continue
        spk, idx = m.group(2), int(m.group(3))
        x = _read16k(p)
        if idx in FSDD_ENROLL_INDICES:
            enroll.setdefault(spk, []).append(x)
        else:
            whole = speech_units(x, min_pause=10.0)  # one digit = one unit, trimmed
            units.setdefault(spk, []).extend(_level(u) for u in whole)
    if not units:
        raise ValueError(f"no FSDD recordings under {root}")
    return Source("fsdd", units, enroll, native_rate=8_000)


def synth_source(corpus: Path, speakers: Sequence[str] | None = None) -> Source:
    """``eval.synth_voices`` output folder (``<speaker>/<nn>.wav``) -> Source."""
    units: dict[str, list[np.ndarray]] = {}
    enroll: dict[str, list[np.ndarray]] = {}
    for folder in sorted(p for p in Path(corpus).iterdir() if p.is_dir()):
        if speakers and folder.name not in speakers:
            continue
        clips = sorted(folder.glob("*.wav"))
        if len(clips) <= SYNTH_ENROLL_CLIPS:
            continue
        enroll[folder.name] = [_read16k(p) for p in clips[:SYNTH_ENROLL_CLIPS]]
        units[folder.name] = [_level(u) for p in clips[SYNTH_ENROLL_CLIPS:]
                              for u in speech_units(_read16k(p))]
    if not units:
        raise ValueError(f"no synthesized voices under {corpus}")
    return Source("synth", units, enroll)


def enrollment_utterances(source: Source, speaker: str, n: int = 3) -> list[np.ndarray]:
    """``n`` enrollment utterances of ``speaker``: its enrollment clips joined into n groups
    with 0.1 s pauses, on the same noise floor as the conversations (same channel)."""
    clips = source.enrollment[speaker]
    groups = [clips[i::n] for i in range(min(n, len(clips)))]
    gap = np.zeros(int(0.1 * SAMPLE_RATE), np.float32)
    rng = np.random.default_rng([7, *map(ord, speaker)])
    out = []
    for g in groups:
        x = np.concatenate([y for c in g for y in (c, gap)])
        out.append(x + _noise(len(x), source.native_rate, rng))
    return out


@dataclass(frozen=True)
class Plan:
    """How a conversation is laid out (seconds)."""

    minutes: float = 1.0
    turn: tuple[float, float] = (1.0, 8.0)
    pause: tuple[float, float] = (0.05, 0.25)
    gap: tuple[float, float] = (0.2, 1.5)
    long_gap_prob: float = 0.1
    long_gap: tuple[float, float] = (2.0, 4.0)
    overlap_prob: float = 0.0
    overlap: tuple[float, float] = (0.3, 1.5)


def build_conversation(source: Source, speakers: Sequence[str], plan: Plan,
                       rng: np.random.Generator) -> Conversation:
    """Lay turns of ``speakers`` on a timeline until ``plan.minutes`` are filled (see module doc)."""
    gains = {s: float(10 ** (rng.uniform(-4, 4) / 20)) for s in speakers}
    cursor = {s: int(rng.integers(len(source.units[s]))) for s in speakers}
    placed: list[tuple[float, np.ndarray, str]] = []
    t, prev, overlap_total = 0.3, None, 0.0
    while t < plan.minutes * 60:
        spk = speakers[int(rng.integers(len(speakers)))] if prev is None else \
            [s for s in speakers if s != prev][int(rng.integers(len(speakers) - 1))]
        target = rng.uniform(*plan.turn)
        start, length = t, 0.0
        while True:
            pool = source.units[spk]
            unit = pool[cursor[spk] % len(pool)] * gains[spk]
            cursor[spk] += 1
            if length > 0 and length + len(unit) / SAMPLE_RATE > plan.turn[1]:
                break
            placed.append((start + length, unit, spk))
            length += len(unit) / SAMPLE_RATE
            if length >= target:
                break
            length += rng.uniform(*plan.pause)
        end = start + length
        if rng.random() < plan.overlap_prob:
            ov = min(rng.uniform(*plan.overlap), 0.5 * length)
            t = end - ov
            overlap_total += ov
        elif rng.random() < plan.long_gap_prob:
            t = end + rng.uniform(*plan.long_gap)
        else:
            t = end + rng.uniform(*plan.gap)
        prev = spk
    total = max(s + len(u) / SAMPLE_RATE for s, u, _ in placed) + 0.5
    wave = _noise(int(total * SAMPLE_RATE), source.native_rate, rng)
    turns: list[Turn] = []
    for s, u, spk in placed:
        a = int(round(s * SAMPLE_RATE))
        wave[a:a + len(u)] += u
        turns.append((a / SAMPLE_RATE, (a + len(u)) / SAMPLE_RATE, spk))
    peak = float(np.abs(wave).max())
    if peak > 0.99:
        wave *= 0.99 / peak
    return Conversation(wave, merge_close(turns, 0.3), list(speakers), round(overlap_total, 3))


def _noise(n: int, native_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples (16 kHz) of white noise at :data:`NOISE_DBFS` within the source's band.

    Noise above the band of 8 kHz recordings (4-8 kHz) would be a channel
    their enrollment clips never had: it lowered CAM++ scores of the same
    person from about 0.85 to 0.45 in a test.
    """
    white = rng.standard_normal(int(n * native_rate / SAMPLE_RATE) + 1).astype(np.float32)
    if native_rate != SAMPLE_RATE:
        white = resample(white, native_rate, SAMPLE_RATE)
    out = np.zeros(n, np.float32)
    out[:min(n, len(white))] = white[:n]
    return out * np.float32(10 ** (NOISE_DBFS / 20))


def merge_close(turns: Sequence[Turn], max_gap: float) -> list[Turn]:
    """Merge each speaker's turns that are ``max_gap`` seconds or less apart."""
    out: list[Turn] = []
    for spk in sorted({t[2] for t in turns}):
        spans = sorted((a, b) for a, b, s in turns if s == spk)
        cur = list(spans[0])
        for a, b in spans[1:]:
            if a - cur[1] <= max_gap:
                cur[1] = max(cur[1], b)
            else:
                out.append((cur[0], cur[1], spk))
                cur = [a, b]
        out.append((cur[0], cur[1], spk))
    return sorted(out)


def to_rttm(turns: Sequence[Turn], file_id: str) -> str:
    """NIST RTTM lines: ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``."""
    return "".join(f"SPEAKER {file_id} 1 {a:.3f} {b - a:.3f} <NA> <NA> {s} <NA> <NA>\n"
                   for a, b, s in turns)
