"""Audio intake: decoding, resampling, VAD and clip quality."""
from __future__ import annotations

from eval.datasets import fsdd_dir

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceprint.audio import (AudioLimits, DecodedAudio, QualityThresholds, assess_clip,
                              decode_bytes, decode_file, detect_speech, resample,
                              trim_to_speech)
from voiceprint.audio.vad import smooth_decisions
from voiceprint.errors import AudioError

FSDD_CLIP = fsdd_dir() / "0_george_0.wav"


# ---------------------------------------------------------------- helpers

def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def voiced(seconds: float, sr: int = 16000, amp: float = 0.3) -> np.ndarray:
    """Speech-like signal: 25 harmonics of a wobbling 140 Hz pitch, syllable-rate amplitude modulation."""
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 140 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 26)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (amp * x / np.abs(x).max()).astype(np.float32)


def encode(x: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


def audio(x: np.ndarray, sr: int = 16000) -> DecodedAudio:
    return DecodedAudio(samples=x.astype(np.float32), sample_rate=sr, channels=1,
                        format="WAV", subtype="FLOAT")


# ---------------------------------------------------------------- decoding

@pytest.mark.parametrize("fmt,subtype,tol", [
    ("WAV", "PCM_16", 1 / 2**15),
    ("WAV", "PCM_24", 1 / 2**23),
    ("WAV", "PCM_32", 1 / 2**30),
    ("WAV", "FLOAT", 1e-7),
    ("WAV", "DOUBLE", 1e-7),
    ("FLAC", "PCM_16", 1 / 2**15),
    ("FLAC", "PCM_24", 1 / 2**23),
])
def test_lossless_formats_round_trip(fmt: str, subtype: str, tol: float) -> None:
    x = tone(440, 0.5, 16000)
    out = decode_bytes(encode(x, 16000, fmt, subtype))
    assert out.samples.dtype == np.float32 and out.samples.ndim == 1
    assert (out.sample_rate, out.channels, out.format, out.subtype) == (16000, 1, fmt, subtype)
    assert out.duration_s == pytest.approx(0.5)
    assert np.max(np.abs(out.samples - x)) <= tol * 1.01


def test_ogg_vorbis_decodes_to_same_tone() -> None:
    x = tone(440, 1.0, 44100)
    out = decode_bytes(encode(x, 44100, "OGG", "VORBIS"))
    assert (out.format, out.subtype, out.sample_rate) == ("OGG", "VORBIS", 44100)
    assert out.duration_s == pytest.approx(1.0, abs=0.01)
    assert abs(peak_hz(out.samples, 44100) - 440) < 2
    assert np.max(np.abs(out.samples)) <= 1.0


@pytest.mark.parametrize("channels", [2, 4])
def test_multichannel_is_mean_downmixed(channels: int) -> None:
    rng = np.random.default_rng(channels)
    x = (rng.uniform(-0.5, 0.5, size=(8000, channels))).astype(np.float32)
    out = decode_bytes(encode(x, 16000, "WAV", "FLOAT"))
    assert out.channels == channels
    np.testing.assert_allclose(out.samples, x.mean(axis=1), atol=1e-6)


def test_float_above_full_scale_is_clipped_to_unit_range() -> None:
    x = np.array([0.0, 1.5, -2.0, 0.25] * 2000, dtype=np.float32)
    out = decode_bytes(encode(x, 16000, "WAV", "FLOAT"))
    assert out.samples.max() == 1.0 and out.samples.min() == -1.0
    assert out.samples[3] == pytest.approx(0.25)


def test_decode_file_reads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    sf.write(path, tone(300, 0.3, 8000), 8000, subtype="PCM_16")
    out = decode_file(path)
    assert out.format == "FLAC" and out.sample_rate == 8000 and len(out.samples) == 2400


def reason_of(data: bytes, **kwargs) -> AudioError:
    with pytest.raises(AudioError) as info:
        decode_bytes(data, **kwargs)
    assert info.value.status == 422
    return info.value


def test_empty_bytes() -> None:
    err = reason_of(b"")
    assert err.reason == "empty" and err.details["bytes"] == 0


def test_zero_frames_is_empty() -> None:
    err = reason_of(encode(np.zeros(0, dtype=np.float32), 16000))
    assert err.reason == "empty"


def test_random_bytes_unreadable_and_lists_formats() -> None:
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    err = reason_of(data, filename="noise.bin")
    assert err.reason == "unreadable"
    assert "noise.bin" in err.message and "WAV" in err.message and "FLAC" in err.message
    assert "WAV" in err.details["supported_formats"]


def test_text_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio, just a text file\n" * 20)
    with pytest.raises(AudioError) as info:
        decode_file(path)
    assert info.value.reason == "unreadable"


def test_missing_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as info:
        decode_file(tmp_path / "nope.wav")
    assert info.value.reason == "unreadable"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_float_wav(bad: float) -> None:
    x = tone(440, 0.2, 16000)
    x[100] = bad
    x[200] = bad
    err = reason_of(encode(x, 16000, "WAV", "FLOAT"))
    assert err.reason == "non_finite" and err.details["non_finite_samples"] == 2


def test_too_long_is_refused_from_header_without_reading_samples(monkeypatch) -> None:
    data = encode(tone(440, 2.0, 16000), 16000)

    def no_read(*args, **kwargs):
        raise AssertionError("samples were read")

    monkeypatch.setattr(sf.SoundFile, "read", no_read)
    monkeypatch.setattr(sf.SoundFile, "blocks", no_read)
    err = reason_of(data, limits=AudioLimits(max_seconds=1.5))
    assert err.reason == "too_long"
    assert err.details["seconds"] == pytest.approx(2.0)
    assert "1.5 s" in err.message


def test_too_short() -> None:
    err = reason_of(encode(tone(440, 0.2, 16000), 16000), limits=AudioLimits(min_seconds=0.5))
    assert err.reason == "too_short" and err.details["seconds"] == pytest.approx(0.2)
    assert "0.5 s" in err.message


def test_too_large_checked_before_decoding(tmp_path: Path) -> None:
    data = encode(tone(440, 1.0, 16000), 16000)
    limits = AudioLimits(max_bytes=len(data) - 1)
    err = reason_of(data, limits=limits)
    assert err.reason == "too_large" and err.details["bytes"] == len(data)
    path = tmp_path / "big.wav"
    path.write_bytes(data)
    with pytest.raises(AudioError) as info:
        decode_file(path, limits=limits)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize("rate", [4000, 384000])
def test_bad_sample_rate(rate: int) -> None:
    err = reason_of(encode(tone(100, 0.1, rate), rate))
    assert err.reason == "bad_sample_rate" and err.details["sample_rate"] == rate


# ---------------------------------------------------------------- resampling

@pytest.mark.parametrize("sr_from,sr_to", [(44100, 16000), (8000, 16000), (48000, 16000),
                                           (16000, 32000), (22050, 16000)])
def test_resample_keeps_frequency_and_length_ratio(sr_from: int, sr_to: int) -> None:
    x = tone(440, 1.0, sr_from)
    y = resample(x, sr_from, sr_to)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) * sr_to / sr_from) <= 1
    assert abs(peak_hz(y, sr_to) - 440) <= 1.5
    core = y[len(y) // 4: 3 * len(y) // 4]
    assert np.sqrt(np.mean(core**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_resample_identity_when_rates_equal() -> None:
    x = tone(440, 0.1, 16000)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


@pytest.mark.parametrize("use_soxr", [True, False])
def test_downsampling_is_band_limited(monkeypatch, use_soxr: bool) -> None:
    """A 7 kHz tone cannot exist at 8 kHz; a naive decimator would alias it to 1 kHz."""
    if not use_soxr:
        monkeypatch.setitem(sys.modules, "soxr", None)  # import soxr -> ImportError -> scipy path
    y = resample(tone(7000, 1.0, 48000), 48000, 8000)
    assert abs(len(y) - 8000) <= 1
    assert np.sqrt(np.mean(y**2)) < 0.01 * (0.5 / np.sqrt(2))
    kept = resample(tone(1000, 1.0, 48000), 48000, 8000)
    assert abs(peak_hz(kept, 8000) - 1000) <= 1.5


# ---------------------------------------------------------------- VAD

def test_vad_silence_has_no_speech() -> None:
    act = detect_speech(np.zeros(3 * 16000, dtype=np.float32), 16000)
    assert act.speech_seconds == 0.0
    assert act.total_seconds == pytest.approx(3.0)
    assert act.frames.dtype == bool and len(act.frames) == 100 and act.frame_ms == 30
    assert trim_to_speech(np.zeros(16000, dtype=np.float32), 16000).size == 0


def test_vad_low_level_white_noise_is_mostly_not_speech() -> None:
    x = (np.random.default_rng(1).standard_normal(5 * 16000) * 0.01).astype(np.float32)
    act = detect_speech(x, 16000)
    assert act.speech_seconds < 0.5


def test_vad_speech_like_signal_in_silence_found_and_trimmed() -> None:
    sr = 16000
    x = np.zeros(4 * sr, dtype=np.float32)
    x[sr:int(2.5 * sr)] = voiced(1.5, sr)
    act = detect_speech(x, sr)
    assert 1.2 <= act.speech_seconds <= 2.0
    (start, end), = act.segments()
    assert start == pytest.approx(1.0, abs=0.1) and end >= 2.4
    trimmed = trim_to_speech(x, sr, act, pad_ms=100)
    assert len(trimmed) == pytest.approx((end - start + 0.2) * sr, abs=0.02 * sr)


def test_vad_works_at_rates_webrtc_does_not_support() -> None:
    sr = 22050
    x = np.zeros(3 * sr, dtype=np.float32)
    x[sr:2 * sr] = voiced(1.0, sr)
    act = detect_speech(x, sr)
    assert act.total_seconds == pytest.approx(3.0)
    assert 0.8 <= act.speech_seconds <= 1.5


def test_smoothing_drops_isolated_frames_and_bridges_short_gaps() -> None:
    raw = np.array([0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1], bool)
    out = smooth_decisions(raw, frame_ms=30, min_speech_ms=90, hangover_ms=150)
    expected = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1], bool)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.skipif(not FSDD_CLIP.exists(), reason="FSDD recordings not present")
def test_vad_real_recording() -> None:
    out = decode_file(FSDD_CLIP)
    act = detect_speech(out.samples, out.sample_rate)
    assert act.speech_seconds > 0.15


def _synth_voice(tmp_path: Path) -> Path | None:
    text = "The quick brown fox jumps over the lazy dog near the quiet river bank."
    path = tmp_path / "voice.wav"
    if shutil.which("espeak-ng"):
        cmd = ["espeak-ng", "-w", str(path), text]
    elif shutil.which("flite"):
        cmd = ["flite", "-t", text, "-o", str(path)]
    else:
        return None
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


def test_vad_synthesized_voice_is_mostly_speech(tmp_path: Path) -> None:
    path = _synth_voice(tmp_path)
    if path is None:
        pytest.skip("neither espeak-ng nor flite on PATH")
    out = decode_file(path)
    act = detect_speech(out.samples, out.sample_rate)
    assert act.speech_seconds >= 0.75 * out.duration_s
    assert assess_clip(out).ok


# ---------------------------------------------------------------- quality

def test_quality_clipped_sine_flagged() -> None:
    x = np.clip(tone(200, 2.0, 16000, amp=2.0), -1.0, 1.0)
    report = assess_clip(audio(x))
    assert not report.ok and "clipped" in report.reason_codes
    assert report.clipped_ratio > 0.3 and report.peak_dbfs == pytest.approx(0.0)
    item = next(r for r in report.reasons if r["reason"] == "clipped")
    assert "gain" in item["message"] and item["clipped_ratio"] == report.clipped_ratio


def test_quality_silent_flagged_only_as_silent() -> None:
    report = assess_clip(audio(np.zeros(32000, dtype=np.float32)))
    assert report.reason_codes == ["silent"]
    assert report.rms_dbfs < -60 and report.speech_seconds == 0.0
    json.dumps(report.to_dict())  # -inf would break JSON


def test_quality_very_quiet_noise_is_silent() -> None:
    x = (np.random.default_rng(2).standard_normal(32000) * 1e-4).astype(np.float32)  # about -80 dBFS
    report = assess_clip(audio(x))
    assert report.reason_codes == ["silent"]
    assert report.rms_dbfs == pytest.approx(-80, abs=1)


def test_quality_too_little_speech_message_has_both_numbers() -> None:
    x = np.zeros(2 * 16000, dtype=np.float32)
    x[16000:16000 + 4800] = voiced(0.3)
    report = assess_clip(audio(x))
    assert report.reason_codes == ["too_little_speech"]
    assert 0.1 < report.speech_seconds < 1.0
    msg = report.reasons[0]["message"]
    assert "1.0 s" in msg and f"{report.speech_seconds:.1f} s" in msg


def test_quality_good_clip_passes() -> None:
    x = np.zeros(4 * 16000, dtype=np.float32)
    x[8000:8000 + 3 * 16000] = voiced(3.0)
    report = assess_clip(audio(x))
    assert report.ok and report.reasons == []
    assert report.speech_seconds >= 2.5 and report.duration_s == pytest.approx(4.0)
    assert -30 < report.rms_dbfs < -3
    d = report.to_dict()
    assert set(d) >= {"ok", "reasons", "speech_seconds", "duration_s", "rms_dbfs",
                      "peak_dbfs", "clipped_ratio"}


def test_quality_thresholds_are_respected() -> None:
    x = np.zeros(4 * 16000, dtype=np.float32)
    x[8000:8000 + 3 * 16000] = voiced(3.0)
    report = assess_clip(audio(x), QualityThresholds(min_speech_seconds=5.0))
    assert report.reason_codes == ["too_little_speech"]
    assert "5.0 s" in report.reasons[0]["message"]


# ---------------------------------------------------------------- synthesized corpus (eval.synth_voices)

def test_clip_texts_are_deterministic_and_differ() -> None:
    from eval.synth_voices import clip_text

    texts = [clip_text("espeak-m1-en-us", i, 3.0) for i in range(20)]
    assert texts == [clip_text("espeak-m1-en-us", i, 3.0) for i in range(20)]
    assert len(set(texts)) >= 18
    assert clip_text("flite-awb", 0, 3.0) != clip_text("flite-slt", 0, 3.0)
    words = [len(t.split()) for t in texts]
    assert 4 <= np.median(words) <= 12


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not on PATH")
def test_synthesize_corpus_writes_16k_mono_and_reuses_files(tmp_path: Path) -> None:
    from eval.synth_voices import CorpusStats, espeak_voices, synthesize_corpus

    voices = espeak_voices(["m1", "f1"])[:2]
    stats = CorpusStats()
    corpus = synthesize_corpus(tmp_path, 2, 2.0, voices=voices, stats=stats)
    assert sorted(corpus) == sorted(v.speaker for v in voices)
    for speaker, paths in corpus.items():
        assert [p.name for p in paths] == ["00.wav", "01.wav"]
        assert all(p.parent == tmp_path / speaker for p in paths)
        for p in paths:
            info = sf.info(str(p))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert 0.8 < info.duration < 8.0
    assert stats.reused == 0 and stats.clips == 4

    manifest_path = tmp_path / "voices.json"
    manifest = json.loads(manifest_path.read_text())
    assert set(manifest["speakers"]) == set(corpus)

    again = CorpusStats()
    synthesize_corpus(tmp_path, 2, 2.0, voices=voices, stats=again)
    assert again.reused == 4

    # A file whose recorded text no longer matches the plan is made again.
    first = voices[0].speaker
    manifest["speakers"][first]["clips"][0]["text"] = "something else"
    manifest_path.write_text(json.dumps(manifest))
    third = CorpusStats()
    synthesize_corpus(tmp_path, 2, 2.0, voices=voices, stats=third)
    assert third.reused == 3
