"""``ecapa_tdnn``: PaddleSpeech's ECAPA-TDNN speaker encoder (192-dim, 16 kHz).

Weights: PaddleSpeech's ``ecapatdnn_voxceleb12-16k`` checkpoint
(``sv0_ecapa_tdnn_voxceleb12_ckpt_0_2_0.tar.gz``: ``conf/model.yaml`` +
``model/model.pdparams``), found as :mod:`voiceprint.encoders.paddle_checkpoints`
describes. The training checkpoint wraps the backbone in a speaker
classifier (``SpeakerIdetification``), so its keys read ``backbone.*``; the
classifier's own keys are ignored.

Front end, as PaddleSpeech 1.5.0's ``VectorExecutor`` does it: peak
normalisation of the waveform (its loader's ``normal=True``), then
``paddlespeech.audio.compliance.librosa.melspectrogram`` (power mel bands in
dB, ``n_mels``/``window_size``/``hop_size`` from the yaml: 80 bands, 25 ms
window, 10 ms hop at 16 kHz), then mean normalisation over time (no variance
normalisation). The 192 outputs are L2-normalised.

Inference: by default a ``paddle.jit`` export of the same network written
with ops that paddle's CPU kernels run fast (see ``_fast_forward``), cached
on disk keyed by the checkpoint's md5 and run by ``paddle.inference``; it is
used only if it matches PaddleSpeech's own forward (dygraph) within 1e-4 on
a probe input at load time, else dygraph runs (see
:class:`~voiceprint.encoders.paddle_checkpoints.PaddleRunner`). Clips are
embedded one by one and never padded: padding changes ECAPA's output
(reflect padding at the edges), and batching is no faster on CPU.
"""
from __future__ import annotations

