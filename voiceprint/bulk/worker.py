"""What a worker does: load the encoder once, then check and embed batches of files.

The same :class:`ClipEmbedder` runs in-process (engine ``local``) and inside
each Ray actor (engine ``ray``). Its checks are the services' own:

* speakers: :func:`voiceprint.services.intake.check_clip` with the
  enrollment thresholds (decode, limits, speech, clipping); a clip that fails
  is not embedded;
* sounds: :func:`voiceprint.audio.decode_bytes` with the upload limits and
  the silence test of :class:`~voiceprint.services.sounds.SoundService`.

These checks only spare the workers clips the service would refuse: the
driver's service call judges every clip again and is what the report says.
A result carries the :func:`waveform_digest` of the exact samples the
encoder saw, so the driver's service, which decodes the same bytes with the
same code, finds the vector (:mod:`voiceprint.bulk.precomputed`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from voiceprint.audio import decode_bytes, resample
from voiceprint.config import Config
from voiceprint.encoders.base import Encoder
from voiceprint.encoders.registry import load_encoder
from voiceprint.errors import EncoderUnavailable, VoiceprintError
from voiceprint.services.intake import Upload, check_clip, enrollment_thresholds, limits
from voiceprint.services.sounds.formats import SILENT_PEAK_DBFS, peak_dbfs

log = logging.getLogger(__name__)

#: clips resampled and embedded in one encoder call (bounds memory for long clips)
EMBED_CHUNK = 16
KINDS = ("speaker", "sound")


def waveform_digest(waveform: np.ndarray) -> str:
    """Identity of the exact float32 samples an encoder is given (BLAKE2b, 128 bits)."""
    data = np.ascontiguousarray(waveform, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest() + f":{data.size}"


@dataclass(frozen=True)
class EncoderSpec:
    """How a worker loads its encoder: registry ``name``, weights folder, threads.

    Picklable, so it travels to Ray actors. Tests subclass it to load a
    test-only encoder inside the actor.
    """

    name: str
    model_dir: str | None = None
    num_threads: int | None = None

    def load(self) -> Encoder:
        """The encoder; raises :class:`EncoderUnavailable` (with advice) when it cannot load."""
        return load_encoder(self.name, model_dir=self.model_dir, num_threads=self.num_threads)

    @classmethod
    def from_config(cls, config: Config, name: str,
                    num_threads: int | None = None) -> "EncoderSpec":
        dirs = {"ecapa_tdnn": config.ECAPA_MODEL_DIR, "panns_cnn14": config.PANNS_MODEL_DIR}
        threads = num_threads if num_threads is not None else (config.NUM_THREADS or None)
        return cls(name, dirs.get(name) or None, threads)


@dataclass(frozen=True)
class EncoderInfo:
    """What the workers' encoder is: registry name, vector size, sample rate (Hz), kind."""

    name: str
    dim: int
    sample_rate: int
    kind: str


@dataclass(frozen=True)
class EmbedRequest:
    """One file for a worker: the driver's ``key``, its bytes and its name (messages only)."""

    key: int
    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class EmbedResult:
    """A worker's answer for one file.

    ``vector`` (float32, L2-normalised) and ``digest`` when embedded; else
    ``reason``/``message`` say why not (the service's own words for audio
    problems, ``worker_crashed`` when the file killed its worker twice,
    ``embedding_failed`` for an encoder error). ``duration_s`` is the decoded
    length in seconds, when the file decoded.
    """

    key: int
    vector: np.ndarray | None = None
    digest: str | None = None
    duration_s: float | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def embedded(self) -> bool:
        return self.vector is not None


