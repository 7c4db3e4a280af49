"""``aisfx``: the aiSFX sound-effects embedding model (512-dim, 44.1 kHz, PyTorch).

Weights: ``aisfx/models/checkpoint.pth`` inside the ``aisfx`` 0.1.2 wheel
(``pip install --no-deps aisfx==0.1.2``; the wheel pins old numpy/librosa,
which are not needed), model "X-Sequential-CE" of A. B. Ma and A. Lerch,
"Representation Learning for the Automatic Indexing of Sound Effects
Libraries", ISMIR 2022, trained on professional sound-effects libraries;
weights CC BY 4.0, package code MIT. The file is found with importlib
without importing the package, and read with ``torch.load(weights_only=True)``
(nothing from it is executed); nothing is downloaded. The network itself is
vendored in :mod:`voiceprint.encoders.aisfx_model`.

Front end, as the package's own librosa path computes it
(``aisfx/spectrogram/spectrogram_librosa.py`` + ``preprocessing.py``):

* the clip (44.1 kHz mono) is scaled to peak 1.0;
* power mel spectrogram: librosa STFT (n_fft 2048, hann window 2048, hop
  1024 = 23.2 ms, centred frames, zero padding), 96 HTK mel bands 0-22050 Hz
  with unit-sum (``norm=1``) filters;
* ``log10(1 + 10^4 * mel) / 9.4578`` (the package's "original" min-max
  scaling, 9.4578 being the largest value of the training spectrograms);
* **as (frames, bands)**. The package's librosa path hands the network
  ``(bands, frames)``, while it was trained on ``(frames, bands)`` as the
  package's essentia path gives: transposing raised MP3 re-encode top-1
  from 52% to 100% (``/work/shared/FACTS.md``);
* blocks of 100 frames (2.32 s) with a hop of 50 frames, each embedded
  separately (the network maxes over time inside a block). The package
  drops a partial last block; here the last block is aligned with the end of
  the clip instead, so the whole clip counts. A clip shorter than one block
  (2.3 s) is repeated end to end until it fills one (the package crashes
  below about 1.2 s and zero-pads above; repeating beat zero-padding under
  noise: 20 dB top-3 90% vs 66%).

Inference runs through :func:`voiceprint.encoders.torch_runtime.choose_runner`
like the other torch encoders: ``runtime="auto"`` (default) uses an ONNX
export (cached under ``cache_dir``, keyed by the checkpoint's sha256 and
verified against PyTorch on probe clips) and falls back to PyTorch;
``"onnx"`` / ``"native"`` force one. Measured 27 vs 81 ms wall per block
(19 vs 54 ms CPU), batch 8, 2 threads, loaded machine.

Outputs: :meth:`AisfxEncoder.embed_blocks_batch` gives every block's
L2-normalised 512-dim vector (block ``i`` starts at ``i * 50`` frames, the
last one at ``frames - 100``); :meth:`embed_batch` gives the file-level
vector: the L2-normalised mean of the normalised block vectors.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from voiceprint.encoders.base import Encoder, l2_normalize
from voiceprint.encoders.exports import file_sha256, probe_clips
from voiceprint.encoders.options import EncoderOptions
from voiceprint.errors import AudioError, EncoderUnavailable

#: bump when the exported graph changes (invalidates cached exports)
GRAPH_VERSION = 1
INSTALL_ADVICE = "pip install --no-deps aisfx==0.1.2 (the wheel carries the weights)"
CHECKPOINT_NAME = "checkpoint.pth"


@dataclass(frozen=True)
class FrontEnd:
    """aiSFX log-mel settings (Hz, samples, frames)."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 96
    f_min: float = 0.0
    f_max: float = 22050.0
    #: the package's "original" min-max scaling: (spec - 0) / (9.4578 - 0)
    spec_max: float = 9.457798957824707
    block_frames: int = 100
    block_hop: int = 50

    @property
    def min_samples(self) -> int:
        """Shortest clip (samples) whose centred STFT has ``block_frames`` frames."""
        return (self.block_frames - 1) * self.hop_length

    @property
    def block_seconds(self) -> float:
        return self.block_frames * self.hop_length / self.sample_rate

    @property
    def hop_seconds(self) -> float:
        return self.block_hop * self.hop_length / self.sample_rate


FRONT_END = FrontEnd()