import inspect
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from voiceprint.encoders.base import Encoder, l2_normalize
from voiceprint.encoders.paddle_checkpoints import (
    PretrainedSpec,
    PaddleRunner,
    assign_state_dict,
    file_md5,
    import_paddle,
    lazy_init,
    load_paddle_state_dict,
    resolve_model_root,
    set_paddle_threads,
    single_threaded_blas,
)
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
#: clips per forward pass. One: on CPU, paddle.inference runs ECAPA faster
#: clip by clip (about 245 ms CPU per 5 s clip) than in batches of 2-16 of
#: equal length (335-380 ms per clip: larger intermediates, more page faults)
MAX_BATCH = 1


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
        raise EncoderUnavailable(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise EncoderUnavailable(f"{path} has no 'model:' section (EcapaTdnn arguments)")
    return EcapaConfig(sr=int(raw.get("sr", 16000)), n_mels=int(raw.get("n_mels", 80)),
                       window_size=int(raw.get("window_size", 400)),
                       hop_size=int(raw.get("hop_size", 160)), model=dict(raw["model"]))


def build_backbone(model_conf: dict[str, Any], *, lazy: bool = True) -> Any:
    """``paddlespeech.vector.models.ecapa_tdnn.EcapaTdnn(**model_conf)`` in eval
    mode; ``lazy``: parameters left uninitialised, for a checkpoint to fill."""
    import_paddle()
    try:
        from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn
    except ImportError as exc:
        raise EncoderUnavailable(
            f"paddlespeech is not installed ({exc}): pip install --no-deps paddlespeech==1.5.0") from exc
    accepted = set(inspect.signature(EcapaTdnn.__init__).parameters) - {"self"}
    unknown = sorted(set(model_conf) - accepted)
    if unknown:
        raise EncoderUnavailable(f"model.yaml has unknown EcapaTdnn arguments: {', '.join(unknown)}")
    with lazy_init() if lazy else nullcontext():
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
    """Mean-normalised log-mel features ``(n_mels, frames)`` of one clip, float32 (dB)."""
    from paddlespeech.audio.backends.soundfile_backend import normalize
    from paddlespeech.audio.compliance.librosa import melspectrogram

    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioError("empty waveform")
    if not np.isfinite(x).all():
        raise AudioError("waveform has NaN or infinite samples")
    min_samples = (MIN_FRAMES - 1) * config.hop_size
    if x.size < min_samples:  # too short for the network: repeat the clip
        x = np.tile(x, -(-min_samples // x.size))
    x = normalize(x, "linear", 1.0).astype(np.float32)
    with single_threaded_blas():
        feat = melspectrogram(x=x, sr=config.sr, n_mels=config.n_mels,
                              window_size=config.window_size, hop_length=config.hop_size)
    feat = np.asarray(feat, dtype=np.float32)
    return feat - feat.mean(axis=-1, keepdims=True)


# ---------------------------------------------------------------- inference graph
# The same function as PaddleSpeech's EcapaTdnn.forward for one unpadded
# length (lengths=None), written with ops that paddle's CPU kernels run fast:
# reflect padding as slices + concat (pad3d is slow), squares as products
# (pow is slow), no all-ones masks, and the attention TDNN on
# [x; mean; std] split into a convolution of x plus a per-clip bias instead
# of a 3x wider concatenation. Parameters are the backbone's own.

def _reflect_pad(x: Any, p: int) -> Any:
    """Reflect-pad the time axis by ``p`` frames each side (``p`` < length)."""
    import paddle

    left = [x[:, :, i:i + 1] for i in range(p, 0, -1)]
    right = [x[:, :, -i - 1:-i] for i in range(1, p + 1)]
    return paddle.concat([*left, x, *right], axis=2)


def _conv(mod: Any, x: Any) -> Any:
    """PaddleSpeech ``Conv1d`` (padding "same", reflect, stride 1)."""
    pad = mod.dilation * (mod.kernel_size - 1) // 2
    return mod.conv(_reflect_pad(x, pad) if pad else x)


def _tdnn(block: Any, x: Any) -> Any:
    return block.norm(block.activation(_conv(block.conv, x)))


def _res2net(block: Any, x: Any) -> Any:
    import paddle

    ys = []
    y = None
    for i, x_i in enumerate(paddle.chunk(x, block.scale, axis=1)):
        if i == 0:
            y = x_i
        elif i == 1:
            y = _tdnn(block.blocks[i - 1], x_i)
        else:
            y = _tdnn(block.blocks[i - 1], x_i + y)
        ys.append(y)
    return paddle.concat(ys, axis=1)


def _se(block: Any, x: Any) -> Any:
    import paddle.nn.functional as F

    s = x.mean(axis=2, keepdim=True)
    s = F.relu(block.conv1.conv(s))
    return F.sigmoid(block.conv2.conv(s)) * x


def _se_res2net(block: Any, x: Any) -> Any:
    residual = _conv(block.shortcut, x) if block.shortcut else x
    y = _tdnn(block.tdnn2, _res2net(block.res2net_block, _tdnn(block.tdnn1, x)))
    return _se(block.se_block, y) + residual


def _stats(x: Any, w: Any, eps: float) -> tuple[Any, Any]:
    """Weighted mean and std over time; ``w`` sums to 1 along axis 2."""
    mean = (w * x).sum(axis=2, keepdim=True)
    d = x - mean
    return mean, (w * d * d).sum(axis=2, keepdim=True).clip(min=eps).sqrt()


def _asp(asp: Any, x: Any) -> Any:
    import paddle
    import paddle.nn.functional as F

    channels = x.shape[1]
    if asp.global_context:
        mean = x.mean(axis=2, keepdim=True)
        d = x - mean
        std = (d * d).mean(axis=2, keepdim=True).clip(min=asp.eps).sqrt()
        conv = asp.tdnn.conv.conv  # kernel 1 over [x; mean; std]
        w = conv.weight
        h = F.conv1d(x, w[:, :channels], bias=conv.bias)
        h = h + F.conv1d(mean, w[:, channels:2 * channels]) + F.conv1d(std, w[:, 2 * channels:])
        h = asp.tdnn.norm(asp.tdnn.activation(h))
    else:
        h = _tdnn(asp.tdnn, x)
    attn = F.softmax(asp.conv.conv(asp.tanh(h)), axis=2)
    mean, std = _stats(x, attn, asp.eps)
    return paddle.concat([mean, std], axis=1)


def _fast_forward(model: Any, x: Any) -> Any:
    import paddle

    xl = []
    for i, layer in enumerate(model.blocks):
        x = _tdnn(layer, x) if i == 0 else _se_res2net(layer, x)
        xl.append(x)
    x = _tdnn(model.mfa, paddle.concat(xl[1:], axis=1))
    x = model.asp_bn(_asp(model.asp, x))
    return model.fc.conv(x).squeeze(-1)


def _layers(backbone: Any) -> tuple[Any, Any]:
    """(reference, fast): Layers mapping features ``[B, n_mels, T]`` to
    embeddings ``[B, dim]``, with PaddleSpeech's forward / the fast one."""
    import paddle

    class _Reference(paddle.nn.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, feats: Any) -> Any:
            return self.inner(feats).squeeze(-1)

    class _Fast(paddle.nn.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, feats: Any) -> Any:
            return _fast_forward(self.inner, feats)

    reference, fast = _Reference(backbone), _Fast(backbone)
    reference.eval()
    fast.eval()
    return reference, fast


class EcapaTdnnEncoder(Encoder):
    name = "ecapa_tdnn"
    dim = 192
    sample_rate = 16000
    kind = "speaker"

    def __init__(self, model_root: str | os.PathLike[str], *, num_threads: int | None = None,
                 backend: str | None = None) -> None:
        root = Path(model_root)
        self.model_root = root
        self.config = read_config(root / "conf" / "model.yaml")
        if self.config.sr != self.sample_rate:
            raise EncoderUnavailable(f"{root}: model sample rate {self.config.sr} Hz, expected 16000")
        weights = root / "model" / "model.pdparams"
        backbone = build_backbone(self.config.model)
        self.dim = int(getattr(backbone, "emb_size", self.config.model.get("lin_neurons", 192)))
        assign_state_dict(backbone, backbone_state(load_paddle_state_dict(weights)), weights)
        self.num_threads = set_paddle_threads(num_threads)

        from paddle.static import InputSpec

        probe = np.random.default_rng(0).standard_normal(
            (2, self.config.n_mels, 150)).astype(np.float32) * 10.0
        reference, fast = _layers(backbone)
        self._runner = PaddleRunner(
            reference, export_layer=fast, name=self.name,
            input_spec=[InputSpec([None, self.config.n_mels, None], "float32", "feats")],
            cache_key=lambda: {"weights_md5": file_md5(weights), "model": self.config.model,
                               "graph": 2, "n_mels": self.config.n_mels},
            probe=probe, num_threads=self.num_threads, backend=backend)
        self.backend = self._runner.backend

    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None, *,
             backend: str | None = None, allow_download: bool | None = None) -> "EcapaTdnnEncoder":
        """Find the checkpoint (``model_dir``, ``$VOICEPRINT_ECAPA_MODEL_DIR``,
        PaddleSpeech's cache, download) and load it."""
        root = resolve_model_root(SPEC, model_dir, allow_download=allow_download)
        return cls(root, num_threads=num_threads, backend=backend)

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input ``(n_mels, frames)`` for one 16 kHz clip."""
        return log_mel(waveform, self.config)

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Clips are never padded (padding changes ECAPA's output), so only
        clips of equal frame count could share a forward pass, up to
        ``MAX_BATCH``; a clip's embedding does not depend on its batch-mates."""
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        feats = [self.features(w) for w in waveforms]
        groups: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            groups.setdefault(f.shape[1], []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), MAX_BATCH):
                chunk = idx[start:start + MAX_BATCH]
                emb = self._runner(np.stack([feats[i] for i in chunk]))
                out[chunk] = emb.reshape(len(chunk), -1)
        return l2_normalize(out)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "backend": self.backend, "weights": str(self.model_root)}
