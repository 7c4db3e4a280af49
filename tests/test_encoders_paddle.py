"""PaddleSpeech encoders (ecapa_tdnn, panns_cnn14) on small checkpoints in the real format.

The checkpoints are built here from randomly initialised PaddleSpeech model
classes with fewer channels, saved with ``paddle.save`` exactly as
PaddleSpeech lays them out (ECAPA: ``conf/model.yaml`` + ``model/model.pdparams``
with ``backbone.``-prefixed keys and a classifier; CNN14: ``cnn14.pdparams`` +
``panns.yaml``), also packed as ``.tar.gz`` archives, and loaded through the
encoders' public ``load``. No network: downloads are replaced by stubs.
"""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
pytest.importorskip("paddlespeech")
yaml = pytest.importorskip("yaml")

from voiceprint.encoders import ecapa_tdnn as ecapa_mod  # noqa: E402
from voiceprint.encoders import paddle_fetch as pc  # noqa: E402
from voiceprint.encoders import paddle_runtime as pr  # noqa: E402
from voiceprint.encoders import panns_cnn14 as panns_mod  # noqa: E402
from voiceprint.encoders.ecapa_tdnn import EcapaTdnnEncoder  # noqa: E402
from voiceprint.encoders.panns_cnn14 import PannsCnn14Encoder  # noqa: E402
from voiceprint.errors import AudioError, EncoderUnavailable  # noqa: E402
from eval.encoder_seeds import PANNS_FEATURE, write_small_cnn14_checkpoint  # noqa: E402

ECAPA_SMALL = {"input_size": 80, "channels": [32, 32, 32, 32, 96], "kernel_sizes": [5, 3, 3, 3, 1],
               "dilations": [1, 2, 3, 4, 1], "attention_channels": 16, "lin_neurons": 192}
REAL_DOWNLOAD = pc.download_file


def tone(sr: int, seconds: float, f0: float, seed: int = 0) -> np.ndarray:
    """Harmonic tone plus a little noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) + 0.05 * rng.standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_archive(src: Path, archive: Path, top: str | None) -> Path:
    """Pack ``src``'s contents as a .tar.gz, under folder ``top`` or at the root."""
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src).as_posix()
            tar.add(p, arcname=f"{top}/{rel}" if top else rel, recursive=False)
    return archive


def write_ecapa_checkpoint(root: Path, model_conf: dict[str, Any], seed: int) -> Any:
    """A PaddleSpeech-style training checkpoint; returns the source backbone."""
    from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn
    from paddlespeech.vector.modules.sid_model import SpeakerIdetification

    paddle.seed(seed)
    backbone = EcapaTdnn(**model_conf)
    # non-trivial batch-norm statistics, as a trained model has
    for name, t in backbone.state_dict().items():
        if name.endswith("._mean"):
            t.set_value(np.random.default_rng(seed).normal(0, 0.1, t.shape).astype("float32"))
        elif name.endswith("._variance"):
            t.set_value(np.random.default_rng(seed).uniform(0.5, 2.0, t.shape).astype("float32"))
    classifier = SpeakerIdetification(backbone=backbone, num_class=11)
    conf = {"sr": 16000, "n_mels": 80, "window_size": 400, "hop_size": 160, "num_speakers": 11,
            "model": model_conf}
    (root / "conf").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "conf" / "model.yaml").write_text(yaml.safe_dump(conf))
    state = classifier.state_dict()
    assert "weight" in state and all(k == "weight" or k.startswith("backbone.") for k in state)
    paddle.save(state, str(root / "model" / "model.pdparams"))
    backbone.eval()
    return backbone


