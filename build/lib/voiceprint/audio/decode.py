"""Turn uploaded bytes into mono float32 samples, refusing bad input early.

Decoding uses libsndfile (through :mod:`soundfile`): WAV/RF64/W64 with 8-32 bit
integer or float samples, FLAC, OGG/Vorbis (and Opus where libsndfile has it),
AIFF, CAF, AU and, with libsndfile >= 1.1, MP3.

The order of checks is chosen so that expensive work happens last:

1. byte size (``too_large``, ``empty``) - before libsndfile sees the data;
2. header only (``unreadable``, ``bad_sample_rate``, ``too_many_channels``,
   ``empty``, ``too_long``, ``too_short``, ``too_much_audio``) - libsndfile
   parses the header without reading samples, so a two-hour file, or 5 minutes
   of 8-channel 192 kHz audio (frames x channels over the decoding budget), is
   refused in microseconds;
3. samples, read block by block and down-mixed as they arrive so multichannel
   input never sits in memory at full width; reading stops as soon as the
   duration limit is passed (compressed formats may only estimate their length
   in the header), then ``non_finite`` is checked.

Every refusal is a :class:`voiceprint.errors.AudioError` whose ``reason`` is a
stable code and whose ``details`` hold the measured values.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceprint.errors import AudioError

MIN_SAMPLE_RATE = 8_000
"""Lowest accepted sample rate in Hz (telephone band)."""
MAX_SAMPLE_RATE = 192_000
"""Highest accepted sample rate in Hz."""
_BLOCK_FRAMES = 65_536
"""Frames read per block while decoding (bounds peak memory for wide files)."""


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded audio.

    ``samples`` is 1-D float32 mono in [-1, 1] (multichannel sources are
    averaged); ``sample_rate`` in Hz; ``channels`` is the channel count of the
    source; ``format``/``subtype`` are libsndfile's names, e.g. ``"WAV"`` /
    ``"PCM_16"``.
    """

    samples: np.ndarray
    sample_rate: int
    channels: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class AudioLimits:
    """What an upload may be: size in bytes, duration in seconds."""

    max_bytes: int = 50 * 2**20
    max_seconds: float = 600.0
    min_seconds: float = 0.0
    #: channels a file may declare
    max_channels: int = 8
    #: frames x channels a file may declare (decoding work and memory budget)
    max_samples: int = 48_000 * 2 * 600


def supported_formats() -> list[str]:
    """Container formats this libsndfile build can read (e.g. ``["WAV", "FLAC", ...]``)."""
    return sorted(sf.available_formats())


def _formats_hint() -> str:
    common = [f for f in ("WAV", "FLAC", "OGG", "MP3", "AIFF") if f in sf.available_formats()]
    names = ", ".join("OGG/Vorbis" if f == "OGG" else f for f in common)
    return f"upload {names} (or another format libsndfile {sf.__libsndfile_version__} reads)"


def _label(filename: str | None) -> str:
    return f"'{filename}'" if filename else "the upload"


def decode_bytes(data: bytes, *, limits: AudioLimits = AudioLimits(),
                 filename: str | None = None) -> DecodedAudio:
    """Decode an audio file held in memory.

    ``filename`` is only used in error messages. Raises :class:`AudioError`
    with reason ``empty``, ``too_large``, ``unreadable``, ``bad_sample_rate``,
    ``too_long``, ``too_short`` or ``non_finite``.
    """
    what = _label(filename)
    _check_size(len(data), limits, what)

    handle = _open(data, what)

    with handle:
        _check_header(handle, limits, what)
        samples = _read_mono(handle, what, int(limits.max_seconds * handle.samplerate) + 1)
        sample_rate = int(handle.samplerate)
        channels = int(handle.channels)
        fmt, subtype = str(handle.format), str(handle.subtype)

    _check_duration(len(samples), sample_rate, limits, what)
    return DecodedAudio(samples=samples, sample_rate=sample_rate, channels=channels,
                        format=fmt, subtype=subtype)


def _open(data: bytes, what: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        # libsndfile's text names the Python file object: keep it out of the answer
        raise AudioError(
            f"{what} is not audio this service can read (unknown or damaged format); "
            f"{_formats_hint()}.", reason="unreadable",
            details={"bytes": len(data), "supported_formats": supported_formats()}) from exc


@dataclass(frozen=True)
class AudioHeader:
    """What a file's header declares, read without decoding samples."""

    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.sample_rate) if self.sample_rate else 0.0


def probe_bytes(data: bytes, *, limits: AudioLimits = AudioLimits(),
                filename: str | None = None) -> AudioHeader:
    """Read and check only the header (same refusals as :func:`decode_bytes` up to step 2)."""
    what = _label(filename)
    _check_size(len(data), limits, what)
    with _open(data, what) as handle:
        _check_header(handle, limits, what)
        return AudioHeader(int(handle.samplerate), int(handle.channels), int(handle.frames),
                           str(handle.format))


