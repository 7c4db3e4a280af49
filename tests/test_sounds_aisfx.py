"""The aisfx sound encoder with its real weights (from the wheel), landmarks and near-duplicates.

These run wherever the ``aisfx`` wheel is installed (its weights travel
inside it: nothing is downloaded, and a test proves it by cutting the
network off). Real recordings come from Debian packages when installed
(``sound-icons``, ``pingus-data``, ``frozen-bubble-data``: 0.5 + 12 + 22 MB);
without them the same checks run on generated sounds
(:func:`tests.sound_fixtures.library`: tones, chirps, noise bursts, clicks,
FM tones, melodies).
"""
from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import sound_fixtures as sfx
from voiceprint.audio import decode_bytes, decode_file, resample

pytestmark = pytest.mark.skipif(importlib.util.find_spec("aisfx") is None,
                                reason="the aisfx wheel is not installed "
                                       "(pip install --no-deps aisfx==0.1.2)")

#: small packages whose recorded sounds the tests use when installed
REAL_SOUND_DIRS = (Path("/usr/share/sounds/sound-icons"), Path("/usr/share/games/pingus/data/sounds"),
                   Path("/usr/share/games/frozen-bubble/snd"))


@pytest.fixture(scope="session")
def aisfx_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ONNX exports of this test session (never the user's ~/.cache)."""
    return str(tmp_path_factory.mktemp("aisfx_exports"))


@pytest.fixture(scope="module")
def aisfx(aisfx_cache: str) -> Any:
    from voiceprint.encoders.aisfx import AisfxEncoder

    return AisfxEncoder.load(num_threads=2, cache_dir=aisfx_cache)


def real_clips(limit: int = 24, max_seconds: float = 8.0) -> list[tuple[str, np.ndarray, int]]:
    """(name, mono samples, rate) of installed recorded sounds, sorted by name, or []."""
    out = []
    for d in REAL_SOUND_DIRS:
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in (".wav", ".ogg") or p.is_symlink():
                continue
            a = decode_file(p)
            if 0.3 <= a.duration_s <= max_seconds:
                out.append((f"{d.name}/{p.name}", a.samples, a.sample_rate))
    return out[:limit]


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray, int]]:
    """Recorded sounds when the packages are installed, else generated ones (same checks)."""
    real = real_clips()
    if len(real) >= 12:
        return real
    return [(s.name, s.samples, s.sample_rate) for s in sfx.library(24, seed=3)]


# -- loading ------------------------------------------------------------------------------
def test_loads_the_wheel_weights_without_network(monkeypatch, aisfx_cache):
    from voiceprint.encoders.aisfx import AisfxEncoder, wheel_checkpoint

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the aisfx encoder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    enc = AisfxEncoder.load(num_threads=1, cache_dir=aisfx_cache)
    assert wheel_checkpoint().name == "checkpoint.pth"
    assert (enc.name, enc.dim, enc.sample_rate, enc.kind) == ("aisfx", 512, 44100, "sound")
    assert enc.describe()["backend"] in ("onnxruntime", "torch")


def test_registry_loads_aisfx(aisfx_cache):
    from voiceprint.encoders.registry import SPECS, load_encoder

    spec = SPECS["aisfx"]
    assert (spec.kind, spec.dim, spec.sample_rate) == ("sound", 512, 44100)
    enc = load_encoder("aisfx", num_threads=1, cache_dir=aisfx_cache)
    assert (enc.name, enc.dim, enc.sample_rate) == (spec.name, spec.dim, spec.sample_rate)


def test_missing_model_dir_is_a_503_with_advice(tmp_path):
    from voiceprint.encoders.aisfx import AisfxEncoder
    from voiceprint.errors import EncoderUnavailable

    with pytest.raises(EncoderUnavailable) as err:
        AisfxEncoder.load(model_dir=str(tmp_path))
    assert err.value.status == 503 and "aisfx" in err.value.message
    assert str(tmp_path) not in err.value.message  # no server paths in messages


def test_a_foreign_checkpoint_is_refused(tmp_path):
    import torch

    from voiceprint.encoders.aisfx import AisfxEncoder
    from voiceprint.errors import EncoderUnavailable

    torch.save(({"fc.weight": torch.zeros(2, 2)}, {}), tmp_path / "checkpoint.pth")
    with pytest.raises(EncoderUnavailable, match="not an aiSFX checkpoint"):
        AisfxEncoder.load(model_dir=str(tmp_path))


# -- front end and network against the package's own reference path -------------------------------
def test_matches_the_packages_reference_path(aisfx, clips, tmp_path):
    """Spectrogram (librosa path, transposed) and per-block embeddings equal the package's."""
    import soundfile as sf
    import torch

    from voiceprint.encoders.aisfx import load_embedding_state

    try:
        from aisfx import inference as ref
        from aisfx.spectrogram import spectrogram_librosa
    except ImportError as exc:  # pragma: no cover - depends on the package's own imports
        pytest.skip(f"aisfx's reference code does not import here: {exc}")
    model = ref.CrossNet(ref.EmbeddingNet("max", 3, 1, 64), {"x": (0, 2)}, "cpu")
    model.embedding_net.load_state_dict(load_embedding_state(aisfx.checkpoint))
    model.eval()
    checked = 0
    for name, x, sr in clips:
        y = resample(x, sr, 44100)
        if y.size < aisfx.front_end.min_samples:  # the package fails on clips under a block
            continue
        path = tmp_path / "clip.wav"
        sf.write(path, y, 44100, subtype="FLOAT")
        spec = spectrogram_librosa.compute_spectrogram(str(path), 44100.0, 2048, 1024, 96, 0.0, 22050.0)
        spec = ref.spectrogram_normalize(spec).T  # the transpose fix: (frames, bands)
        feats = aisfx.features(y)
        np.testing.assert_allclose(feats, spec, atol=1e-4, err_msg=name)
        want = ref.model_get_embedding(spec, 0.5, True, model, "cpu").numpy()
        want /= np.linalg.norm(want, axis=1, keepdims=True)
        got = aisfx.embed_blocks_batch([y])[0]
        # the package drops a partial last block; this encoder adds one flush with the end
        np.testing.assert_allclose(got[:len(want)], want, atol=2e-4, err_msg=name)
        checked += 1
        if checked == 3:
            break
    assert checked >= 1, "no clip was long enough for the package's reference path"