def write_cnn14_checkpoint(root: Path, seed: int) -> Any:
    return write_small_cnn14_checkpoint(root, seed)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Checkpoints, archives and a private cache; PaddleSpeech's home is empty and
    downloads fail at once unless a test says otherwise. ``opts``: the encoder
    options every load here passes (private cache and PaddleSpeech home)."""
    base = tmp_path_factory.mktemp("paddle_encoders")
    opts = {"cache_dir": str(base / "cache"), "paddlespeech_home": str(base / "ppspeech_home")}
    ecapa_dir = base / "ecapa"
    ecapa_src = write_ecapa_checkpoint(ecapa_dir, ECAPA_SMALL, seed=1)
    panns_dir = base / "panns"
    panns_src = write_cnn14_checkpoint(panns_dir, seed=2)
    yield {
        "base": base, "opts": opts, "ecapa_dir": ecapa_dir, "ecapa_src": ecapa_src,
        "ecapa_tar": make_archive(ecapa_dir, base / ecapa_mod.SPEC.archive_name,
                                  "sv0_ecapa_tdnn_voxceleb12_ckpt_0_2_0"),
        "panns_dir": panns_dir, "panns_src": panns_src,
        "panns_tar": make_archive(panns_dir, base / panns_mod.SPEC.archive_name, None),
    }


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every download attempt fails immediately; the URLs asked for are recorded."""
    asked: list[str] = []

    def refuse(url: str, dest: Path, md5: str, *, timeout: float = 0) -> Path:
        asked.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(pc, "download_file", refuse)
    return asked


@pytest.fixture(scope="module")
def ecapa(env: dict[str, Any]) -> EcapaTdnnEncoder:
    return EcapaTdnnEncoder.load(model_dir=str(env["ecapa_dir"]), num_threads=2, **env["opts"])


@pytest.fixture(scope="module")
def panns(env: dict[str, Any]) -> PannsCnn14Encoder:
    return PannsCnn14Encoder.load(model_dir=str(env["panns_dir"]), num_threads=2, **env["opts"])


# -- ECAPA-TDNN -----------------------------------------------------------------
def test_ecapa_embeddings_shape_norm_and_determinism(ecapa: EcapaTdnnEncoder) -> None:
    clips = [tone(16000, 1.5, 140), tone(16000, 2.3, 220, seed=1), tone(16000, 0.7, 95, seed=2)]
    a = ecapa.embed_batch(clips)
    assert a.shape == (3, 192) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, ecapa.embed_batch(clips))
    assert ecapa.embed_batch([]).shape == (0, 192)
    # different clips, different vectors
    assert np.abs(a[0] - a[1]).max() > 1e-3 and np.abs(a[0] - a[2]).max() > 1e-3


def test_ecapa_clip_embeds_the_same_alone_and_in_a_batch(ecapa: EcapaTdnnEncoder) -> None:
    x = tone(16000, 1.2, 150)
    same_length = tone(16000, 1.2, 300, seed=5)
    batch = ecapa.embed_batch([tone(16000, 2.0, 90), x, same_length, tone(16000, 0.5, 400)])
    np.testing.assert_allclose(batch[1], ecapa.embed(x), atol=1e-5)
    np.testing.assert_allclose(batch[2], ecapa.embed(same_length), atol=1e-5)


def test_ecapa_runs_the_loaded_weights(ecapa: EcapaTdnnEncoder, env: dict[str, Any]) -> None:
    """The encoder equals the source model (that wrote the checkpoint) on the same input."""
    x = tone(16000, 1.0, 180)
    feats = ecapa.features(x)
    with paddle.no_grad():
        ref = env["ecapa_src"](paddle.to_tensor(feats[None])).numpy()
    np.testing.assert_allclose(ecapa.embed(x), unit(ref)[0], atol=1e-4)


