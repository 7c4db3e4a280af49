"""Configuration from environment variables (``VOICEPRINT_*``).

Embedded defaults keep everything under one data directory
(``VOICEPRINT_DATA_DIR``, default ``./data``): a SQLite database, a Milvus
Lite file and the stored audio. Point at MySQL/MariaDB, PostgreSQL or a
Milvus server by URL alone:

* ``VOICEPRINT_DATABASE_URL=mysql+pymysql://user:pw@host/db``
* ``VOICEPRINT_DATABASE_URL=postgresql+psycopg://user@host/db``
* ``VOICEPRINT_MILVUS_URI=http://milvus:19530``
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


class Config:
    """Read once at app creation; tests pass overrides to ``create_app``.

    Keys are documented in README.md ("Configuration"). Units: seconds,
    bytes, cosine similarity in [-1, 1].
    """

    def __init__(self) -> None:
        data_dir = Path(_env("VOICEPRINT_DATA_DIR", "data")).resolve()
        self.DATA_DIR: str = str(data_dir)
        self.DATABASE_URL: str = _env("VOICEPRINT_DATABASE_URL", f"sqlite:///{data_dir / 'voiceprint.db'}")
        self.MILVUS_URI: str = _env("VOICEPRINT_MILVUS_URI", str(data_dir / "milvus.db"))
        self.MILVUS_TOKEN: str = _env("VOICEPRINT_MILVUS_TOKEN", "")
        #: collection names are ``<prefix>_<encoder>_<kind>``
        self.MILVUS_COLLECTION_PREFIX: str = _env("VOICEPRINT_MILVUS_PREFIX", "voiceprint")
        self.MILVUS_INDEX: str = _env("VOICEPRINT_MILVUS_INDEX", "HNSW")
        self.AUDIO_DIR: str = _env("VOICEPRINT_AUDIO_DIR", str(data_dir / "audio"))
        #: keep enrollment audio (needed to re-embed with a new model)
        self.KEEP_AUDIO: bool = _env_bool("VOICEPRINT_KEEP_AUDIO", True)

        self.SPEAKER_ENCODER: str = _env("VOICEPRINT_SPEAKER_ENCODER", "ecapa_tdnn")
        self.SOUND_ENCODER: str = _env("VOICEPRINT_SOUND_ENCODER", "panns_cnn14")
        self.ECAPA_MODEL_DIR: str = _env("VOICEPRINT_ECAPA_MODEL_DIR", "")
        self.PANNS_MODEL_DIR: str = _env("VOICEPRINT_PANNS_MODEL_DIR", "")
        self.NUM_THREADS: int = _env_int("VOICEPRINT_NUM_THREADS", 0)
        #: load models at start-up (else at first use)
        self.PRELOAD_MODELS: bool = _env_bool("VOICEPRINT_PRELOAD_MODELS", True)

        # audio intake limits
        self.MAX_UPLOAD_BYTES: int = _env_int("VOICEPRINT_MAX_UPLOAD_BYTES", 50 * 2**20)
        self.MAX_CLIP_SECONDS: float = _env_float("VOICEPRINT_MAX_CLIP_SECONDS", 300.0)
        self.MAX_CLIPS_PER_REQUEST: int = _env_int("VOICEPRINT_MAX_CLIPS_PER_REQUEST", 20)
        # enrollment quality gates
        self.MIN_CLIP_SPEECH_SECONDS: float = _env_float("VOICEPRINT_MIN_CLIP_SPEECH_SECONDS", 1.0)
        self.MIN_QUERY_SPEECH_SECONDS: float = _env_float("VOICEPRINT_MIN_QUERY_SPEECH_SECONDS", 0.5)
        self.MAX_CLIPPED_RATIO: float = _env_float("VOICEPRINT_MAX_CLIPPED_RATIO", 0.01)
        self.SILENCE_DBFS: float = _env_float("VOICEPRINT_SILENCE_DBFS", -60.0)
        #: net speech (s) a speaker needs before they count as enrolled
        self.ENROLL_MIN_SPEECH_SECONDS: float = _env_float("VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS", 8.0)

        # decisions (cosine similarity in [-1, 1]) until a calibration exists
        #: overrides the encoder's built-in default (services/decisions.py); None = use it
        threshold = os.environ.get("VOICEPRINT_DEFAULT_THRESHOLD")
        self.DEFAULT_THRESHOLD: float | None = float(threshold) if threshold else None
        self.OPERATING_POINT: str = _env("VOICEPRINT_OPERATING_POINT", "far_1pct")
        self.IDENTIFY_TOP_K: int = _env_int("VOICEPRINT_IDENTIFY_TOP_K", 5)
        #: "asnorm" (default: measured better EER/minDCF and FAR transfer, see
        #: eval/calibration.py; needs a calibration, which holds the cohort; raw
        #: cosine until one exists) or "none" (raw cosine)
        self.SCORE_NORMALIZATION: str = _env("VOICEPRINT_SCORE_NORMALIZATION", "asnorm")
        #: "centroid" (mean voiceprint) or "best_utterance"
        self.SPEAKER_MODEL: str = _env("VOICEPRINT_SPEAKER_MODEL", "centroid")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.isupper()}
