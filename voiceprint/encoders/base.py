"""The one interface every embedding model implements.

An encoder maps mono float32 waveforms (samples in [-1, 1], at the encoder's
own ``sample_rate``) to fixed-size float32 vectors. ``embed_batch`` returns
L2-normalised rows, so the squared L2 distance ``d`` between two embeddings
and their cosine similarity ``c`` (in [-1, 1]) are tied by ``c = 1 - d / 2``.

Model loading (the ``load`` classmethod) is apart from inference
(``embed_batch`` takes arrays), as in speechbrain's ``inference/`` modules.
``load(model_dir=None, num_threads=None, **options)`` takes the fields of
:class:`~voiceprint.encoders.options.EncoderOptions` and raises
:class:`~voiceprint.errors.EncoderUnavailable` (503) with advice when weights
or packages are missing.
"""
from __future__ import annotations

import abc
import time
from typing import Any, Sequence

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation of a 2-D float array (returns float32)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


def length_buckets(lengths: Sequence[int], max_batch: int) -> list[list[int]]:
    """Indices grouped by exactly equal length, in chunks of at most
    ``max_batch``: clips that can share a forward pass without padding."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(int(n), []).append(i)
    return [idx[s:s + max_batch] for idx in groups.values() for s in range(0, len(idx), max_batch)]


class Encoder(abc.ABC):
    """Embedding model: ``name``, ``dim``, ``sample_rate`` (Hz), ``kind``, ``embed_batch``."""

    name: str
    dim: int
    sample_rate: int
    #: what the vectors describe: "speaker" or "sound"
    kind: str = "speaker"
    #: what runs the network, e.g. "onnxruntime", "torch", "dygraph"
    backend: str = "native"
    #: clip lengths (s) that :meth:`warmup` embeds
    warmup_seconds: tuple[float, ...] = (1.0, 5.0)

    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None,
             **options: Any) -> "Encoder":
        """Load the model (see the module docstring). Encoders the registry loads by name
        implement it; ones built in memory (wrappers, test doubles) need not."""
        from voiceprint.errors import EncoderUnavailable
        raise EncoderUnavailable(f"{cls.__name__} has no loader", reason="not_loadable")

    @abc.abstractmethod
    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Embed mono float32 waveforms at ``self.sample_rate``.

        Returns an array of shape ``(len(waveforms), self.dim)``, float32,
        each row L2-normalised.
        """

    def embed(self, waveform: np.ndarray) -> np.ndarray:
        """Embed one waveform; returns shape ``(dim,)``."""
        return self.embed_batch([waveform])[0]

    def warmup(self, rounds: int = 2) -> float:
        """Run inference on dummy clips of :attr:`warmup_seconds` so that the
        first real request finds allocators, kernels and caches ready;
        returns the seconds spent."""
        from voiceprint.encoders.exports import probe_clips

        started = time.perf_counter()
        clips = probe_clips(self.sample_rate, self.warmup_seconds)
        for _ in range(rounds):
            for clip in clips:
                self.embed(clip)
        return time.perf_counter() - started

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "dim": self.dim, "sample_rate": self.sample_rate,
                "kind": self.kind, "backend": self.backend}
