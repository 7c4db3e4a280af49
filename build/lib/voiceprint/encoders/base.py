"""The one interface every embedding model implements.

An encoder maps mono float32 waveforms (samples in [-1, 1], at the encoder's
own ``sample_rate``) to fixed-size float32 vectors. ``embed_batch`` returns
L2-normalised rows, so the squared L2 distance ``d`` between two embeddings
and their cosine similarity ``c`` are tied by ``c = 1 - d / 2``.

Model loading happens in the constructor (or a ``load`` classmethod), apart
from inference, as in speechbrain's ``inference/`` modules.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Sequence

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation of a 2-D float array (returns float32)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


class Encoder(abc.ABC):
    """Embedding model: ``name``, ``dim``, ``sample_rate`` (Hz), ``embed_batch``."""

    name: str
    dim: int
    sample_rate: int
    #: what the vectors describe: "speaker" or "sound"
    kind: str = "speaker"

    @abc.abstractmethod
    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Embed mono float32 waveforms at ``self.sample_rate``.

        Returns an array of shape ``(len(waveforms), self.dim)``, float32,
        each row L2-normalised.
        """

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """Embed one waveform; returns shape ``(dim,)``."""
        return self.embed_batch([waveform])[0]

    def embed_file(self, path: str | Path) -> np.ndarray:
        """Decode, down-mix and resample a file, then embed it; shape ``(dim,)``."""
        from voiceprint.audio.decode import decode_file
        from voiceprint.audio.resample import resample

        audio = decode_file(path)
        return self.embed(resample(audio.samples, audio.sample_rate, self.sample_rate))

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "dim": self.dim, "sample_rate": self.sample_rate,
                "kind": self.kind}
