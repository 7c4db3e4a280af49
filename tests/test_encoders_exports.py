"""The shared export cache (voiceprint.encoders.exports) on a small torch model.

Export once, verify against the original before first use, reuse from the
cache without the original, rebuild a damaged entry, refuse a mismatching
export (and fall back, logged), fail over when exporting fails.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from voiceprint.encoders import torch_runtime  # noqa: E402
from voiceprint.encoders.exports import (  # noqa: E402
    ExportKey,
    ExportRefused,
    compare,
    FP32,
    load_export,
    probe_clips,
)
from voiceprint.encoders.options import EncoderOptions  # noqa: E402
from voiceprint.errors import EncoderUnavailable  # noqa: E402


class Tiny(torch.nn.Module):
    """(B, T, 8) -> (B, 6): a convolution, ReLU and mean over time."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv1d(8, 6, 3, padding=1)

    def forward(self, x: Any) -> Any:
        return torch.relu(self.conv(x.transpose(1, 2))).mean(-1)


def probes() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, n, 8)).astype(np.float32) for n in (20, 57)] + \
        [rng.standard_normal((2, 33, 8)).astype(np.float32)]


class Counter:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.built = 0

    def __call__(self) -> Tiny:
        self.built += 1
        return Tiny(self.seed)


def choose(tmp_path: Path, module: Any, runtime: str = "auto", precision: str = "auto") -> Any:
    opts = EncoderOptions(cache_dir=str(tmp_path), runtime=runtime, precision=precision, num_threads=1)
    return torch_runtime.choose_runner("tiny", opts, weights_sha256="ab" * 32, module=module,
                                       example=np.zeros((1, 10, 8), np.float32),
                                       dynamic={0: "batch", 1: "frames"}, probe_inputs=probes)


