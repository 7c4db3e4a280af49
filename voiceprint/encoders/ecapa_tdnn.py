"""``ecapa_tdnn``: PaddleSpeech's ECAPA-TDNN speaker encoder (192-dim, 16 kHz).

Weights: PaddleSpeech's ``ecapatdnn_voxceleb12-16k`` checkpoint
(``sv0_ecapa_tdnn_voxceleb12_ckpt_0_2_0.tar.gz``: ``conf/model.yaml`` +
``model/model.pdparams``), found as :mod:`voiceprint.encoders.paddle_fetch`
describes. The training checkpoint wraps the backbone in a speaker
classifier (``SpeakerIdetification``), so its keys read ``backbone.*``; the
classifier's own keys are ignored.

Front end, as PaddleSpeech 1.5.0's ``VectorExecutor`` does it: peak
normalisation of the waveform (its loader's ``normal=True``), then
``paddlespeech.audio.compliance.librosa.melspectrogram`` (power mel bands in
dB, ``n_mels``/``window_size``/``hop_size`` from the yaml: 80 bands, 25 ms
window, 10 ms hop at 16 kHz), then mean normalisation over time (no variance
normalisation), computed in numpy by :mod:`voiceprint.encoders.mel`. The 192
outputs are L2-normalised.

Inference: see :mod:`voiceprint.encoders.paddle_base` (ONNX Runtime by
default; the exported graph is :mod:`voiceprint.encoders.ecapa_graph`,
checked against PaddleSpeech's own forward). Clips are never padded: padding
changes ECAPA's output (reflect padding at the edges).
"""
from __future__ import annotations

import inspect
from contextlib import nullcontext
from dataclasses import dataclass, field
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
    tag="ecapatdnn_voxceleb12-16k",
    version="1.0",
    url="https://paddlespeech.cdn.bcebos.com/vector/voxceleb/sv0_ecapa_tdnn_voxceleb12_ckpt_0_2_0.tar.gz",
    md5="cc33023c54ab346cd318408f43fcaf95",
    required=("conf/model.yaml", "model/model.pdparams"),
    env_var="VOICEPRINT_ECAPA_MODEL_DIR",
    title="ECAPA-TDNN (PaddleSpeech ecapatdnn_voxceleb12-16k)",
)

#: prefix of the backbone's keys in PaddleSpeech's training checkpoint
BACKBONE_PREFIX = "backbone."
#: shortest input in frames (10 ms each): the widest reflect padding is 4 frames
MIN_FRAMES = 8


@dataclass(frozen=True)
class EcapaConfig:
    """Front-end settings (Hz, samples) and ``EcapaTdnn`` keyword arguments."""

    sr: int = 16000
    n_mels: int = 80
    window_size: int = 400
    hop_size: int = 160
    model: dict[str, Any] = field(default_factory=dict)


def read_config(path: Path) -> EcapaConfig:
    """Read PaddleSpeech's ``conf/model.yaml`` (recipe ``sv0/conf/ecapa_tdnn.yaml``)."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EncoderUnavailable(f"cannot read {path.name}: {type(exc).__name__}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise EncoderUnavailable(f"{path.name} has no 'model:' section (EcapaTdnn arguments)")
    return EcapaConfig(sr=int(raw.get("sr", 16000)), n_mels=int(raw.get("n_mels", 80)),
                       window_size=int(raw.get("window_size", 400)),
                       hop_size=int(raw.get("hop_size", 160)), model=dict(raw["model"]))


def build_backbone(model_conf: dict[str, Any], *, lazy: bool = True) -> Any:
    """``paddlespeech.vector.models.ecapa_tdnn.EcapaTdnn(**model_conf)`` in eval
    mode; ``lazy``: parameters left uninitialised, for a checkpoint to fill."""
    pr.import_paddle()
    try:
        from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn
    except ImportError as exc:
        raise EncoderUnavailable(
            f"paddlespeech is not installed ({exc}): pip install --no-deps paddlespeech==1.5.0") from exc
    accepted = set(inspect.signature(EcapaTdnn.__init__).parameters) - {"self"}
    unknown = sorted(set(model_conf) - accepted)
    if unknown:
        raise EncoderUnavailable(f"model.yaml has unknown EcapaTdnn arguments: {', '.join(unknown)}")
    with pr.lazy_init() if lazy else nullcontext():
        model = EcapaTdnn(**model_conf)
    model.eval()
    return model


def backbone_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The backbone's tensors of a training checkpoint (``backbone.`` prefix
    stripped, classifier dropped); a bare backbone state dict passes as is."""
    if any(k.startswith(BACKBONE_PREFIX) for k in state):
        return {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    return dict(state)


def log_mel(waveform: np.ndarray, config: EcapaConfig) -> np.ndarray:
    """Mean-normalised log-mel features ``(n_mels, frames)`` of one clip, float32 (dB):
    ``melspectrogram(x, sr, n_mels, window_size, hop_size)`` of PaddleSpeech
    (its defaults: 50 Hz .. sr/2, Hann, centred) after peak normalisation."""
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioError("empty waveform")
    if not np.isfinite(x).all():
        raise AudioError("waveform has NaN or infinite samples")
    min_samples = (MIN_FRAMES - 1) * config.hop_size
    if x.size < min_samples:  # too short for the network: repeat the clip
        x = np.tile(x, -(-min_samples // x.size))
    with single_threaded_blas():
        feat = mel.log_mel(mel.peak_normalize(x), sr=config.sr, n_fft=config.window_size,
                           hop=config.hop_size, n_mels=config.n_mels, fmin=50.0,
                           fmax=float(config.sr // 2)).T
    return feat - feat.mean(axis=-1, keepdims=True)


class EcapaTdnnEncoder(PaddleEncoder):
    name = "ecapa_tdnn"
    dim = 192
    sample_rate = 16000
    kind = "speaker"
    pretrained: ClassVar[PretrainedSpec] = SPEC
    #: equal-length clips per forward pass; under ONNX Runtime batches of 1-8
    #: cost the same CPU per clip (about 100 ms per 5 s clip, loaded machine)
    max_batch: ClassVar[int] = 4
    graph_version: ClassVar[int] = 3

    def read_config(self, root: Path) -> Path:
        self.config = read_config(root / "conf" / "model.yaml")
        if self.config.sr != self.sample_rate:
            raise EncoderUnavailable(f"ECAPA model sample rate {self.config.sr} Hz, expected 16000")
        return root / "model" / "model.pdparams"

    def build_layers(self) -> tuple[Any, Any]:
        from voiceprint.encoders.ecapa_graph import layers

        backbone = build_backbone(self.config.model)
        pr.assign_state_dict(backbone, backbone_state(pr.load_paddle_state_dict(self.weights)),
                             self.weights)
        return layers(backbone)

    def input_spec(self) -> list[Any]:
        from paddle.static import InputSpec

        return [InputSpec([None, self.config.n_mels, None], "float32", "feats")]

    def export_settings(self) -> Mapping[str, Any]:
        return {"model": self.config.model, "n_mels": self.config.n_mels}

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input ``(n_mels, frames)`` for one 16 kHz clip."""
        return log_mel(waveform, self.config)