def wheel_checkpoint() -> Path:
    """``checkpoint.pth`` of the installed ``aisfx`` wheel, found without importing it."""
    try:
        spec = importlib.util.find_spec("aisfx")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / "models" / CHECKPOINT_NAME
        if path.is_file():
            return path
    if not locations:
        raise EncoderUnavailable(f"the aisfx encoder needs the aisfx package: {INSTALL_ADVICE}",
                                 reason="encoder_unavailable")
    raise EncoderUnavailable(f"the installed aisfx package has no models/{CHECKPOINT_NAME}; "
                             f"reinstall it: {INSTALL_ADVICE}")


def checkpoint_path(model_dir: str | Path | None = None) -> Path:
    """``model_dir/checkpoint.pth`` (or ``model_dir`` itself when it is the file), else the wheel's."""
    if model_dir is None:
        return wheel_checkpoint()
    path = Path(model_dir)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise EncoderUnavailable(f"no aiSFX checkpoint at the configured model directory "
                                 f"(expected {CHECKPOINT_NAME}); leave it unset to use the "
                                 f"wheel's: {INSTALL_ADVICE}")
    return path


def load_embedding_state(path: Path) -> dict[str, Any]:
    """The ``embedding_net.*`` tensors of an aiSFX checkpoint, prefix removed.

    The file is the pickled tuple ``(state_dict, ds_dict)``; ``ds_dict`` holds
    numpy integers, the only globals allowed besides tensors.
    """
    import torch

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    allowed = [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
               np.dtype, type(np.dtype(np.int64))]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise EncoderUnavailable(f"cannot read the aiSFX checkpoint ({type(exc).__name__}); "
                                 f"reinstall it: {INSTALL_ADVICE}") from exc
    state = obj[0] if isinstance(obj, (tuple, list)) else obj
    prefix = "embedding_net."
    emb = {k[len(prefix):]: v for k, v in dict(state).items() if k.startswith(prefix)}
    if "conv_block1.conv1.weight" not in emb:
        raise EncoderUnavailable("not an aiSFX checkpoint (no embedding_net.conv_block1 tensors)")
    return emb


