"""What the PaddleSpeech encoders (``ecapa_tdnn``, ``panns_cnn14``) share.

Loading: the checkpoint is found by :mod:`voiceprint.encoders.paddle_fetch`;
the paddle model is built only when needed (to export, to verify a new
export, or to run in dygraph): a verified cached ONNX export runs without
importing paddle (the front ends are numpy, :mod:`voiceprint.encoders.mel`).

Runtimes (``EncoderOptions.runtime``):

* ``"auto"`` (default): the ONNX export (``paddle.jit.save`` +
  ``paddle2onnx``, run by ONNX Runtime) when it verifies against
  PaddleSpeech's own dygraph forward, else dygraph with a logged reason;
* ``"onnx"``: that export or :class:`EncoderUnavailable`;
* ``"inference"`` / ``"onednn"``: a ``paddle.jit.save`` export run by
  ``paddle.inference`` without / with oneDNN, verified the same way, or an error;
* ``"native"`` / ``"dygraph"``: the paddle Layer itself.

Batching: clips of exactly equal frame count share a forward pass, up to
``max_batch`` (padding would change the outputs); a clip's embedding does not
depend on its batch-mates.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from voiceprint.encoders import paddle_runtime as pr
from voiceprint.encoders.base import Encoder, l2_normalize, length_buckets
from voiceprint.encoders.exports import (
    FP32,
    REDUCED,
    ExportKey,
    LoadedExport,
    Runner,
    RunnerChoice,
    file_sha256,
    load_export,
    select_runner,
)
from voiceprint.encoders.onnx_runtime import MODEL_FILE, OPSET, default_threads, ort_opener, quantize_int8
from voiceprint.encoders.options import EncoderOptions
from voiceprint.encoders.paddle_fetch import FetchSettings, PretrainedSpec, resolve_model_root
from voiceprint.errors import EncoderUnavailable

PADDLE_RUNTIMES = ("auto", "onnx", "inference", "onednn", "native", "dygraph")


def fetch_settings(options: EncoderOptions) -> FetchSettings:
    home = Path(options.paddlespeech_home).expanduser() if options.paddlespeech_home else None
    return FetchSettings(cache_dir=options.cache_path, paddlespeech_home=home, offline=options.offline)


class PaddleEncoder(Encoder):
    """Base class; subclasses read their config, build their Layers and compute features."""

    pretrained: ClassVar[PretrainedSpec]
    #: clips per forward pass
    max_batch: ClassVar[int] = 4
    #: bumped when the exported graph changes
    graph_version: ClassVar[int] = 1

    def __init__(self, model_root: str | Path, options: EncoderOptions | None = None) -> None:
        self.options = opts = options or EncoderOptions()
        if opts.runtime not in PADDLE_RUNTIMES:
            raise EncoderUnavailable(f"{self.name} runs on one of {', '.join(PADDLE_RUNTIMES)}, "
                                     f"not {opts.runtime!r}", reason="bad_encoder_option")
        self.model_root = Path(model_root)
        self.weights = self.read_config(self.model_root)
        self.num_threads = opts.threads or default_threads(None)
        self._lock = threading.Lock()
        self._layers: tuple[Any, Any] | None = None
        self.runner_choice = self._choose()
        self._run = self.runner_choice.runner
        self.backend = self.runner_choice.backend
        self._serialise = not self.backend.startswith("onnxruntime")
        from voiceprint.encoders.exports import probe_clips

        probe = self.features(probe_clips(self.sample_rate, (0.5,))[0])
        self.dim = int(self.forward(probe[None]).shape[-1])

    # -- subclass hooks ------------------------------------------------------
    def read_config(self, root: Path) -> Path:
        """Read settings next to the weights; return the weights file."""
        raise NotImplementedError

    def build_layers(self) -> tuple[Any, Any]:
        """(reference, export): paddle Layers mapping a feature batch to raw
        embeddings; ``reference`` is PaddleSpeech's own forward, ``export`` the
        one to export (may be the same Layer). Loads the checkpoint."""
        raise NotImplementedError

    def input_spec(self) -> list[Any]:
        raise NotImplementedError

    def export_settings(self) -> Mapping[str, Any]:
        return {}

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """Network input of one clip (no batch axis)."""
        raise NotImplementedError

    #: axis of :meth:`features`' output that varies with the clip's length
    frames_axis: ClassVar[int] = -1

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, model_dir: str | None = None, num_threads: int | None = None, *,
             allow_download: bool | None = None, **options: Any) -> "PaddleEncoder":
        """Find the checkpoint (``model_dir``, PaddleSpeech's cache, a download
        unless ``offline``) and load it. ``allow_download=False`` is the old
        spelling of ``offline=True``."""
        if allow_download is not None:
            options.setdefault("offline", not allow_download)
        opts = EncoderOptions.of(model_dir=model_dir, num_threads=num_threads, **options)
        root = resolve_model_root(cls.pretrained, opts.model_dir, fetch_settings(opts))
        return cls(root, opts)

    def layers(self) -> tuple[Any, Any]:
        if self._layers is None:
            pr.import_paddle()
            pr.set_paddle_threads(self.num_threads)
            self._layers = self.build_layers()
        return self._layers

    def dygraph(self, x: np.ndarray) -> np.ndarray:
        """PaddleSpeech's own forward (dygraph) on a feature batch."""
        return pr.dygraph_runner(self.layers()[0])(x)

    def _probe_inputs(self) -> list[np.ndarray]:
        from voiceprint.encoders.exports import probe_clips

        feats = [self.features(c) for c in probe_clips(self.sample_rate)]
        return [f[None] for f in feats] + [np.stack([feats[0], feats[0] * 0.5])]

    def _export(self, fmt: str, precision: str, onednn: bool = False) -> LoadedExport:
        opts = self.options
        exporter = (f"paddle2onnx {pr.paddle2onnx_version()}" if fmt == "onnx"
                    else f"paddle.jit {pr.paddle_version()}")
        key = ExportKey(model=self.name, weights_sha256=file_sha256(self.weights), exporter=exporter,
                        fmt=fmt, opset=OPSET, precision=precision, graph_version=self.graph_version,
                        settings={**self.export_settings(), "paddle": pr.paddle_version()})

        def build(directory: Path) -> list[str]:
            layer = self.layers()[1]
            if fmt != "onnx":
                return pr.export_static(layer, self.input_spec(), directory)
            name = MODEL_FILE if precision == "fp32" else "fp32.onnx"
            pr.export_onnx(layer, self.input_spec(), directory, opset=OPSET, model_file=name)
            if precision == "int8":
                quantize_int8(directory / name, directory / MODEL_FILE)
                (directory / name).unlink()
            return [MODEL_FILE]

        def open_static(directory: Path) -> Runner:
            return pr.StaticPredictor(directory, num_threads=self.num_threads, onednn=onednn)

        opener = ort_opener(self.num_threads, opts.ort_spin) if fmt == "onnx" else open_static
        return load_export(key, opts.cache_path, build=build, open_runner=opener,
                           reference=lambda: self.dygraph, probe_inputs=self._probe_inputs,
                           tolerance=FP32 if precision == "fp32" else REDUCED)

    def _choose(self) -> RunnerChoice:
        runtime = self.options.runtime
        precision = "fp32" if self.options.precision == "auto" else self.options.precision
        if runtime in ("native", "dygraph"):
            return RunnerChoice(self.dygraph, "dygraph")
        if runtime in ("inference", "onednn"):
            if precision != "fp32":
                raise EncoderUnavailable(f"paddle.inference runs fp32 only, not {precision}",
                                         reason="bad_encoder_option")
            onednn = runtime == "onednn"
            return select_runner(self.name, runtime, export=lambda: self._export("paddle.inference", "fp32", onednn),
                                 export_backend="paddle.inference+onednn" if onednn else "paddle.inference",
                                 native=lambda: self.dygraph, native_backend="dygraph",
                                 exported_runtimes=("inference", "onednn"))
        backend = "onnxruntime" if precision == "fp32" else f"onnxruntime-{precision}"
        return select_runner(self.name, runtime, export=lambda: self._export("onnx", precision),
                             export_backend=backend, native=lambda: self.dygraph, native_backend="dygraph")

    # -- inference -----------------------------------------------------------
    def forward(self, feats: np.ndarray) -> np.ndarray:
        """Raw embeddings ``(B, dim)`` of a feature batch."""
        if self._serialise:  # paddle predictors are not thread-safe
            with self._lock:
                return self._run(feats).reshape(len(feats), -1)
        return self._run(feats).reshape(len(feats), -1)

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        feats = [self.features(w) for w in waveforms]
        for idx in length_buckets([f.shape[self.frames_axis] for f in feats], self.max_batch):
            out[idx] = self.forward(np.stack([feats[i] for i in idx]))
        return l2_normalize(out)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "weights": self.model_root.name}