class ClipEmbedder:
    """Loads the encoder once; :meth:`embed` checks and embeds a batch of files.

    Never raises for a file: each gets an :class:`EmbedResult`. A load failure
    is kept and reported by :meth:`ready` (so a Ray actor can say why it has
    no encoder instead of dying).
    """

    def __init__(self, spec: EncoderSpec, config: Config, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.config = config
        self.kind = kind
        self.encoder: Encoder | None = None
        self.error: str | None = None
        #: files handled and this process's CPU seconds spent on them (all threads)
        self.files = 0
        self.cpu_s = 0.0
        try:
            self.encoder = spec.load()
        except VoiceprintError as exc:
            self.error = exc.message
        except Exception as exc:  # a broken install on a worker node: say what, not die
            log.exception("loading encoder %s failed", spec.name)
            self.error = f"loading encoder {spec.name!r} failed: {type(exc).__name__}: {exc}"

    def ready(self) -> dict[str, object]:
        """The encoder's :class:`EncoderInfo` fields and the worker's pid, or ``error``."""
        if self.encoder is None:
            return {"error": self.error or "no encoder", "pid": os.getpid()}
        e = self.encoder
        return {"name": e.name, "dim": int(e.dim), "sample_rate": int(e.sample_rate),
                "kind": e.kind, "pid": os.getpid()}

    def _waveform(self, req: EmbedRequest, sample_rate: int) -> tuple[np.ndarray, float]:
        """Samples at ``sample_rate`` as the service would embed them; AudioError otherwise."""
        upload = Upload(req.data, req.filename)
        if self.kind == "speaker":
            clip = check_clip(upload, self.config, enrollment_thresholds(self.config))
            if not clip.quality.ok:
                first = clip.quality.reasons[0]
                raise VoiceprintError(first["message"], reason=first["reason"], status=422)
            return clip.waveform(sample_rate), clip.audio.duration_s
        audio = decode_bytes(upload.data, limits=limits(self.config), filename=upload.filename)
        if peak_dbfs(audio.samples) < SILENT_PEAK_DBFS:
            raise VoiceprintError("the file is silent", reason="silent", status=422)
        return resample(audio.samples, audio.sample_rate, sample_rate), audio.duration_s

    def stats(self) -> dict[str, float]:
        """Files handled and CPU seconds of this process (meaningful in a worker process)."""
        return {"files": self.files, "cpu_s": round(self.cpu_s, 3), "pid": os.getpid()}

    def embed(self, requests: Sequence[EmbedRequest]) -> list[EmbedResult]:
        """Results in the order of ``requests``."""
        if self.encoder is None:
            raise EncoderUnavailable(self.error or "no encoder")
        start = time.process_time()
        try:
            return self._embed(requests)
        finally:
            self.files += len(requests)
            self.cpu_s += time.process_time() - start

    def _embed(self, requests: Sequence[EmbedRequest]) -> list[EmbedResult]:
        enc = self.encoder
        assert enc is not None
        out: dict[int, EmbedResult] = {}
        todo: list[tuple[EmbedRequest, np.ndarray, float]] = []
        for req in requests:
            try:
                wave, seconds = self._waveform(req, enc.sample_rate)
            except VoiceprintError as exc:
                out[req.key] = EmbedResult(req.key, reason=exc.reason, message=exc.message,
                                           duration_s=exc.details.get("duration_s"))
                continue
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not lose the batch
                out[req.key] = EmbedResult(req.key, reason="unreadable",
                                           message=f"cannot decode: {type(exc).__name__}")
                continue
            todo.append((req, wave, seconds))
        for start in range(0, len(todo), EMBED_CHUNK):
            chunk = todo[start:start + EMBED_CHUNK]
            for (req, wave, seconds), vec in zip(chunk, self._vectors([w for _, w, _ in chunk])):
                if vec is None:
                    out[req.key] = EmbedResult(req.key, duration_s=seconds,
                                               reason="embedding_failed",
                                               message="the encoder failed on this clip")
                else:
                    out[req.key] = EmbedResult(req.key, vec, waveform_digest(wave), seconds)
        return [out[r.key] for r in requests]

    def _vectors(self, waves: list[np.ndarray]) -> list[np.ndarray | None]:
        """Embed ``waves`` together; if the batch fails, one by one (None: that clip failed)."""
        assert self.encoder is not None
        try:
            return list(_finite_rows(self.encoder.embed_batch(waves), len(waves)))
        except Exception:  # noqa: BLE001 - isolate the clip the encoder cannot take
            if len(waves) == 1:
                log.exception("encoder %s failed on a clip", self.encoder.name)
                return [None]
        return [self._vectors([w])[0] for w in waves]


def _finite_rows(vectors: np.ndarray, n: int) -> list[np.ndarray | None]:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.shape[0] != n:
        raise ValueError(f"encoder returned {arr.shape[0]} rows for {n} clips")
    return [row if np.isfinite(row).all() else None for row in arr]
