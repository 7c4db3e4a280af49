"""Long recordings to a 16 kHz float32 file, block by block (memory stays bounded).

An hour of 48 kHz stereo is 1.4 GB as float32 samples; decoding it whole
(as :func:`voiceprint.audio.decode_bytes` does for short clips) would hold
all of it in memory. Here libsndfile reads blocks of frames, each block is
down-mixed, resampled by a streaming libsoxr resampler (``soxr.ResampleStream``,
"HQ") and appended to a raw float32 file, which the diarizer then reads
through ``np.memmap``: peak memory is a few blocks whatever the length.

The header is checked first (rate, channels, declared duration) with the
same limits and refusals as short clips; a file whose samples run past the
duration limit (compressed formats may under-declare) is refused as soon
as the limit is passed; NaN/Inf samples are refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceprint.audio.decode import (MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioLimits)
from voiceprint.errors import AudioError

TARGET_RATE = 16_000
BLOCK_FRAMES = 65_536


@dataclass(frozen=True)
class LongAudio:
    """A decoded recording: ``path`` holds ``num_samples`` float32 mono samples at 16 kHz."""

    path: Path
    num_samples: int
    source_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / TARGET_RATE

    def open(self) -> np.ndarray:
        """The samples as a read-only memory map (empty array for no samples)."""
        if self.num_samples == 0:
            return np.zeros(0, np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.num_samples,))


def decode_to_file(source: str | os.PathLike[str], target: str | os.PathLike[str],
                   limits: AudioLimits) -> LongAudio:
    """Decode ``source`` (any format libsndfile reads) into ``target`` (raw float32, 16 kHz mono).

    Raises :class:`AudioError` (422/413 reasons as for short clips:
    ``unreadable``, ``bad_sample_rate``, ``too_many_channels``, ``empty``,
    ``too_long``, ``non_finite``). ``target`` is removed on failure.
    """
    import soundfile as sf
    import soxr

    src, out = Path(source), Path(target)
    try:
        handle = sf.SoundFile(str(src))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError("the recording is not audio this service can read (unknown or "
                         "damaged format); upload WAV, FLAC, OGG or MP3", reason="unreadable") from exc
    try:
        with handle, open(out, "wb") as fh:
            rate, channels = int(handle.samplerate), int(handle.channels)
            _check_header(rate, channels, int(handle.frames), limits)
            stream = soxr.ResampleStream(rate, TARGET_RATE, 1, dtype="float32", quality="HQ")
            max_frames = int(limits.max_seconds * rate) + 1
            read = written = 0
            while True:
                block = handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < BLOCK_FRAMES
                read += len(block)
                if read > max_frames:
                    raise AudioError(
                        f"the recording lasts more than {limits.max_seconds:.0f} s; the limit is "
                        f"{limits.max_seconds:.0f} s", reason="too_long",
                        details={"max_seconds": limits.max_seconds})
                mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                if not np.isfinite(mono).all():
                    raise AudioError("the recording contains NaN or infinite samples",
                                     reason="non_finite")
                y = stream.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)
                fh.write(np.asarray(y, dtype=np.float32).tobytes())
                written += len(y)
                if last:
                    break
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    if written == 0:
        out.unlink(missing_ok=True)
        raise AudioError("the recording contains no audio frames", reason="empty")
    return LongAudio(out, written, rate, channels)


def _check_header(rate: int, channels: int, frames: int, limits: AudioLimits) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"the recording has a sample rate of {rate} Hz; accepted rates are "
                         f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz", reason="bad_sample_rate",
                         details={"sample_rate": rate})
    if channels > limits.max_channels:
        raise AudioError(f"the recording has {channels} channels; at most {limits.max_channels} "
                         "are accepted", reason="too_many_channels",
                         details={"channels": channels, "max_channels": limits.max_channels})
    if frames > limits.max_seconds * rate + 1:
        raise AudioError(f"the recording lasts {frames / rate:.0f} s; the limit is "
                         f"{limits.max_seconds:.0f} s", reason="too_long",
                         details={"seconds": round(frames / rate, 1),
                                  "max_seconds": limits.max_seconds})
