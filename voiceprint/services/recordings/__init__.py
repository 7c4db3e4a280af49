"""Diarization of uploaded recordings: jobs, their results and the work itself.

- :mod:`.service` - :class:`RecordingService`: submit, get, list, delete (tenant-scoped);
- :mod:`.jobs` - :class:`RecordingJobs`: the per-process worker pool, heartbeat, crash safety;
- :mod:`.analysis` - :func:`analyse`: diarize, then identify/verify every voice;
- :mod:`.settings` - :class:`RecordingSettings`: limits and knobs from the Config.
"""
from voiceprint.services.recordings.jobs import RecordingJobs
from voiceprint.services.recordings.service import RecordingService
from voiceprint.services.recordings.settings import RecordingSettings

__all__ = ["RecordingJobs", "RecordingService", "RecordingSettings"]