def test_onnxruntime_and_torch_backends_agree(aisfx, clips, aisfx_cache):
    from voiceprint.encoders.aisfx import AisfxEncoder

    if aisfx.backend != "onnxruntime":
        pytest.skip(f"the ONNX export is not used here: {aisfx.runner_choice.fallback_reason}")
    torch_enc = AisfxEncoder.load(num_threads=1, runtime="native", cache_dir=aisfx_cache)
    assert torch_enc.backend == "torch"
    waves = [resample(x, sr, 44100) for _, x, sr in clips[:4]]
    np.testing.assert_allclose(aisfx.embed_batch(waves), torch_enc.embed_batch(waves), atol=1e-4)


def test_short_clips_are_repeated_to_fill_a_block(aisfx):
    rng = np.random.default_rng(0)
    short = (np.sin(2 * np.pi * 440 * np.arange(4410) / 44100) * 0.5
             + rng.standard_normal(4410) * 0.01).astype(np.float32)  # 0.1 s
    tiled = np.tile(short, -(-aisfx.front_end.min_samples // short.size))
    np.testing.assert_allclose(aisfx.embed(short), aisfx.embed(tiled), atol=1e-5)
    assert len(aisfx.embed_blocks_batch([short])[0]) == 1


def test_blocks_cover_the_clip_and_file_vector_is_their_mean(aisfx):
    from voiceprint.encoders.aisfx import block_starts

    assert block_starts(100) == [0]
    assert block_starts(160) == [0, 50, 60]  # the last block ends with the clip
    assert block_starts(200) == [0, 50, 100]
    x = sfx.chirp(44100, 5.0, 200, 6000, True)
    files, blocks = aisfx.embed_with_blocks([x])
    assert blocks[0].shape == (len(block_starts(aisfx.features(x).shape[0])), 512)
    np.testing.assert_allclose(np.linalg.norm(blocks[0], axis=1), 1.0, atol=1e-5)
    mean = blocks[0].mean(axis=0)
    np.testing.assert_allclose(files[0], mean / np.linalg.norm(mean), atol=1e-6)


def test_bad_waveforms_are_refused(aisfx):
    from voiceprint.errors import AudioError

    with pytest.raises(AudioError):
        aisfx.embed(np.zeros(0, np.float32))
    with pytest.raises(AudioError):
        aisfx.embed(np.array([0.1, np.nan] * 1000, np.float32))


# -- near-duplicates on real recordings --------------------------------------------------------------
def _copies(x: np.ndarray, sr: int, seed: int) -> dict[str, np.ndarray]:
    """Re-uploads of a clip: noise 20 dB, 8 kHz round trip, MP3, first 0.25 s cut."""
    from eval.sound_perturb import PERTURBATIONS

    rng = np.random.default_rng(seed)
    out = {}
    for name in ("noise_20dB", "resample_8k", "mp3_64k"):
        a = decode_bytes(PERTURBATIONS[name](x, sr, rng))
        out[name] = resample(a.samples, a.sample_rate, sr)
    out["cut_0.25s"] = x[int(0.25 * sr):] if x.size > sr else x
    return out


def same_recording(clips: list[tuple[str, np.ndarray, int]], min_corr: float = 0.5) -> list[set[int]]:
    """Per clip, the clips holding the same recording (normalised cross-correlation at
    8 kHz >= ``min_corr``; sound-icons' pipe.wav is inside trumpet-1.wav): equally right."""
    from scipy.signal import correlate

    waves = []
    for _, x, sr in clips:
        y = resample(x, sr, 8000).astype(np.float64)
        waves.append(y / (np.linalg.norm(y) + 1e-12))
    same = [{i} for i in range(len(clips))]
    for i in range(len(clips)):
        for j in range(i + 1, len(clips)):
            if np.max(np.abs(correlate(waves[i], waves[j], method="fft"))) >= min_corr:
                same[i].add(j)
                same[j].add(i)
    return same


def test_near_duplicates_rank_their_original_first(aisfx, clips):
    """Fused ranking (landmarks, then cosine) puts the original (or a clip holding the same
    recording) first for at least 98% of the copies."""
    from voiceprint.audio.landmarks import LandmarkIndex, landmarks
    from voiceprint.scoring.sound_match import fused_order

    index = LandmarkIndex()
    for i, (_, x, sr) in enumerate(clips):
        index.add(i, landmarks(x, sr))
    base = aisfx.embed_batch([resample(x, sr, 44100) for _, x, sr in clips])
    same = same_recording(clips)
    misses = []
    for i, (name, x, sr) in enumerate(clips):
        for how, y in _copies(x, sr, seed=i).items():
            cos = base @ aisfx.embed(resample(y, sr, 44100))
            counts = np.zeros(len(clips), np.int64)
            for j, c in index.match(landmarks(y, sr)).items():
                counts[j] = c
            if int(fused_order(cos, counts, 8)[0]) not in same[i]:
                misses.append(f"{name} {how}")
    assert len(misses) <= len(clips) * 4 // 50, misses  # at least 98% at rank 1
