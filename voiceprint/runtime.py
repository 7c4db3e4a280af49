"""The service's long-lived clients, built once by the app factory or the CLI.

Hung on ``app.extensions["voiceprint"]``; never module-level globals.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from voiceprint.config import Config
from voiceprint.encoders.base import Encoder
from voiceprint.encoders.options import EncoderOptions
from voiceprint.encoders.registry import SPECS, load_encoder
from voiceprint.errors import EncoderUnavailable, VoiceprintError
from voiceprint.stores.blobs import BlobStore
from voiceprint.stores.records import create_db_engine
from voiceprint.stores.vectors import IndexSpec, VectorStore, is_local_uri

log = logging.getLogger(__name__)


@dataclass
class ModelPool:
    """Loads each encoder once per process (thread-safe) and remembers failures."""

    config: Config
    _models: dict[str, Encoder] = field(default_factory=dict)
    _errors: dict[str, EncoderUnavailable] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def options(self, name: str) -> EncoderOptions:
        """Encoder options from the Config (the model dir by the spec's setting name)."""
        c = self.config
        spec = SPECS.get(name)
        setting = spec.model_dir_setting if spec else None
        return EncoderOptions(
            model_dir=(getattr(c, setting, "") or None) if setting else None,
            num_threads=c.NUM_THREADS or None, cache_dir=c.CACHE_DIR or None, offline=c.OFFLINE,
            runtime=c.ENCODER_RUNTIME, precision=c.ENCODER_PRECISION, ort_spin=c.ORT_SPIN,
            paddlespeech_home=c.PPSPEECH_HOME or None)

    def get(self, name: str) -> Encoder:
        """The loaded encoder ``name``; raises :class:`EncoderUnavailable` (503) with advice."""
        model = self._models.get(name)
        if model is not None:
            return model
        with self._lock:
            if name in self._models:
                return self._models[name]
            try:
                model = load_encoder(name, self.options(name))
            except EncoderUnavailable as exc:
                self._errors[name] = exc
                raise
            self._errors.pop(name, None)
            self._models[name] = model
            return model

    def put(self, model: Encoder) -> None:
        """Register an already built encoder (tests, custom models)."""
        with self._lock:
            self._models[model.name] = model

    def status(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for name in SPECS:
            if name in self._models:
                out[name] = {"loaded": True, **self._models[name].describe()}
            elif name in self._errors:
                out[name] = {"loaded": False, "error": self._errors[name].message}
        return out


@dataclass
class Runtime:
    config: Config
    engine: Engine
    vectors: VectorStore
    blobs: BlobStore
    models: ModelPool
    #: AS-norm cohorts by calibration id (immutable once stored)
    cohorts: dict[int, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> "Runtime":
        if is_local_uri(config.MILVUS_URI):
            Path(config.MILVUS_URI).parent.mkdir(parents=True, exist_ok=True)
        return cls(
            config=config,
            engine=create_db_engine(config.DATABASE_URL),
            vectors=VectorStore(config.MILVUS_URI, token=config.MILVUS_TOKEN or None,
                                index=IndexSpec.named(config.MILVUS_INDEX)),
            blobs=BlobStore(config.AUDIO_DIR),
            models=ModelPool(config),
        )

    def speaker_encoder(self) -> Encoder:
        return self.models.get(self.config.SPEAKER_ENCODER)

    def sound_encoder(self) -> Encoder:
        return self.models.get(self.config.SOUND_ENCODER)

    def collection(self, encoder: str, kind: str) -> str:
        """Milvus collection name, e.g. ``voiceprint_ge2e_utterances`` or
        ``voiceprint_aisfx_sounds_12`` (kind ``sounds_<library id>``)."""
        return f"{self.config.MILVUS_COLLECTION_PREFIX}_{encoder}_{kind}"

    def preload(self) -> None:
        """Load the configured encoders and warm them up now (so the first request is as
        fast as the tenth); a failure is logged, not fatal."""
        for name in (self.config.SPEAKER_ENCODER, self.config.SOUND_ENCODER):
            try:
                model = self.models.get(name)
            except VoiceprintError as exc:
                log.error("encoder %s unavailable: %s", name, exc.message)
                continue
            log.info("encoder %s (%s) warmed up in %.1f s", name, model.backend, model.warmup())
        # the request path too: the database pool and the speaker collections (a first
        # search otherwise pays ~100 ms for the collection load and the first round trips)
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            for kind in ("speakers", "utterances"):
                self.vectors.warm(self.collection(self.config.SPEAKER_ENCODER, kind))
        except Exception:  # the stores may be down at start: /health says so
            log.exception("could not warm up the stores")

    def close(self) -> None:
        self.vectors.close()
        self.engine.dispose()
