"""Voice activity detection with WebRTC's VAD (``webrtcvad``).

WebRTC's detector works on 16-bit PCM at 8, 16, 32 or 48 kHz in 10, 20 or
30 ms frames and answers speech / not speech per frame from a small Gaussian
mixture model over sub-band energies. ``aggressiveness`` 0-3: higher values
reject more non-speech (and some quiet speech).

Raw per-frame decisions flicker on noise and clicks, so two smoothing steps
follow (both in milliseconds, converted to whole frames):

1. **isolated frames dropped** - runs of speech shorter than ``min_speech_ms``
   (default 90 ms, i.e. three 30 ms frames) are set to non-speech; a syllable
   lasts longer than that, a click or a noise burst usually does not;
2. **hangover** - non-speech gaps shorter than ``hangover_ms`` (default
   150 ms) *between* two speech runs become speech, so stop consonants and
   short pauses inside a phrase do not split it.

``speech_seconds`` counts the smoothed frames; a trailing partial frame is
ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceprint.audio.resample import resample

VAD_RATES = (8_000, 16_000, 32_000, 48_000)
"""Sample rates in Hz that webrtcvad accepts directly; others are resampled to 16 kHz."""
FRAME_MS_CHOICES = (10, 20, 30)
DEFAULT_MIN_SPEECH_MS = 90
DEFAULT_HANGOVER_MS = 150


@dataclass
class SpeechActivity:
    """Result of :func:`detect_speech`.

    ``frames`` is one bool per ``frame_ms`` frame (True = speech, after
    smoothing); ``speech_seconds`` and ``total_seconds`` are in seconds.
    """

    speech_seconds: float
    total_seconds: float
    frames: np.ndarray
    frame_ms: int

    @property
    def speech_ratio(self) -> float:
        """Fraction of the clip's duration that is speech, in [0, 1]."""
        return self.speech_seconds / self.total_seconds if self.total_seconds > 0 else 0.0

    def segments(self) -> list[tuple[float, float]]:
        """Speech regions as ``(start_s, end_s)`` pairs in seconds, in order."""
        return [(a * self.frame_ms / 1000.0, b * self.frame_ms / 1000.0)
                for a, b in _runs(self.frames)]


def detect_speech(samples: np.ndarray, sample_rate: int, *, aggressiveness: int = 2,
                  frame_ms: int = 30, min_speech_ms: int = DEFAULT_MIN_SPEECH_MS,
                  hangover_ms: int = DEFAULT_HANGOVER_MS) -> SpeechActivity:
    """Find speech in mono float samples in [-1, 1] at ``sample_rate`` Hz.

    See the module docstring for the smoothing (``min_speech_ms``, ``hangover_ms``).
    """
    import webrtcvad

    if frame_ms not in FRAME_MS_CHOICES:
        raise ValueError(f"frame_ms must be one of {FRAME_MS_CHOICES}, got {frame_ms}")
    if not 0 <= aggressiveness <= 3:
        raise ValueError(f"aggressiveness must be 0-3, got {aggressiveness}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D mono samples, got shape {x.shape}")
    total = len(x) / float(sample_rate)

    rate = int(sample_rate)
    if rate not in VAD_RATES:
        x = resample(x, rate, 16_000)
        rate = 16_000
    pcm = _to_int16(x)
    step = rate * frame_ms // 1000
    n_frames = len(pcm) // step
    vad = webrtcvad.Vad(aggressiveness)
    raw = np.fromiter(
        (vad.is_speech(pcm[i * step:(i + 1) * step].tobytes(), rate) for i in range(n_frames)),
        dtype=bool, count=n_frames)
    frames = smooth_decisions(raw, frame_ms=frame_ms, min_speech_ms=min_speech_ms,
                              hangover_ms=hangover_ms)
    return SpeechActivity(speech_seconds=float(frames.sum()) * frame_ms / 1000.0,
                          total_seconds=total, frames=frames, frame_ms=frame_ms)


def smooth_decisions(raw: np.ndarray, *, frame_ms: int, min_speech_ms: int = DEFAULT_MIN_SPEECH_MS,
                     hangover_ms: int = DEFAULT_HANGOVER_MS) -> np.ndarray:
    """Drop speech runs shorter than ``min_speech_ms``, then fill inner gaps shorter than ``hangover_ms``."""
    out = np.asarray(raw, dtype=bool).copy()
    min_run = max(1, -(-min_speech_ms // frame_ms))  # ceil
    max_gap = hangover_ms // frame_ms
    for a, b in _runs(out):
        if b - a < min_run:
            out[a:b] = False
    runs = _runs(out)
    for (_, end), (start, _) in zip(runs, runs[1:]):
        if start - end <= max_gap:
            out[end:start] = True
    return out


def trim_to_speech(samples: np.ndarray, sample_rate: int, activity: SpeechActivity | None = None,
                   pad_ms: int = 100) -> np.ndarray:
    """Keep only the speech regions of ``samples``, each widened by ``pad_ms`` on both sides.

    Overlapping padded regions are merged; regions are concatenated in order.
    Returns an empty float32 array when no speech was found (callers decide
    whether that is an error). ``activity`` must come from the same samples.
    """
    x = np.asarray(samples, dtype=np.float32)
    if activity is None:
        activity = detect_speech(x, sample_rate)
    pad = int(round(pad_ms * sample_rate / 1000.0))
    spans: list[list[int]] = []
    for start_s, end_s in activity.segments():
        a = max(0, int(round(start_s * sample_rate)) - pad)
        b = min(len(x), int(round(end_s * sample_rate)) + pad)
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        elif b > a:
            spans.append([a, b])
    if not spans:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([x[a:b] for a, b in spans])


def _to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` index pairs of the True runs in a bool array."""
    m = np.asarray(mask, dtype=np.int8)
    if m.size == 0:
        return []
    edges = np.diff(np.concatenate(([0], m, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))
