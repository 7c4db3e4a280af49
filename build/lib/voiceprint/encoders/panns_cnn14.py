"""``panns_cnn14``: PaddleSpeech's PANNs CNN14 sound encoder (2048-dim, 32 kHz).

Weights: PaddleSpeech's ``panns_cnn14-32k`` archive (``panns_cnn14.tar.gz``:
``cnn14.pdparams``, ``panns.yaml``, ``audioset_labels.txt``), found as
:mod:`voiceprint.encoders.paddle_checkpoints` describes. The embedding is
``CNN14(extract_embedding=True)``'s output: the 2048-unit ReLU layer before
the AudioSet classifier.

Front end, as PaddleSpeech 1.5.0's ``CLSExecutor`` does it: peak
normalisation of the waveform (its loader's ``normal=True``), then
``paddle.audio.features.LogMelSpectrogram`` (32 kHz, n_fft 1024, hann window
1024, hop 320 = 10 ms, 50-14000 Hz, 64 mel bands, power in dB) with settings
from ``panns.yaml`` when it is there, as a ``[B, 1, T, 64]`` input. The
log-mel is computed in numpy with paddle's own window and filterbank (same
values within 1e-4 dB, several times faster than the paddle layer).

CNN14 halves time five times before its last block, so it needs at least 32
frames (0.32 s); shorter clips are repeated end to end up to that length
(PaddleSpeech itself fails on them). The 2048 outputs are L2-normalised.
Clips of equal length share a forward pass (never padded). Inference runs
in dygraph by default (see ``DEFAULT_BACKEND``).
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
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
#: CNN14 is all large convolutions, which paddle.inference runs no faster
#: than dygraph (its oneDNN kernels are faster only for an input length seen
#: before: a new length costs about 1 s of kernel generation); so dygraph,
#: which needs no export and keeps one copy of the 80 M weights. Override with
#: ``backend=`` or ``VOICEPRINT_PADDLE_BACKEND`` (``inference``, ``onednn``).
DEFAULT_BACKEND = "dygraph"


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
        raise EncoderUnavailable(f"cannot read {path}: {exc}") from exc
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
    import_paddle()
    try:
        from paddlespeech.cls.models.panns.panns import CNN14, ConvBlock
    except ImportError as exc:
        raise EncoderUnavailable(
            f"paddlespeech is not installed ({exc}): pip install --no-deps paddlespeech==1.5.0") from exc
    guard = lazy_init() if lazy else nullcontext()
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
    from paddlespeech.audio.backends.soundfile_backend import normalize

    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioError("empty waveform")
    if not np.isfinite(x).all():
        raise AudioError("waveform has NaN or infinite samples")
    if x.size < min_samples:
        x = np.tile(x, -(-min_samples // x.size))
    return normalize(x, "linear", 1.0).astype(np.float32)


def mel_filters(fc: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """(analysis window ``(window_length,)``, mel filterbank ``(n_mels, n_fft//2+1)``)
    exactly as ``paddle.audio.features.LogMelSpectrogram`` builds them."""
    import_paddle()
    from paddle.audio.functional import compute_fbank_matrix, get_window

    window = get_window(fc.window, fc.window_length, fftbins=True, dtype="float32").numpy()
    if fc.window_length < fc.n_fft:  # paddle.signal.stft centres a shorter window
        left = (fc.n_fft - fc.window_length) // 2
        window = np.pad(window, (left, fc.n_fft - fc.window_length - left))
    fbank = compute_fbank_matrix(sr=fc.sample_rate, n_fft=fc.n_fft, n_mels=fc.n_mels,
                                 f_min=fc.f_min, f_max=fc.f_max, htk=False, norm="slaney",
                                 dtype="float32").numpy()
    return window.astype(np.float32), fbank.astype(np.float32)


def log_mel(x: np.ndarray, fc: FeatureConfig, window: np.ndarray, fbank: np.ndarray) -> np.ndarray:
    """``LogMelSpectrogram`` (power 2, centred frames, reflect padding, dB with
    ref 1 and floor 1e-10) of one clip in numpy: ``(frames, n_mels)`` float32.
    Matches paddle's layer within 1e-4 dB at a fifth of its cost."""
    import scipy.fft

    half = fc.n_fft // 2
    xp = np.pad(x, half, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, fc.n_fft)[::fc.hop_length]
    spec = scipy.fft.rfft(frames * window, axis=1, workers=1)
    power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
    with single_threaded_blas():
        mel = power @ fbank.T
    return (10.0 * np.log10(np.maximum(mel, 1e-10))).astype(np.float32)


class PannsCnn14Encoder(Encoder):
    name = "panns_cnn14"
    dim = 2048
    sample_rate = 32000
    kind = "sound"

    def __init__(self, model_root: str | os.PathLike[str], *, num_threads: int | None = None,
                 backend: str | None = None) -> None:
        import_paddle()
        root = Path(model_root)
        self.model_root = root
        self.feature_config = fc = read_feature_config(root / "panns.yaml")
        if fc.sample_rate != self.sample_rate or fc.n_mels != 64:
            raise EncoderUnavailable(f"{root}/panns.yaml: expected 32000 Hz and 64 mel bands")
        weights = root / "cnn14.pdparams"
        state = load_paddle_state_dict(weights)
        widths, emb_size, classes = checkpoint_widths(state)
        model = build_cnn14(widths, emb_size, classes)
        assign_state_dict(model, state, weights)
        del state
        self.dim = emb_size
        self.num_threads = set_paddle_threads(num_threads)
        self._window, self._fbank = mel_filters(fc)
        self.min_samples = (MIN_FRAMES - 1) * fc.hop_length
        from paddle.static import InputSpec

        probe = np.random.default_rng(0).standard_normal((2, 1, 64, fc.n_mels)).astype(np.float32) * 10.0
        self._runner = PaddleRunner(
            model, name=self.name,
            input_spec=[InputSpec([None, 1, None, fc.n_mels], "float32", "feats")],
            cache_key=lambda: {"weights_md5": file_md5(weights), "widths": widths, "emb": emb_size},
            probe=probe, num_threads=self.num_threads, backend=backend,
            default_backend=DEFAULT_BACKEND)
        self.backend = self._runner.backend

    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None, *,
             backend: str | None = None, allow_download: bool | None = None) -> "PannsCnn14Encoder":
        """Find the checkpoint (``model_dir``, ``$VOICEPRINT_PANNS_MODEL_DIR``,
        PaddleSpeech's cache, download) and load it."""
        root = resolve_model_root(SPEC, model_dir, allow_download=allow_download)
        return cls(root, num_threads=num_threads, backend=backend)

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input ``(1, frames, 64)`` for one 32 kHz clip (log-mel, dB)."""
        x = prepare_waveform(waveform, self.min_samples)
        return log_mel(x, self.feature_config, self._window, self._fbank)[None]

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Clips of equal frame count share a forward pass (no padding)."""
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        feats = [self.features(w) for w in waveforms]
        groups: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            groups.setdefault(f.shape[1], []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), MAX_BATCH):
                chunk = idx[start:start + MAX_BATCH]
                out[chunk] = self._runner(np.stack([feats[i] for i in chunk])).reshape(len(chunk), -1)
        return l2_normalize(out)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "backend": self.backend, "weights": str(self.model_root)}
