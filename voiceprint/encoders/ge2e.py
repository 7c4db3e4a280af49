"""``ge2e``: the GE2E speaker encoder of resemblyzer (256-dim, 16 kHz).

Its pretrained weights ship inside the ``resemblyzer`` wheel
(``resemblyzer/pretrained.pt``), so it works offline. A clip is cut into
1.6 s partial windows (rate 1.3 per second), each window (160 frames of 40
mel bands: resemblyzer's ``wav_to_mel_spectrogram``, computed in numpy by
:mod:`voiceprint.encoders.mel`, 25 ms / 10 ms, power, no log) is embedded, and the clip's embedding is the L2-normalised mean of
its windows -- resemblyzer's ``embed_utterance``, batched over all windows of
all clips. A clip shorter than one window is repeated end to end to fill it
(resemblyzer pads with silence, which drags short clips towards one
"silence" embedding: on FSDD's 0.4 s digits the speaker EER measured 21%
padded vs 0% repeated, ``python -m eval.speakers``).

The network (3-layer LSTM, linear, ReLU, L2 norm) runs as an ONNX export by
default (see :mod:`voiceprint.encoders.torch_runtime`), else in torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from voiceprint.encoders.base import Encoder, l2_normalize
from voiceprint.encoders.exports import file_sha256, probe_clips
from voiceprint.encoders.mel import mel_power, single_threaded_blas
from voiceprint.encoders.options import EncoderOptions
from voiceprint.errors import AudioError, EncoderUnavailable

INSTALL_HINT = "pip install 'voiceprint[offline]' (torch==2.13.0 resemblyzer)"
#: frames (10 ms) and mel bands of one partial window
WINDOW_FRAMES = 160
N_MELS = 40
#: bumped when the exported graph changes
GRAPH_VERSION = 1
#: precision when ``precision="auto"`` (int8 measured: see eval/bench_encoders.py)
DEFAULT_PRECISION = "fp32"


def _import_resemblyzer() -> tuple[Any, Any]:
    try:
        from resemblyzer import VoiceEncoder
        from resemblyzer import audio as rz_audio
    except ImportError as exc:
        raise EncoderUnavailable(f"the ge2e encoder needs resemblyzer and torch ({exc}): "
                                 f"{INSTALL_HINT}") from exc
    return VoiceEncoder, rz_audio


def librosa_pad_mode() -> str:
    """How the installed librosa pads centred frames (resemblyzer's mel comes
    from it): zeros since librosa 0.10, reflection before."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(p) for p in version("librosa").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return "constant"
    return "constant" if (major, minor) >= (0, 10) else "reflect"


def weights_path() -> Path:
    """``pretrained.pt`` inside the installed resemblyzer package."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / "pretrained.pt"
        if path.is_file():
            return path
    raise EncoderUnavailable(f"the ge2e weights (resemblyzer/pretrained.pt) are missing: {INSTALL_HINT}",
                             reason="weights_missing")


class Ge2eEncoder(Encoder):
    name = "ge2e"
    dim = 256
    sample_rate = 16000
    kind = "speaker"

    def __init__(self, options: EncoderOptions | None = None, *, max_windows: int = 256) -> None:
        from voiceprint.encoders import torch_runtime

        opts = options or EncoderOptions()
        voice_encoder, self._audio = _import_resemblyzer()
        self._partial_slices = voice_encoder.compute_partial_slices
        self._pad_mode = librosa_pad_mode()
        weights = weights_path()
        self.max_windows = max_windows
        example = np.zeros((2, WINDOW_FRAMES, N_MELS), np.float32)

        def module() -> Any:
            model = voice_encoder(device="cpu", verbose=False)
            model.eval()
            return model

        choice = torch_runtime.choose_runner(
            self.name, opts, weights_sha256=file_sha256(weights), module=module, example=example,
            dynamic={0: "windows"}, probe_inputs=self._probe_inputs,
            default_precision=DEFAULT_PRECISION, settings={"frames": WINDOW_FRAMES, "n_mels": N_MELS},
            graph_version=GRAPH_VERSION, int8_ops=("MatMul", "Gemm", "LSTM"))
        self._run = choice.runner
        self.backend = choice.backend
        self.runner_choice = choice

    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None,
             **options: Any) -> "Ge2eEncoder":
        """``model_dir`` is ignored: the weights come from the resemblyzer wheel."""
        opts = EncoderOptions.of(num_threads=num_threads, **options)
        return cls(opts)

    def _probe_inputs(self) -> list[np.ndarray]:
        return [self.windows(c) for c in probe_clips(self.sample_rate)]

    def windows(self, wav: np.ndarray) -> np.ndarray:
        """Mel windows ``(n_windows, 160, 40)`` of one 16 kHz clip, as resemblyzer cuts them."""
        x = np.asarray(wav, dtype=np.float32).reshape(-1)
        if x.size == 0:
            raise AudioError("empty waveform")
        if not np.isfinite(x).all():
            raise AudioError("waveform has NaN or infinite samples")
        x = self._audio.normalize_volume(x, self._audio.audio_norm_target_dBFS, increase_only=True)
        window = int(self.sample_rate * WINDOW_FRAMES / 100)
        if x.size < window:
            x = np.tile(x, -(-window // x.size))[:window]
        wav_slices, mel_slices = self._partial_slices(x.size, 1.3, 0.75)
        needed = wav_slices[-1].stop
        if needed >= x.size:
            x = np.pad(x, (0, needed - x.size))
        with single_threaded_blas():
            spec = mel_power(x, sr=self.sample_rate, n_fft=400, hop=160, n_mels=N_MELS, fmin=0.0,
                             fmax=self.sample_rate / 2, pad_mode=self._pad_mode)
        return np.stack([spec[s] for s in mel_slices]).astype(np.float32)

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        if not len(waveforms):
            return np.zeros((0, self.dim), dtype=np.float32)
        windows = [self.windows(w) for w in waveforms]
        counts = [len(w) for w in windows]
        stacked = np.concatenate(windows)
        partial = np.concatenate([self._run(stacked[s:s + self.max_windows])
                                  for s in range(0, len(stacked), self.max_windows)])
        bounds = np.cumsum([0, *counts])
        means = np.stack([partial[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
        return l2_normalize(means)