def test_ecapa_fast_backend_matches_dygraph(ecapa: EcapaTdnnEncoder, env: dict[str, Any]) -> None:
    fast = EcapaTdnnEncoder.load(model_dir=str(env["ecapa_dir"]), runtime="inference", **env["opts"])
    assert fast.backend.startswith("paddle.inference") and ecapa.backend == "onnxruntime"
    dy = EcapaTdnnEncoder.load(model_dir=str(env["ecapa_dir"]), runtime="dygraph", **env["opts"])
    assert dy.backend == "dygraph"
    clips = [tone(16000, 1.7, 130), tone(16000, 3.1, 260, seed=3)]
    np.testing.assert_allclose(fast.embed_batch(clips), dy.embed_batch(clips), atol=1e-4)
    np.testing.assert_allclose(ecapa.embed_batch(clips), dy.embed_batch(clips), atol=1e-4)
    # the exports are cached, keyed by the checkpoint: a second load reuses them
    exports = sorted((env["base"] / "cache" / "exports").iterdir())
    for runtime in ("inference", "auto"):
        again = EcapaTdnnEncoder.load(model_dir=str(env["ecapa_dir"]), runtime=runtime, **env["opts"])
        assert again.runner_choice.export.entry in exports
        assert again.runner_choice.export.source == "cached"
    assert sorted((env["base"] / "cache" / "exports").iterdir()) == exports


