"""Is a decoded clip good enough to enroll or verify a speaker?

Levels are in dBFS relative to a full-scale amplitude of 1.0: ``rms_dbfs`` of a
full-scale sine is -3.0 dBFS, its ``peak_dbfs`` 0.0 dBFS. Digital silence is
reported as :data:`FLOOR_DBFS` instead of minus infinity so reports stay JSON.

Checks (each failing one adds an entry to ``reasons``):

- ``silent``: RMS below ``silence_dbfs``; a silent clip gets only this reason
  (the VAD is not run, so no ``too_little_speech`` on top);
- ``too_little_speech``: WebRTC VAD speech (see :mod:`voiceprint.audio.vad`)
  shorter than ``min_speech_seconds``;
- ``clipped``: more than ``max_clipped_ratio`` of the samples at |x| >= 0.999.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voiceprint.audio.decode import DecodedAudio
from voiceprint.audio.vad import detect_speech

CLIP_LEVEL = 0.999
"""Absolute sample value at or above which a sample counts as clipped (full scale = 1.0)."""
FLOOR_DBFS = -120.0
"""Level reported for digital silence, in dBFS."""


@dataclass
class QualityThresholds:
    """Limits for :func:`assess_clip`: seconds of speech, fraction of clipped samples, dBFS."""

    min_speech_seconds: float = 1.0
    max_clipped_ratio: float = 0.01
    silence_dbfs: float = -60.0


@dataclass
class QualityReport:
    """Outcome of :func:`assess_clip`. ``ok`` is True when ``reasons`` is empty.

    Each reason is ``{"reason": code, "message": text for the user, ...measured values}``.
    """

    ok: bool
    reasons: list[dict[str, Any]] = field(default_factory=list)
    speech_seconds: float = 0.0
    duration_s: float = 0.0
    rms_dbfs: float = FLOOR_DBFS
    peak_dbfs: float = FLOOR_DBFS
    clipped_ratio: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)

    @property
    def reason_codes(self) -> list[str]:
        """Just the ``reason`` codes, in order."""
        return [r["reason"] for r in self.reasons]


def to_dbfs(amplitude: float) -> float:
    """20*log10(amplitude) in dBFS, floored at :data:`FLOOR_DBFS`."""
    if amplitude <= 0.0 or not np.isfinite(amplitude):
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * float(np.log10(amplitude)))


def _seconds(value: float, limit: float) -> str:
    """``value`` with one decimal, or two when one decimal would print it equal to ``limit``."""
    text = f"{value:.1f}"
    return f"{value:.2f}" if text == f"{limit:.1f}" else text


def assess_clip(audio: DecodedAudio, thresholds: QualityThresholds = QualityThresholds()) -> QualityReport:
    """Measure level, clipping and speech duration of ``audio`` and say what is wrong, if anything."""
    x = np.asarray(audio.samples, dtype=np.float32)
    duration = audio.duration_s
    x64 = x.astype(np.float64)
    rms = float(np.sqrt(np.mean(x64 * x64))) if x.size else 0.0
    peak = float(np.max(np.abs(x64))) if x.size else 0.0
    clipped_ratio = float(np.mean(np.abs(x) >= CLIP_LEVEL)) if x.size else 0.0
    rms_dbfs, peak_dbfs = to_dbfs(rms), to_dbfs(peak)

    reasons: list[dict[str, Any]] = []
    speech = 0.0
    if rms_dbfs < thresholds.silence_dbfs:
        reasons.append({
            "reason": "silent",
            "message": (f"the clip is silent (level {rms_dbfs:.1f} dBFS, below "
                        f"{thresholds.silence_dbfs:.1f} dBFS); check the microphone is "
                        "connected and unmuted, then record again"),
            "rms_dbfs": rms_dbfs, "silence_dbfs": thresholds.silence_dbfs})
    else:
        speech = detect_speech(x, audio.sample_rate).speech_seconds if x.size else 0.0
        if speech < thresholds.min_speech_seconds:
            reasons.append({
                "reason": "too_little_speech",
                "message": (f"record at least {thresholds.min_speech_seconds:.1f} s of speech; "
                            f"this clip has {_seconds(speech, thresholds.min_speech_seconds)} s"),
                "speech_seconds": speech, "min_speech_seconds": thresholds.min_speech_seconds})
    if clipped_ratio > thresholds.max_clipped_ratio:
        reasons.append({
            "reason": "clipped",
            "message": (f"{clipped_ratio:.1%} of the samples are at full scale (limit "
                        f"{thresholds.max_clipped_ratio:.1%}); lower the input gain or move "
                        "away from the microphone and record again"),
            "clipped_ratio": clipped_ratio, "max_clipped_ratio": thresholds.max_clipped_ratio})
    return QualityReport(ok=not reasons, reasons=reasons, speech_seconds=speech,
                         duration_s=duration, rms_dbfs=rms_dbfs, peak_dbfs=peak_dbfs,
                         clipped_ratio=clipped_ratio)
