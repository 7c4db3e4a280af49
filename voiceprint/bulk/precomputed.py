"""An encoder that answers with vectors the workers already computed.

The driver registers it in its runtime under the workers' encoder name
(``rt.models.put``). The services then run unchanged - they decode, check
and resample each clip exactly as for an HTTP request and call
``embed_batch``; this encoder looks each waveform up by
:func:`~voiceprint.bulk.worker.waveform_digest` and returns the worker's
vector. The lookup is by the samples themselves, so a vector can only go to
the clip it was computed from. A waveform nobody computed (a worker judged a
clip unusable that the service accepts, e.g. a library version differing
between nodes) is embedded here by the real encoder, loaded on first need:
slower, never wrong. :attr:`misses` counts those.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from voiceprint.bulk.worker import EncoderInfo, waveform_digest
from voiceprint.encoders.base import Encoder


class PrecomputedEncoder(Encoder):
    def __init__(self, info: EncoderInfo, fallback: Callable[[], Encoder]) -> None:
        self.name = info.name
        self.dim = info.dim
        self.sample_rate = info.sample_rate
        self.kind = info.kind
        self._fallback = fallback
        self._real: Encoder | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def add(self, digest: str, vector: np.ndarray) -> None:
        """Make ``vector`` the answer for the waveform whose digest is ``digest``."""
        vec = np.asarray(vector, dtype=np.float32)
        if vec.shape != (self.dim,):
            raise ValueError(f"a {self.name} vector has {self.dim} values, got {vec.shape}")
        with self._lock:
            self._vectors[digest] = vec

    def clear(self) -> None:
        """Forget the registered vectors (after the batch they were for is written)."""
        with self._lock:
            self._vectors.clear()

    def __len__(self) -> int:
        return len(self._vectors)

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, wave in enumerate(waveforms):
                vec = self._vectors.get(waveform_digest(wave))
                if vec is None:
                    missing.append(i)
                else:
                    out[i] = vec
            self.hits += len(waveforms) - len(missing)
            self.misses += len(missing)
        if missing:
            if self._real is None:
                self._real = self._fallback()
            out[missing] = self._real.embed_batch([waveforms[i] for i in missing])
        return out


@contextlib.contextmanager
def registered(models: Any, encoder: PrecomputedEncoder) -> Iterator[PrecomputedEncoder]:
    """``encoder`` in the runtime's model pool for the duration; the encoder that was loaded
    under that name before (if any) is put back afterwards."""
    loaded = models.status().get(encoder.name, {}).get("loaded")
    previous = models.get(encoder.name) if loaded else None
    models.put(encoder)
    try:
        yield encoder
    finally:
        encoder.clear()
        if previous is not None:
            models.put(previous)