def mel_basis(fe: FrontEnd = FRONT_END) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` HTK mel filters with unit sum, as the package asks librosa."""
    import librosa

    return librosa.filters.mel(sr=fe.sample_rate, n_fft=fe.n_fft, n_mels=fe.n_mels, fmin=fe.f_min,
                               fmax=fe.f_max, htk=True, norm=1.0).astype(np.float32)


def prepare_waveform(waveform: np.ndarray, fe: FrontEnd = FRONT_END) -> np.ndarray:
    """Validated float32 samples, repeated up to one block, scaled to peak 1.0."""
    x = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if x.size == 0:
        raise AudioError("empty waveform")
    if not np.isfinite(x).all():
        raise AudioError("waveform has NaN or infinite samples")
    if x.size < fe.min_samples:
        x = np.tile(x, -(-fe.min_samples // x.size))
    peak = float(np.max(np.abs(x)))
    return x / peak if peak > 0 else x


def log_mel(x: np.ndarray, basis: np.ndarray, fe: FrontEnd = FRONT_END) -> np.ndarray:
    """Scaled log-mel spectrogram ``(frames, n_mels)`` float32 of prepared samples."""
    import librosa

    spec = librosa.stft(x, n_fft=fe.n_fft, hop_length=fe.hop_length, win_length=fe.n_fft,
                        window="hann", center=True, pad_mode="constant")
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = basis @ power
    return (np.log10(mel * 10000.0 + 1.0) / fe.spec_max).T.astype(np.float32)


def block_starts(n_frames: int, fe: FrontEnd = FRONT_END) -> list[int]:
    """First frame of each block: every ``block_hop`` frames, the last one flush with the end."""
    if n_frames < fe.block_frames:
        raise ValueError(f"{n_frames} frames is shorter than one block ({fe.block_frames})")
    last = n_frames - fe.block_frames
    starts = list(range(0, last + 1, fe.block_hop))
    if starts[-1] != last:
        starts.append(last)
    return starts


def file_vector(blocks: np.ndarray) -> np.ndarray:
    """A sound's file-level vector: L2-normalised mean of its (normalised) block vectors."""
    return l2_normalize(np.asarray(blocks, dtype=np.float32).mean(axis=0, keepdims=True))[0]


class AisfxEncoder(Encoder):
    """aiSFX blocks of 2.3 s -> 512-dim vectors; file vector = mean of blocks."""

    name = "aisfx"
    dim = 512
    sample_rate = FRONT_END.sample_rate
    kind = "sound"
    #: file-vector cosine from which an insert is reported as ``near_duplicate_of`` a stored
    #: sound: 0.4% of 1,333 real game sounds reach it against a *distinct* sound (no shared
    #: recording); with the service's other rule (>= 17 aligned landmarks, 0.3%) 0.7% are
    #: flagged (``python -m eval.sounds``). The embedding space is narrow (a distinct
    #: sound's nearest neighbour scores a median 0.955), so cosine alone catches level
    #: changes and lossless copies; the landmarks catch noisy, band-limited and cut ones.
    near_duplicate_cosine: float = 0.9898

    def __init__(self, checkpoint: str | Path, options: EncoderOptions | None = None, *,
                 max_blocks: int = 32) -> None:
        try:
            import librosa  # noqa: F401

            from voiceprint.encoders import torch_runtime
            from voiceprint.encoders.aisfx_model import EmbeddingNet
        except ImportError as exc:
            raise EncoderUnavailable(f"the aisfx encoder needs torch and librosa ({exc}): "
                                     "pip install torch==2.13.0 librosa") from exc
        opts = options or EncoderOptions()
        self.checkpoint = Path(checkpoint)
        state = load_embedding_state(self.checkpoint)
        width = int(state["conv_block1.conv1.weight"].shape[0])
        self.dim = width * 8
        self.front_end = FRONT_END
        self._basis = mel_basis(self.front_end)
        self.max_blocks = max(1, int(max_blocks))

        def module() -> Any:
            model = EmbeddingNet(width)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise EncoderUnavailable(f"the aiSFX checkpoint does not fit the network: {exc}") from exc
            model.eval()
            return model

        fe = self.front_end
        choice = torch_runtime.choose_runner(
            self.name, opts, weights_sha256=file_sha256(self.checkpoint), module=module,
            example=np.zeros((2, fe.block_frames, fe.n_mels), np.float32), dynamic={0: "blocks"},
            probe_inputs=self._probe_inputs, default_precision="fp32",
            settings={"frames": fe.block_frames, "n_mels": fe.n_mels}, graph_version=GRAPH_VERSION)
        self._run = choice.runner
        self.backend = choice.backend
        self.runner_choice = choice

    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None,
             **options: Any) -> "AisfxEncoder":
        """Load the wheel's checkpoint (or ``model_dir``'s ``checkpoint.pth``); no network.
        ``options``: the other :class:`~voiceprint.encoders.options.EncoderOptions` fields."""
        opts = EncoderOptions.of(num_threads=num_threads, **options)
        return cls(checkpoint_path(model_dir), opts)

    def _probe_inputs(self) -> list[np.ndarray]:
        return [self.blocks(self.features(c)) for c in probe_clips(self.sample_rate)]

    # -- front end -------------------------------------------------------------------
    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input of one 44.1 kHz clip: scaled log-mel ``(frames >= 100, 96)``."""
        return log_mel(prepare_waveform(waveform, self.front_end), self._basis, self.front_end)

    def blocks(self, feats: np.ndarray) -> np.ndarray:
        """``(n_blocks, 100, 96)`` blocks of a feature matrix (see :func:`block_starts`)."""
        n = self.front_end.block_frames
        return np.stack([feats[s:s + n] for s in block_starts(feats.shape[0], self.front_end)])

    def run_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Raw (unnormalised) network outputs ``(n, dim)`` for ``(n, frames, 96)`` inputs."""
        out = [self._run(np.ascontiguousarray(blocks[start:start + self.max_blocks], np.float32))
               for start in range(0, len(blocks), self.max_blocks)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    # -- embeddings --------------------------------------------------------------------
    def embed_blocks_batch(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per clip, its block vectors ``(n_blocks_i, dim)``, float32, rows L2-normalised.

        Block ``j`` covers frames ``[start_j, start_j + 100)`` (2.32 s), starts
        every 50 frames (1.16 s), the last one ending with the clip.
        """
        per_clip = [self.blocks(self.features(w)) for w in waveforms]
        if not per_clip:
            return []
        vectors = l2_normalize(self.run_blocks(np.concatenate(per_clip)))
        bounds = np.cumsum([0, *(len(b) for b in per_clip)])
        return [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def embed_with_blocks(self, waveforms: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(file vectors (n, dim), block vectors per clip)`` from one pass over the blocks."""
        blocks = self.embed_blocks_batch(waveforms)
        files = (np.stack([file_vector(b) for b in blocks]) if blocks
                 else np.zeros((0, self.dim), np.float32))
        return files, blocks

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """File-level vectors ``(n, dim)``: L2-normalised mean of each clip's block vectors."""
        return self.embed_with_blocks(waveforms)[0]

    def describe(self) -> dict[str, object]:
        fe = self.front_end
        return {**super().describe(),
                "block_seconds": round(fe.block_seconds, 3), "hop_seconds": round(fe.hop_seconds, 3)}
