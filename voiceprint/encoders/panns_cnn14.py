"""``panns_cnn14``: PaddleSpeech's PANNs CNN14 sound encoder (2048-dim, 32 kHz).

Weights: PaddleSpeech's ``panns_cnn14-32k`` archive (``panns_cnn14.tar.gz``:
``cnn14.pdparams``, ``panns.yaml``, ``audioset_labels.txt``), found as
:mod:`voiceprint.encoders.paddle_fetch` describes. The embedding is
``CNN14(extract_embedding=True)``'s output: the 2048-unit ReLU layer before
the AudioSet classifier.

Front end, as PaddleSpeech 1.5.0's ``CLSExecutor`` does it: peak
normalisation of the waveform (its loader's ``normal=True``), then
``paddle.audio.features.LogMelSpectrogram`` (32 kHz, n_fft 1024, hann window
1024, hop 320 = 10 ms, 50-14000 Hz, 64 mel bands, power in dB) with settings
from ``panns.yaml`` when it is there, as a ``[B, 1, T, 64]`` input. The
log-mel is computed in numpy (:mod:`voiceprint.encoders.mel`: the same
window, filterbank and dB scale, several times faster than the paddle layer,
and no paddle import when a verified export runs).

CNN14 halves time five times before its last block, so it needs at least 32
frames (0.32 s); shorter clips are repeated end to end up to that length
(PaddleSpeech itself fails on them). The 2048 outputs are L2-normalised.
Clips of equal length share a forward pass (never padded). Inference: see
:mod:`voiceprint.encoders.paddle_base` (ONNX Runtime by default).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from voiceprint.encoders import mel
from voiceprint.encoders import paddle_runtime as pr
from voiceprint.encoders.mel import single_threaded_blas
from voiceprint.encoders.paddle_base import PaddleEncoder
from voiceprint.encoders.paddle_fetch import PretrainedSpec
from voiceprint.errors import AudioError, EncoderUnavailable

SPEC = PretrainedSpec(
    tag="panns_cnn14-32k",
    version="1.0",
    url="https://paddlespeech.cdn.bcebos.com/cls/panns_cnn14.tar.gz",
    md5="e3b9b5614a1595001161d0ab95edee97",
    required=("cnn14.pdparams",),
    env_var="VOICEPRINT_PANNS_MODEL_DIR",
    title="PANNs CNN14 (PaddleSpeech panns_cnn14-32k)",
)

#: CNN14's channel widths, conv blocks 1..6
CNN14_WIDTHS = (64, 128, 256, 512, 1024, 2048)
#: five 2x2 average poolings before the last block: 2**5 frames minimum
MIN_FRAMES = 32
#: clips per forward pass (2-8 measured alike; larger batches only grow memory)
MAX_BATCH = 4
#: what runs CNN14 by default (``runtime="auto"``): its ONNX export (see
#: :mod:`voiceprint.encoders.paddle_base`), several times faster than dygraph
#: and than paddle.inference, whose oneDNN kernels are fast only for an input
#: length seen before (a new length costs about 1 s of kernel generation)
DEFAULT_BACKEND = "onnxruntime"


@dataclass(frozen=True)
class FeatureConfig:
    """LogMelSpectrogram settings (Hz, samples)."""

    sample_rate: int = 32000
    n_fft: int = 1024
    hop_length: int = 320
    window: str = "hann"
    window_length: int = 1024
    f_min: float = 50.0
    f_max: float = 14000.0
    n_mels: int = 64


def read_feature_config(path: Path) -> FeatureConfig:
    """``feature:`` of ``panns.yaml`` (CLI spelling ``sample_rate``/``window_length``
    or recipe spelling ``sr``/``win_length``); defaults when the file is absent."""
    if not path.is_file():
        return FeatureConfig()
    import yaml

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EncoderUnavailable(f"cannot read {path.name}: {type(exc).__name__}") from exc
    feat = raw.get("feature", {}) if isinstance(raw, dict) else {}
    d = FeatureConfig()
    return FeatureConfig(
        sample_rate=int(feat.get("sample_rate", feat.get("sr", d.sample_rate))),
        n_fft=int(feat.get("n_fft", d.n_fft)),
        hop_length=int(feat.get("hop_length", d.hop_length)),
        window=str(feat.get("window", d.window)),
        window_length=int(feat.get("window_length", feat.get("win_length", d.window_length))),
        f_min=float(feat.get("f_min", d.f_min)),
        f_max=float(feat.get("f_max", d.f_max)),
        n_mels=int(feat.get("n_mels", d.n_mels)))


def checkpoint_widths(state: dict[str, np.ndarray]) -> tuple[tuple[int, ...], int, int]:
    """(conv block widths, embedding size, class count) read off tensor shapes."""
    try:
        widths = tuple(int(state[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7))
        emb, classes = (int(n) for n in state["fc_audioset.weight"].shape)
    except KeyError as exc:
        raise EncoderUnavailable(f"not a CNN14 checkpoint: no tensor {exc}") from exc
    return widths, emb, classes


def build_cnn14(widths: tuple[int, ...], emb_size: int, classes: int, *, lazy: bool = True) -> Any:
    """PaddleSpeech's ``CNN14(extract_embedding=True)`` in eval mode; ``lazy``:
    parameters left uninitialised, for a checkpoint to fill.

    A checkpoint with other widths (a scaled-down test model) gets a subclass
    that keeps CNN14's ``forward`` and only changes layer sizes.
    """
    pr.import_paddle()
    try:
        from paddlespeech.cls.models.panns.panns import CNN14, ConvBlock
    except ImportError as exc:
        raise EncoderUnavailable(
            f"paddlespeech is not installed ({exc}): pip install --no-deps paddlespeech==1.5.0") from exc
    guard = pr.lazy_init() if lazy else nullcontext()
    if widths == CNN14_WIDTHS and emb_size == CNN14.emb_size and classes == 527:
        with guard:
            model = CNN14(extract_embedding=True)
    else:
        import paddle.nn as nn

        class ScaledCNN14(CNN14):
            def __init__(self) -> None:
                nn.Layer.__init__(self)
                self.emb_size = emb_size
                self.bn0 = nn.BatchNorm2D(64)
                ins = (1, *widths[:-1])
                for i, (a, b) in enumerate(zip(ins, widths), start=1):
                    setattr(self, f"conv_block{i}", ConvBlock(in_channels=a, out_channels=b))
                self.fc1 = nn.Linear(widths[-1], emb_size)
                self.fc_audioset = nn.Linear(emb_size, classes)
                self.extract_embedding = True

        with guard:
            model = ScaledCNN14()
    model.eval()
    return model


def prepare_waveform(waveform: np.ndarray, min_samples: int) -> np.ndarray:
    """Validated, repeated up to ``min_samples``, peak-normalised float32 samples."""
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioError("empty waveform")
    if not np.isfinite(x).all():
        raise AudioError("waveform has NaN or infinite samples")
    if x.size < min_samples:
        x = np.tile(x, -(-min_samples // x.size))
    return mel.peak_normalize(x)


def log_mel(x: np.ndarray, fc: FeatureConfig) -> np.ndarray:
    """``LogMelSpectrogram`` (power 2, centred frames, reflect padding, Hann
    window, Slaney mel, dB with ref 1 and floor 1e-10) of one clip in numpy:
    ``(frames, n_mels)`` float32."""
    with single_threaded_blas():
        return mel.log_mel(x, sr=fc.sample_rate, n_fft=fc.n_fft, hop=fc.hop_length,
                           n_mels=fc.n_mels, fmin=fc.f_min, fmax=fc.f_max,
                           win_length=fc.window_length)


class PannsCnn14Encoder(PaddleEncoder):
    name = "panns_cnn14"
    dim = 2048
    sample_rate = 32000
    kind = "sound"
    pretrained: ClassVar[PretrainedSpec] = SPEC
    #: clips per forward pass (2-8 measured alike; larger batches only grow memory)
    max_batch: ClassVar[int] = 4
    graph_version: ClassVar[int] = 1
    frames_axis: ClassVar[int] = 1

    def read_config(self, root: Path) -> Path:
        self.feature_config = fc = read_feature_config(root / "panns.yaml")
        if fc.sample_rate != self.sample_rate or fc.n_mels != 64 or fc.window != "hann":
            raise EncoderUnavailable("panns.yaml: expected 32000 Hz, 64 mel bands and a hann window")
        self.min_samples = (MIN_FRAMES - 1) * fc.hop_length
        return root / "cnn14.pdparams"

    def build_layers(self) -> tuple[Any, Any]:
        state = pr.load_paddle_state_dict(self.weights)
        model = build_cnn14(*checkpoint_widths(state))
        pr.assign_state_dict(model, state, self.weights)
        return model, model

    def input_spec(self) -> list[Any]:
        from paddle.static import InputSpec

        return [InputSpec([None, 1, None, self.feature_config.n_mels], "float32", "feats")]

    def export_settings(self) -> Mapping[str, Any]:
        return {"n_mels": self.feature_config.n_mels}

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input ``(1, frames, 64)`` for one 32 kHz clip (log-mel, dB)."""
        x = prepare_waveform(waveform, self.min_samples)
        return log_mel(x, self.feature_config)[None]
