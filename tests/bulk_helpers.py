"""Helpers for the bulk-ingestion tests: a corpus folder and a test-only encoder that kills
its worker process on a marker clip.

:class:`MarkerKillingSpec` travels to the Ray actors (it is a picklable
:class:`~voiceprint.bulk.worker.EncoderSpec`); the actor loads the real ge2e
encoder wrapped in :class:`MarkerKillingEncoder`, which calls ``os._exit``
as soon as a batch holds a waveform that starts with the marker - a
faithful stand-in for a decoder or model that segfaults on one file.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf

from voiceprint.bulk.worker import EncoderSpec
from voiceprint.encoders.base import Encoder

#: the first samples of a marker clip (16 kHz float WAV, so they reach the encoder unchanged)
MARKER_VALUE = 0.123
MARKER_SAMPLES = 160
EXIT_CODE = 17


def is_marked(waveform: np.ndarray) -> bool:
    head = np.asarray(waveform[:MARKER_SAMPLES])
    return head.size == MARKER_SAMPLES and bool(np.allclose(head, MARKER_VALUE, atol=1e-6))


def marked(wav: bytes) -> bytes:
    """``wav`` (16 kHz speech) with the marker in front, as a 32-bit float WAV."""
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    assert rate == 16000, "the marker must reach the encoder without resampling"
    buf = io.BytesIO()
    sf.write(buf, np.concatenate([np.full(MARKER_SAMPLES, MARKER_VALUE, np.float32), x]), rate,
             format="WAV", subtype="FLOAT")
    return buf.getvalue()


class MarkerKillingEncoder(Encoder):
    """``inner``, except that a batch holding a marked waveform kills the process."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.sample_rate, self.kind = inner.sample_rate, inner.kind

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        if any(is_marked(w) for w in waveforms):
            os._exit(EXIT_CODE)
        return self.inner.embed_batch(waveforms)


@dataclass(frozen=True)
class MarkerKillingSpec(EncoderSpec):
    def load(self) -> Encoder:
        return MarkerKillingEncoder(super().load())


def silent_wav(seconds: float = 3.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * rate), np.float32), rate, format="WAV")
    return buf.getvalue()


@dataclass
class Corpus:
    root: Path
    #: relative path -> the outcome a bulk enrollment must report (status, reason or None)
    expected: dict[str, tuple[str, str | None]]


def write_corpus(root: Path, speak: Callable[..., bytes], sentences: Sequence[str]) -> Corpus:
    """Three speakers with good clips and every kind of bad file.

    With MAX_CLIPS_PER_REQUEST=3 and ENROLL_MIN_SPEECH_SECONDS=6: awb's first
    call (a1-a3) enrolls awb, so the other speaker's voice in the next call
    is refused (``voice_mismatch``); slt's folder holds the marker clip (a
    killed worker) and the same recording twice; rms's folder holds a file
    that is not audio, an empty one, a silent one and a text file.
    """
    expected: dict[str, tuple[str, str | None]] = {}

    def put(rel: str, data: bytes, status: str | None = None, reason: str | None = None) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if status is not None:
            expected[rel] = (status, reason)

    awb = [speak(t, "flite:awb") for t in sentences[:4]]
    slt = [speak(t, "flite:slt") for t in sentences[:3]]
    rms = [speak(t, "flite:rms") for t in sentences[:3]]
    for i, clip in enumerate(awb[:3], start=1):
        put(f"awb/a{i}.wav", clip, "enrolled")
    put("awb/a4_impostor.wav", speak(sentences[4], "flite:kal16"), "rejected", "voice_mismatch")
    put("awb/a5.wav", awb[3], "enrolled")
    put("slt/s1.wav", slt[0], "enrolled")
    put("slt/s2.wav", slt[1], "enrolled")
    put("slt/s2_copy.wav", slt[1], "skipped", "duplicate")
    put("slt/s3_marker.wav", marked(slt[2]), "failed", "worker_crashed")
    put("slt/s4.wav", slt[2], "enrolled")
    for i, clip in enumerate(rms, start=1):
        put(f"rms/r{i}.wav", clip, "enrolled")
    put("rms/r4_garbage.wav", os.urandom(3000), "rejected", "unreadable")
    put("rms/r5_empty.wav", b"", "rejected", "empty")
    put("rms/r6_silent.wav", silent_wav(), "rejected", "silent")
    put("rms/notes.txt", b"not audio, not read")
    put("stray.wav", awb[0])  # not in a speaker folder: ignored
    return Corpus(root, expected)