def decode_file(path: str | os.PathLike[str], *,
                limits: AudioLimits = AudioLimits()) -> DecodedAudio:
    """Decode an audio file on disk; the size is checked before the file is read."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioError(f"cannot open '{p}': {exc.strerror or exc}; check the path.",
                         reason="unreadable", details={"path": str(p)}) from exc
    if size > limits.max_bytes:
        raise AudioError(
            f"'{p.name}' is {size / 2**20:.1f} MiB; the limit is "
            f"{limits.max_bytes / 2**20:.1f} MiB. Use a shorter clip or FLAC.",
            reason="too_large", details={"bytes": size, "max_bytes": limits.max_bytes})
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read '{p}': {exc.strerror or exc}.",
                         reason="unreadable", details={"path": str(p)}) from exc
    return decode_bytes(data, limits=limits, filename=p.name)


def _check_size(n_bytes: int, limits: AudioLimits, what: str) -> None:
    if n_bytes == 0:
        raise AudioError(f"{what} is empty (0 bytes); upload a recording.",
                         reason="empty", details={"bytes": 0})
    if n_bytes > limits.max_bytes:
        raise AudioError(
            f"{what} is {n_bytes / 2**20:.1f} MiB; the limit is "
            f"{limits.max_bytes / 2**20:.1f} MiB. Upload a shorter clip or a compressed "
            "format such as FLAC.",
            reason="too_large", details={"bytes": n_bytes, "max_bytes": limits.max_bytes})


def _check_header(handle: sf.SoundFile, limits: AudioLimits, what: str) -> None:
    """Refuse on header facts alone (no samples have been read yet)."""
    rate = int(handle.samplerate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{what} has a sample rate of {rate} Hz; accepted rates are "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz. Re-export it at 16000 Hz or 48000 Hz.",
            reason="bad_sample_rate",
            details={"sample_rate": rate, "min_sample_rate": MIN_SAMPLE_RATE,
                     "max_sample_rate": MAX_SAMPLE_RATE})
    channels = int(handle.channels)
    if channels > limits.max_channels:
        raise AudioError(
            f"{what} has {channels} channels; at most {limits.max_channels} are accepted. "
            "Export it as mono or stereo.", reason="too_many_channels",
            details={"channels": channels, "max_channels": limits.max_channels})
    frames = int(handle.frames)
    if frames <= 0:
        raise AudioError(f"{what} contains no audio frames; upload a recording with sound in it.",
                         reason="empty", details={"frames": max(frames, 0), "sample_rate": rate})
    _check_duration(frames, rate, limits, what)
    if frames * channels > limits.max_samples:
        raise AudioError(
            f"{what} declares {frames * channels / 1e6:.0f} million samples ({channels} channels "
            f"at {rate} Hz for {frames / rate:.0f} s); the limit is "
            f"{limits.max_samples / 1e6:.0f} million. Send mono or stereo at 16-48 kHz, or a "
            "shorter clip.", reason="too_much_audio",
            details={"samples": frames * channels, "max_samples": limits.max_samples})


def _check_duration(frames: int, rate: int, limits: AudioLimits, what: str) -> None:
    if frames <= 0:
        raise AudioError(f"{what} contains no audio frames; upload a recording with sound in it.",
                         reason="empty", details={"frames": 0, "sample_rate": rate})
    seconds = frames / float(rate)
    if seconds > limits.max_seconds:
        raise AudioError(
            f"{what} lasts {seconds:.1f} s; the limit is {limits.max_seconds:.1f} s. "
            "Cut it to a shorter clip.",
            reason="too_long", details={"seconds": seconds, "max_seconds": limits.max_seconds})
    if seconds < limits.min_seconds:
        raise AudioError(
            f"{what} lasts {seconds:.2f} s; at least {limits.min_seconds:.1f} s is required. "
            "Record a longer clip.",
            reason="too_short", details={"seconds": seconds, "min_seconds": limits.min_seconds})


def _read_mono(handle: sf.SoundFile, what: str, max_frames: int) -> np.ndarray:
    """Read all frames as float32, averaging channels block by block; stop once more than
    ``max_frames`` arrived (the duration check then refuses the file).

    Integer PCM is scaled by libsndfile to [-1, 1). Float files may hold values
    beyond full scale; they are clipped to [-1, 1] (what a PCM export would do),
    so the quality check sees them as clipped samples.
    """
    chunks: list[np.ndarray] = []
    total = 0
    try:
        while total <= max_frames:
            block = handle.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            mono = block[:, 0].copy() if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
            chunks.append(mono)
            total += mono.size
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{what} is damaged or truncated; re-export the recording.",
                         reason="unreadable", details={}) from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:
        raise AudioError(
            f"{what} contains {bad} NaN or infinite samples; re-export it as 16-bit PCM "
            "or fix the float data.",
            reason="non_finite", details={"non_finite_samples": bad, "samples": int(samples.size)})
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples.astype(np.float32, copy=False)
