"""Turning uploaded bytes into checked waveforms at a model's sample rate."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from voiceprint.audio import (AudioLimits, DecodedAudio, QualityReport, QualityThresholds,
                              assess_clip, decode_bytes, resample)
from voiceprint.config import Config
from voiceprint.errors import AudioError


@dataclass(frozen=True)
class Upload:
    """One uploaded file: raw bytes and the client's file name (display only)."""

    data: bytes
    filename: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class CheckedClip:
    upload: Upload
    audio: DecodedAudio
    quality: QualityReport

    def waveform(self, sample_rate: int) -> np.ndarray:
        """Mono float32 samples resampled to ``sample_rate`` Hz."""
        return resample(self.audio.samples, self.audio.sample_rate, sample_rate)


def limits(config: Config) -> AudioLimits:
    return AudioLimits(max_bytes=config.MAX_UPLOAD_BYTES, max_seconds=config.MAX_CLIP_SECONDS)


def enrollment_thresholds(config: Config) -> QualityThresholds:
    return QualityThresholds(min_speech_seconds=config.MIN_CLIP_SPEECH_SECONDS,
                             max_clipped_ratio=config.MAX_CLIPPED_RATIO,
                             silence_dbfs=config.SILENCE_DBFS)


def check_clip(upload: Upload, config: Config, thresholds: QualityThresholds) -> CheckedClip:
    """Decode and assess; raises :class:`AudioError` when the bytes are not usable audio."""
    audio = decode_bytes(upload.data, limits=limits(config), filename=upload.filename)
    return CheckedClip(upload, audio, assess_clip(audio, thresholds))


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
