"""``ge2e`` (resemblyzer's weights) through ONNX Runtime, against its torch original."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("resemblyzer")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("ge2e_cache"))


@pytest.fixture(scope="module")
def ge2e_onnx(cache_dir: str) -> Any:
    from voiceprint.encoders.registry import load_encoder

    return load_encoder("ge2e", num_threads=2, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def ge2e_torch(cache_dir: str) -> Any:
    from voiceprint.encoders.registry import load_encoder

    return load_encoder("ge2e", num_threads=2, cache_dir=cache_dir, runtime="native")


def speechlike(seconds: float, seed: int) -> np.ndarray:
    from voiceprint.encoders.exports import probe_clips

    clip = probe_clips(16000, (seconds,))[0]
    rng = np.random.default_rng(seed)
    return (clip * rng.uniform(0.3, 1.0) + 0.01 * rng.standard_normal(clip.size)).astype(np.float32)


def test_default_runtime_is_the_verified_onnx_export(ge2e_onnx: Any, ge2e_torch: Any) -> None:
    assert ge2e_onnx.backend == "onnxruntime" and ge2e_torch.backend == "torch"
    v = ge2e_onnx.runner_choice.export.verification
    assert v.passed and v.min_cosine > 0.9999
    clips = [speechlike(s, i) for i, s in enumerate((0.4, 1.6, 2.9, 6.1))]
    a, b = ge2e_onnx.embed_batch(clips), ge2e_torch.embed_batch(clips)
    assert a.shape == (4, 256) and np.abs(a - b).max() < 1e-4


def test_batch_equals_one_by_one(ge2e_onnx: Any) -> None:
    clips = [speechlike(s, 10 + i) for i, s in enumerate((1.0, 3.3, 1.0, 0.2, 5.0))]
    batch = ge2e_onnx.embed_batch(clips)
    for i, clip in enumerate(clips):
        np.testing.assert_allclose(batch[i], ge2e_onnx.embed(clip), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_real_speech_matches_torch(ge2e_onnx: Any, ge2e_torch: Any, fsdd: Path) -> None:
    from voiceprint.audio.decode import decode_file
    from voiceprint.audio.resample import resample

    clips = []
    for name in ("3_theo_1.wav", "8_lucas_4.wav", "0_jackson_2.wav"):
        audio = decode_file(fsdd / name)
        clips.append(resample(audio.samples, audio.sample_rate, 16000))
    a, b = ge2e_onnx.embed_batch(clips), ge2e_torch.embed_batch(clips)
    assert (a * b).sum(axis=1).min() > 0.9999


def test_weights_come_from_the_wheel_and_warmup_runs(ge2e_onnx: Any) -> None:
    from voiceprint.encoders.ge2e import weights_path

    assert weights_path().name == "pretrained.pt" and "resemblyzer" in weights_path().parts
    assert ge2e_onnx.warmup(rounds=1) > 0


def test_mel_windows_equal_resemblyzers_own(ge2e_onnx: Any) -> None:
    from resemblyzer import audio

    for seconds, seed in ((0.3, 1), (2.2, 2), (5.0, 3)):
        x = speechlike(seconds, seed)
        window = 25600
        xs = np.tile(x, -(-window // x.size))[:window] if x.size < window else x
        xs = audio.normalize_volume(xs, audio.audio_norm_target_dBFS, increase_only=True)
        want = audio.wav_to_mel_spectrogram(np.pad(xs, (0, 16000)))
        got = ge2e_onnx.windows(x)
        first = want[:160]
        np.testing.assert_allclose(got[0], first, rtol=1e-3, atol=1e-6 * float(first.max()))
