"""Audio intake: decode uploads, resample, find speech, judge clip quality."""
from voiceprint.audio.decode import (AudioHeader, AudioLimits, DecodedAudio, decode_bytes, decode_file,
                                     probe_bytes, supported_formats)
from voiceprint.audio.quality import QualityReport, QualityThresholds, assess_clip
from voiceprint.audio.resample import resample
from voiceprint.audio.vad import SpeechActivity, detect_speech, trim_to_speech

__all__ = [
    "AudioHeader", "AudioLimits", "DecodedAudio", "decode_bytes", "decode_file", "probe_bytes",
    "supported_formats",
    "QualityReport", "QualityThresholds", "assess_clip",
    "resample",
    "SpeechActivity", "detect_speech", "trim_to_speech",
]
