"""ONNX Runtime sessions and ONNX builders (torch.onnx, int8 quantisation).

``OrtRunner`` runs a one-input, one-output graph on CPU with
``intra_op_num_threads = num_threads`` (the encoder's thread setting),
one inter-op thread, sequential execution and all graph optimisations.
ONNX Runtime sessions are thread-safe; concurrent calls share the cores, so
a service should give each process ``cores / workers`` threads (see
``eval/bench_encoders.py --threads-grid``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from voiceprint.errors import EncoderUnavailable

log = logging.getLogger(__name__)

#: default ONNX opset of voiceprint's exports
OPSET = 17
MODEL_FILE = "model.onnx"
INSTALL_HINT = "pip install onnxruntime onnx"


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise EncoderUnavailable(f"onnxruntime is not installed ({exc}): {INSTALL_HINT}") from exc
    return onnxruntime


def default_threads(num_threads: int | None) -> int:
    """``num_threads``, else the number of usable cores."""
    if num_threads:
        return max(1, int(num_threads))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OrtRunner:
    """An ONNX Runtime CPU session for a one-input, one-output graph (numpy in/out).

    ``spin``: let idle intra-op threads spin between operators (faster on an
    otherwise idle machine, wasteful when other processes share the cores).
    """

    def __init__(self, path: str | Path, *, num_threads: int | None = None, spin: bool = False) -> None:
        ort = import_onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = default_threads(num_threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.num_threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        feed = {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}
        return self.session.run([self.output_name], feed)[0]


def ort_opener(num_threads: int | None, spin: bool = False) -> Callable[[Path], OrtRunner]:
    """``open_runner`` for :func:`voiceprint.encoders.exports.load_export`."""
    return lambda entry: OrtRunner(entry / MODEL_FILE, num_threads=num_threads, spin=spin)


def quantize_int8(src: Path, dst: Path, *, op_types: Sequence[str] | None = None) -> None:
    """Dynamic int8 quantisation of weights (activations quantised at run time,
    VNNI kernels where the CPU has them); ``op_types``: which ops (default:
    ONNX Runtime's choice)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # it warns once per tensor it cannot quantise
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(op_types) if op_types else None)
    finally:
        logging.disable(previous)


def onnxruntime_version() -> str:
    return str(import_onnxruntime().__version__)