def test_export_is_verified_cached_and_reused_without_the_original(tmp_path: Path) -> None:
    module = Counter()
    first = choose(tmp_path, module)
    assert first.backend == "onnxruntime" and first.export.source == "built" and module.built == 1
    v = first.export.verification
    assert v.passed and v.max_abs_diff < 1e-5 and v.min_cosine > 0.99999 and v.probes == 3
    manifest = json.loads((first.export.entry / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["key"]["weights_sha256"] == "ab" * 32
    assert set(manifest["files"]) == {"model.onnx", "probes.npz"}

    again = Counter()
    second = choose(tmp_path, again)
    assert second.export.source == "cached" and second.export.entry == first.export.entry
    assert again.built == 0  # the cached export is checked against stored outputs, not the model
    x = np.random.default_rng(5).standard_normal((3, 41, 8)).astype(np.float32)
    with torch.no_grad():
        want = Tiny()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(second.runner(x), want, atol=1e-5)


def test_key_separates_weights_precision_and_exporter() -> None:
    base = ExportKey(model="m", weights_sha256="a" * 64, exporter="torch.onnx 2.13.0")
    others = [ExportKey(model="m", weights_sha256="b" * 64, exporter="torch.onnx 2.13.0"),
              ExportKey(model="m", weights_sha256="a" * 64, exporter="torch.onnx 2.14.0"),
              ExportKey(model="m", weights_sha256="a" * 64, exporter="torch.onnx 2.13.0", precision="int8"),
              ExportKey(model="m", weights_sha256="a" * 64, exporter="torch.onnx 2.13.0", opset=18),
              ExportKey(model="m", weights_sha256="a" * 64, exporter="torch.onnx 2.13.0", graph_version=2)]
    assert len({k.entry_name for k in [base, *others]}) == 6
    assert base.entry_name == ExportKey(model="m", weights_sha256="a" * 64,
                                        exporter="torch.onnx 2.13.0").entry_name


@pytest.mark.parametrize("damage", ["graph", "probes", "manifest"])
def test_damaged_cache_entry_is_detected_and_rebuilt(tmp_path: Path, damage: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    entry = choose(tmp_path, Counter()).export.entry
    target = {"graph": "model.onnx", "probes": "probes.npz", "manifest": "manifest.json"}[damage]
    data = bytearray((entry / target).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (entry / target).write_bytes(bytes(data))
    module = Counter()
    with caplog.at_level(logging.WARNING, logger="voiceprint.encoders.exports"):
        choice = choose(tmp_path, module)
    assert choice.backend == "onnxruntime" and choice.export.source == "built" and module.built == 1
    assert "damaged" in caplog.text and "rebuilding" in caplog.text
    assert choose(tmp_path, Counter()).export.source == "cached"


def test_truncated_graph_with_matching_manifest_is_rebuilt(tmp_path: Path) -> None:
    """A graph that no longer loads is rebuilt even if someone fixed up the hashes."""
    from voiceprint.encoders.exports import file_sha256

    entry = choose(tmp_path, Counter()).export.entry
    (entry / "model.onnx").write_bytes(b"\x08\x07")
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = file_sha256(entry / "model.onnx")
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert choose(tmp_path, Counter()).export.source == "built"


def test_mismatching_export_is_refused_and_the_original_runs(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    real_export = torch_runtime.export_onnx

    def wrong_weights(module: Any, *args: Any, **kwargs: Any) -> None:
        real_export(Tiny(seed=99), *args, **kwargs)  # an export of other weights

    monkeypatch.setattr(torch_runtime, "export_onnx", wrong_weights)
    module = Counter()
    with caplog.at_level(logging.WARNING, logger="voiceprint.encoders.exports"):
        choice = choose(tmp_path, module)
    assert choice.backend == "torch" and choice.export is None
    assert "does not match the original" in choice.fallback_reason
    assert "not using onnxruntime" in caplog.text
    x = probes()[0]
    with torch.no_grad():
        np.testing.assert_allclose(choice.runner(x), Tiny()(torch.from_numpy(x)).numpy(), atol=1e-6)
    with pytest.raises(EncoderUnavailable, match="does not match") as err:
        choose(tmp_path, Counter(), runtime="onnx")
    assert err.value.status == 503
    # the refusal is recorded: no rebuild on the next load, the original runs again
    monkeypatch.setattr(torch_runtime, "export_onnx", lambda *a, **k: pytest.fail("re-exported"))
    assert choose(tmp_path, Counter()).backend == "torch"


def test_failing_export_falls_back_or_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(torch_runtime, "export_onnx", broken)
    with caplog.at_level(logging.WARNING):
        choice = choose(tmp_path, Counter())
    assert choice.backend == "torch" and "exporter exploded" in caplog.text
    with pytest.raises(EncoderUnavailable, match="exporter exploded"):
        choose(tmp_path, Counter(), runtime="onnx")
    assert choose(tmp_path, Counter(), runtime="native").backend == "torch"
    assert not list((tmp_path / "exports").iterdir())  # no half-written entries left behind


def test_unwritable_cache_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        choice = choose(blocker, Counter())
    assert choice.backend == "torch" and "not using onnxruntime" in caplog.text


def test_reduced_precision_needs_cosine_099_per_probe(tmp_path: Path) -> None:
    """int8 is used only if it matches fp32 within cosine 0.99 on every probe;
    asked for under runtime="auto", a refused int8 export falls back to fp32 ONNX."""
    choice = choose(tmp_path, Counter(), precision="int8")
    if choice.backend == "onnxruntime-int8":
        assert choice.export.verification.min_cosine >= 0.99
    else:
        assert choice.backend == "onnxruntime"


def test_compare_flags_nan_and_shape_changes() -> None:
    a = [np.ones((2, 4), np.float32)]
    assert compare(a, a, FP32).passed
    assert not compare([np.full((2, 4), np.nan, np.float32)], a, FP32).passed
    assert not compare([np.ones((2, 5), np.float32)], a, FP32).passed
    assert not compare([np.array([[1, 0, 0, 0], [1, 1, 0, 0]], np.float32)], a, FP32).passed


def test_load_export_refuses_directly(tmp_path: Path) -> None:
    key = ExportKey(model="m", weights_sha256="c" * 64, exporter="x")

    def build(d: Path) -> list[str]:
        (d / "w.npy").write_bytes(b"x")
        return ["w.npy"]

    with pytest.raises(ExportRefused):
        load_export(key, tmp_path, build=build, open_runner=lambda d: (lambda x: -x),
                    reference=lambda: (lambda x: x), probe_inputs=probes)


def test_probe_clips_are_deterministic_speech_like() -> None:
    a, b = probe_clips(16000), probe_clips(16000)
    assert [len(x) for x in a] == [20800, 59200]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == np.float32 and 0.45 < np.abs(x).max() <= 0.5
        frames = x[: len(x) // 400 * 400].reshape(-1, 400)
        assert (frames.std(axis=1) < 0.01).mean() > 0.1  # pauses between "syllables"