def test_ecapa_export_failure_falls_back_to_dygraph(ecapa: EcapaTdnnEncoder, env: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Path:
        raise RuntimeError("to_static exploded")

    monkeypatch.setattr(pr, "export_static", broken)
    fresh = {**env["opts"], "cache_dir": str(env["base"] / "cache-fresh")}
    enc = EcapaTdnnEncoder.load(model_dir=str(env["ecapa_dir"]), **fresh)
    assert enc.backend == "dygraph"
    x = tone(16000, 1.4, 175)
    np.testing.assert_allclose(enc.embed(x), ecapa.embed(x), atol=1e-4)
    with pytest.raises(EncoderUnavailable, match="to_static exploded"):
        EcapaTdnnEncoder.load(model_dir=str(env["ecapa_dir"]), runtime="inference", **fresh)


def test_ecapa_damaged_cached_export_is_rebuilt(ecapa: EcapaTdnnEncoder, env: dict[str, Any]) -> None:
    load = {"model_dir": str(env["ecapa_dir"]), "runtime": "inference", **env["opts"]}
    export_dir = EcapaTdnnEncoder.load(**load).runner_choice.export.entry
    assert export_dir is not None and (export_dir / "model.pdiparams").is_file()
    (export_dir / "model.pdiparams").write_bytes(b"\0" * 64)
    enc = EcapaTdnnEncoder.load(**load)
    assert enc.backend == "paddle.inference" and enc.runner_choice.export.entry == export_dir
    assert enc.runner_choice.export.source == "built"
    x = tone(16000, 0.8, 260)
    np.testing.assert_allclose(enc.embed(x), ecapa.embed(x), atol=1e-5)


def test_ecapa_features_match_paddlespeech_vector_executor(ecapa: EcapaTdnnEncoder,
                                                          tmp_path: Path) -> None:
    """VectorExecutor.preprocess: soundfile_load -> melspectrogram -> feature_normalize."""
    import soundfile as sf
    from paddlespeech.audio.backends import soundfile_load
    from paddlespeech.audio.compliance.librosa import melspectrogram
    from paddlespeech.vector.io.batch import feature_normalize

    x = 0.3 * tone(16000, 1.3, 170)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    wav, sr = soundfile_load(str(path))
    feat = melspectrogram(x=wav, sr=16000, n_mels=80, window_size=400, hop_length=160)
    ref = feature_normalize(paddle.to_tensor(feat).unsqueeze(0), mean_norm=True, std_norm=False)
    np.testing.assert_allclose(ecapa.features(x), ref.numpy()[0], atol=1e-3)


def test_ecapa_short_and_bad_audio(ecapa: EcapaTdnnEncoder) -> None:
    short = ecapa.embed(tone(16000, 0.02, 200))  # 320 samples, fewer frames than the convs need
    assert short.shape == (192,) and np.isfinite(short).all()
    assert np.isfinite(ecapa.embed(np.zeros(16000, np.float32))).all()
    with pytest.raises(AudioError):
        ecapa.embed(np.zeros(0, np.float32))
    with pytest.raises(AudioError):
        ecapa.embed(np.full(16000, np.nan, np.float32))


def test_ecapa_loads_from_archive_env_var_and_paddlespeech_cache(
        ecapa: EcapaTdnnEncoder, env: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    x = tone(16000, 1.1, 210)
    want = ecapa.embed(x)
    from_tar = EcapaTdnnEncoder.load(model_dir=str(env["ecapa_tar"]), **env["opts"])
    assert from_tar.model_root.is_relative_to(env["base"] / "cache")
    np.testing.assert_allclose(from_tar.embed(x), want, atol=1e-6)

    from voiceprint.encoders.registry import load_encoder  # as the app passes VOICEPRINT_ECAPA_MODEL_DIR

    np.testing.assert_allclose(load_encoder("ecapa_tdnn", model_dir=str(env["ecapa_dir"]),
                                            **env["opts"]).embed(x), want, atol=1e-6)

    # PaddleSpeech's own cache layout: <home>/models/<tag>/<version>/<unpacked archive>/
    home = tmp_path / "ppspeech"
    cache = home / "models" / "ecapatdnn_voxceleb12-16k" / "1.0"
    shutil.copytree(env["ecapa_dir"], cache / "sv0_ecapa_tdnn_voxceleb12_ckpt_0_2_0")
    assert pc.paddlespeech_model_dir(ecapa_mod.SPEC, home) == cache
    np.testing.assert_allclose(EcapaTdnnEncoder.load(**{**env["opts"], "paddlespeech_home": str(home)})
                               .embed(x), want, atol=1e-6)


def test_ecapa_download_path_unpacks_into_paddlespeech_cache(
        ecapa: EcapaTdnnEncoder, env: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    fetched: list[tuple[str, Path, str]] = []

    def fake_download(url: str, dest: Path, md5: str, *, timeout: float = 0) -> Path:
        fetched.append((url, dest, md5))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(env["ecapa_tar"], dest)
        return dest

    monkeypatch.setattr(pc, "download_file", fake_download)
    enc = EcapaTdnnEncoder.load(**{**env["opts"], "paddlespeech_home": str(tmp_path / "home")})
    url, dest, md5 = fetched[0]
    assert url == ecapa_mod.SPEC.url and md5 == ecapa_mod.SPEC.md5
    assert dest == tmp_path / "home" / "models" / "ecapatdnn_voxceleb12-16k" / "1.0" / \
        "sv0_ecapa_tdnn_voxceleb12_ckpt_0_2_0.tar.gz"
    x = tone(16000, 0.9, 120)
    np.testing.assert_allclose(enc.embed(x), ecapa.embed(x), atol=1e-6)


def test_ecapa_missing_weights_say_what_to_download(env: dict[str, Any], no_network: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EncoderUnavailable) as err:
        EcapaTdnnEncoder.load(**env["opts"])
    msg = err.value.message
    cache = str(Path(env["base"]) / "ppspeech_home" / "models" / "ecapatdnn_voxceleb12-16k" / "1.0")
    for part in (ecapa_mod.SPEC.url, ecapa_mod.SPEC.md5, "VOICEPRINT_ECAPA_MODEL_DIR", cache,
                 "network disabled"):
        assert part in msg
    assert err.value.status == 503 and no_network == [ecapa_mod.SPEC.url]

    with pytest.raises(EncoderUnavailable, match="VOICEPRINT_ECAPA_MODEL_DIR"):
        EcapaTdnnEncoder.load(offline=True, **env["opts"])
    assert no_network == [ecapa_mod.SPEC.url]  # no second attempt


def test_archive_with_wrong_md5_in_paddlespeech_cache_is_not_used(
        env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        no_network: list[str]) -> None:
    cache = pc.paddlespeech_model_dir(ecapa_mod.SPEC, tmp_path)
    cache.mkdir(parents=True)
    shutil.copy(env["ecapa_tar"], cache / ecapa_mod.SPEC.archive_name)
    with pytest.raises(EncoderUnavailable, match=f"md5 is not {ecapa_mod.SPEC.md5}"):
        EcapaTdnnEncoder.load(**{**env["opts"], "paddlespeech_home": str(tmp_path)})
    assert no_network == [ecapa_mod.SPEC.url]


def test_ecapa_explicit_model_dir_without_model_fails_clearly(tmp_path: Path, env: dict[str, Any],
                                                               no_network: list[str]) -> None:
    with pytest.raises(EncoderUnavailable, match="model/model.pdparams") as err:
        EcapaTdnnEncoder.load(model_dir=str(tmp_path), **env["opts"])
    assert ecapa_mod.SPEC.url in err.value.message and not no_network
    with pytest.raises(EncoderUnavailable):
        EcapaTdnnEncoder.load(model_dir=str(tmp_path / "nope.bin"), **env["opts"])


def test_ecapa_checkpoint_that_does_not_fit_is_refused(env: dict[str, Any], tmp_path: Path) -> None:
    # weights of a wider model under the small config
    wide = tmp_path / "wide"
    write_ecapa_checkpoint(wide, {**ECAPA_SMALL, "channels": [48, 48, 48, 48, 96]}, seed=3)
    shutil.copy(env["ecapa_dir"] / "conf" / "model.yaml", wide / "conf" / "model.yaml")
    with pytest.raises(EncoderUnavailable, match="wrong shape"):
        EcapaTdnnEncoder.load(model_dir=str(wide), **env["opts"])
    # a checkpoint with a tensor missing
    holed = tmp_path / "holed"
    shutil.copytree(env["ecapa_dir"], holed)
    state = paddle.load(str(holed / "model" / "model.pdparams"))
    del state["backbone.fc.conv.weight"]
    paddle.save(state, str(holed / "model" / "model.pdparams"))
    with pytest.raises(EncoderUnavailable, match=r"missing \(e.g. fc.conv.weight"):
        EcapaTdnnEncoder.load(model_dir=str(holed), **env["opts"])


def test_registry_loads_ecapa(env: dict[str, Any]) -> None:
    from voiceprint.encoders.registry import load_encoder

    enc = load_encoder("ecapa_tdnn", model_dir=str(env["ecapa_dir"]), num_threads=1, **env["opts"])
    assert (enc.name, enc.dim, enc.sample_rate, enc.kind) == ("ecapa_tdnn", 192, 16000, "speaker")


# -- checkpoint helpers ---------------------------------------------------------
def test_archive_with_escaping_member_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "x.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../escaped.txt")
    with pytest.raises(EncoderUnavailable, match="outside"):
        pc.extract_archive(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_download_file_checks_md5(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"weights" * 1000)
    md5 = pc.file_md5(src)
    got = REAL_DOWNLOAD(src.as_uri(), tmp_path / "dl" / "a.bin", md5, timeout=1)
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(ValueError, match="md5"):
        REAL_DOWNLOAD(src.as_uri(), tmp_path / "dl" / "b.bin", "0" * 32, timeout=1)
    assert not (tmp_path / "dl" / "b.bin").exists()


# -- PANNs CNN14 ----------------------------------------------------------------
def test_panns_embeddings(panns: PannsCnn14Encoder) -> None:
    clips = [tone(32000, 1.0, 440), tone(32000, 2.0, 1000, seed=1), tone(32000, 0.05, 300, seed=2)]
    a = panns.embed_batch(clips)
    assert a.shape == (3, 2048) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, panns.embed_batch(clips))
    np.testing.assert_allclose(a[1], panns.embed(clips[1]), atol=1e-5)
    assert np.abs(a[0] - a[1]).max() > 1e-3
    assert panns.kind == "sound" and panns.backend == panns_mod.DEFAULT_BACKEND
    with pytest.raises(AudioError):
        panns.embed(np.zeros(0, np.float32))


def test_panns_runs_the_loaded_weights(panns: PannsCnn14Encoder, env: dict[str, Any]) -> None:
    x = tone(32000, 1.5, 660)
    feats = panns.features(x)
    assert feats.shape == (1, 151, 64)
    with paddle.no_grad():
        ref = env["panns_src"](paddle.to_tensor(feats[None])).numpy()
    np.testing.assert_allclose(panns.embed(x), unit(ref)[0], atol=1e-4)


@pytest.mark.parametrize("backend", ["inference", "onednn"])
def test_panns_exported_backends_match_dygraph(panns: PannsCnn14Encoder, env: dict[str, Any],
                                               backend: str) -> None:
    enc = PannsCnn14Encoder.load(model_dir=str(env["panns_tar"]), runtime=backend, **env["opts"])
    assert enc.backend.startswith("paddle.inference") and ("onednn" in enc.backend) == (backend == "onednn")
    clips = [tone(32000, 1.5, 660), tone(32000, 0.9, 300, seed=4), tone(32000, 0.9, 900, seed=5)]
    np.testing.assert_allclose(enc.embed_batch(clips), panns.embed_batch(clips), atol=1e-4)


def test_panns_features_match_paddlespeech_cls_executor(panns: PannsCnn14Encoder,
                                                        tmp_path: Path) -> None:
    """CLSExecutor.preprocess: soundfile_load(sr=32000) -> LogMelSpectrogram -> [1, T, 64]."""
    import soundfile as sf
    from paddle.audio.features import LogMelSpectrogram
    from paddlespeech.audio.backends import soundfile_load

    x = 0.2 * tone(32000, 0.8, 520)
    path = tmp_path / "a.wav"
    sf.write(path, x, 32000, subtype="FLOAT")
    wav, _ = soundfile_load(str(path), sr=32000, mono=True, dtype="float32")
    f = PANNS_FEATURE
    mel = LogMelSpectrogram(sr=f["sample_rate"], n_fft=f["n_fft"], hop_length=f["hop_length"],
                            window=f["window"], win_length=f["window_length"], f_min=f["f_min"],
                            f_max=f["f_max"], n_mels=f["n_mels"])(paddle.to_tensor(wav).unsqueeze(0))
    ref = paddle.transpose(mel, [0, 2, 1]).numpy()
    np.testing.assert_allclose(panns.features(x), ref, atol=1e-3)


def test_panns_missing_weights_say_what_to_download(env: dict[str, Any], no_network: list[str]) -> None:
    with pytest.raises(EncoderUnavailable) as err:
        PannsCnn14Encoder.load(**env["opts"])
    for part in (panns_mod.SPEC.url, panns_mod.SPEC.md5, "VOICEPRINT_PANNS_MODEL_DIR",
                 "panns_cnn14-32k"):
        assert part in err.value.message
    assert no_network == [panns_mod.SPEC.url]


def test_ecapa_equals_paddlespeech_vector_executor_end_to_end(ecapa: EcapaTdnnEncoder,
                                                              env: dict[str, Any],
                                                              tmp_path: Path) -> None:
    """PaddleSpeech's own CLI pipeline on the same checkpoint and file (needs
    the CLI's extra imports yacs and prettytable, which the lean install lacks)."""
    pytest.importorskip("yacs")
    pytest.importorskip("prettytable")
    import soundfile as sf
    from paddlespeech.cli.vector.infer import VectorExecutor

    x = 0.3 * tone(16000, 2.0, 190)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    ref = VectorExecutor()(audio_file=str(path), model="ecapatdnn_voxceleb12", sample_rate=16000,
                           config=str(env["ecapa_dir"] / "conf" / "model.yaml"),
                           ckpt_path=str(env["ecapa_dir"] / "model" / "model"),
                           force_yes=True, device="cpu")
    wav, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(ecapa.embed(wav), unit(ref[None])[0], atol=1e-5)
