"""Long recordings decoded block by block to a 16 kHz float32 file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceprint.audio.decode import AudioLimits
from voiceprint.audio.resample import resample
from voiceprint.diarization.longaudio import BLOCK_FRAMES, decode_to_file
from voiceprint.errors import AudioError


def _tone(seconds: float, rate: int) -> np.ndarray:
    return (0.3 * np.sin(np.arange(int(seconds * rate)) / rate * 2 * np.pi * 440)).astype(np.float32)


def test_stereo_8k_flac_becomes_the_same_16k_mono_as_a_whole_file_resample(tmp_path: Path):
    x = _tone(3 * BLOCK_FRAMES / 8000 + 0.7, 8000)  # several blocks and a partial one
    sf.write(tmp_path / "a.flac", np.stack([x, 0.5 * x], axis=1), 8000)
    out = decode_to_file(tmp_path / "a.flac", tmp_path / "a.f32", AudioLimits(max_seconds=3600))
    y = out.open()
    ref = resample(0.75 * x, 8000, 16000)
    assert out.num_samples == len(ref) and out.source_rate == 8000 and out.channels == 2
    # streaming and one-shot resampling agree (edges aside), within FLAC's 16-bit rounding
    assert np.abs(y[2000:-2000] - ref[2000:-2000]).max() < 1e-3
    assert out.duration_s == pytest.approx(len(x) / 8000, abs=1e-3)


def test_refusals_leave_no_output(tmp_path: Path):
    sf.write(tmp_path / "long.wav", _tone(12, 16000), 16000)
    with pytest.raises(AudioError) as err:
        decode_to_file(tmp_path / "long.wav", tmp_path / "o.f32", AudioLimits(max_seconds=10))
    assert err.value.reason == "too_long" and not (tmp_path / "o.f32").exists()
    (tmp_path / "junk.wav").write_bytes(b"RIFF but not really" * 20)
    with pytest.raises(AudioError) as err:
        decode_to_file(tmp_path / "junk.wav", tmp_path / "o.f32", AudioLimits())
    assert err.value.reason == "unreadable"
    bad = _tone(1, 16000)
    bad[100] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as err:
        decode_to_file(tmp_path / "nan.wav", tmp_path / "o.f32", AudioLimits())
    assert err.value.reason == "non_finite" and not (tmp_path / "o.f32").exists()
    sf.write(tmp_path / "wide.wav", np.zeros((1600, 3), np.float32), 16000)
    with pytest.raises(AudioError) as err:
        decode_to_file(tmp_path / "wide.wav", tmp_path / "o.f32", AudioLimits(max_channels=2))
    assert err.value.reason == "too_many_channels"
