"""Turning uploaded bytes into checked waveforms at a model's sample rate.

Limits come from :class:`~voiceprint.config.Config` and are checked in order
of cost: file name and size, then each file's header (rate, channels,
duration, samples: nothing decoded yet), then the request's total audio,
and only then the samples.
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from voiceprint.audio import (AudioLimits, DecodedAudio, QualityReport, QualityThresholds,
                              assess_clip, decode_bytes, probe_bytes, resample)
from voiceprint.config import Config
from voiceprint.errors import AudioError, VoiceprintError
from voiceprint.timing import stage


def check_filename(name: str | None) -> str | None:
    """A client's file name for display, or a 422 when it holds control characters."""
    if not name:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name):
        raise VoiceprintError("the file name contains control characters; rename the file",
                              reason="bad_filename", status=422)
    return name[-255:]


@dataclass(frozen=True)
class Upload:
    """One uploaded file: raw bytes and the client's file name (display only)."""

    data: bytes
    filename: str | None = None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", check_filename(self.filename))
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())


@dataclass
class CheckedClip:
    upload: Upload
    audio: DecodedAudio
    quality: QualityReport

    def waveform(self, sample_rate: int) -> np.ndarray:
        """Mono float32 samples resampled to ``sample_rate`` Hz."""
        with stage("resample"):
            return resample(self.audio.samples, self.audio.sample_rate, sample_rate)


def limits(config: Config) -> AudioLimits:
    return AudioLimits(max_bytes=config.MAX_UPLOAD_BYTES, max_seconds=config.MAX_CLIP_SECONDS,
                       max_channels=config.MAX_CHANNELS, max_samples=config.MAX_DECODED_SAMPLES)


def check_request_audio(uploads: Sequence[Upload], config: Config) -> float:
    """Sum the declared durations of a request's files (headers only); 413 beyond
    ``MAX_REQUEST_AUDIO_SECONDS``. Unreadable files are left to the per-file checks."""
    total = 0.0
    for up in uploads:
        try:
            total += probe_bytes(up.data, limits=limits(config), filename=up.filename).duration_s
        except AudioError:
            continue
    if total > config.MAX_REQUEST_AUDIO_SECONDS:
        raise VoiceprintError(
            f"the files of this request hold {total:.0f} s of audio together; the limit is "
            f"{config.MAX_REQUEST_AUDIO_SECONDS:.0f} s per request. Send fewer or shorter files.",
            reason="too_much_audio", status=413,
            details={"seconds": round(total, 1), "max_seconds": config.MAX_REQUEST_AUDIO_SECONDS})
    return total


def enrollment_thresholds(config: Config) -> QualityThresholds:
    return QualityThresholds(min_speech_seconds=config.MIN_CLIP_SPEECH_SECONDS,
                             max_clipped_ratio=config.MAX_CLIPPED_RATIO,
                             silence_dbfs=config.SILENCE_DBFS)


def check_clip(upload: Upload, config: Config, thresholds: QualityThresholds) -> CheckedClip:
    """Decode and assess; raises :class:`AudioError` when the bytes are not usable audio."""
    with stage("decode"):
        audio = decode_bytes(upload.data, limits=limits(config), filename=upload.filename)
    with stage("vad"):
        quality = assess_clip(audio, thresholds)
    return CheckedClip(upload, audio, quality)


def check_query(upload: Upload, config: Config) -> CheckedClip:
    """A probe for identify/verify: must decode and hold enough speech (AudioError, 422)."""
    thresholds = QualityThresholds(min_speech_seconds=config.MIN_QUERY_SPEECH_SECONDS,
                                   max_clipped_ratio=1.0, silence_dbfs=config.SILENCE_DBFS)
    clip = check_clip(upload, config, thresholds)
    if not clip.quality.ok:
        first = clip.quality.reasons[0]
        raise AudioError(first["message"], reason=first["reason"],
                         details={"quality": clip.quality.to_dict()})
    return clip
