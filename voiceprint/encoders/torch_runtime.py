"""Torch models behind ONNX Runtime: export with ``torch.onnx``, cache, verify, fall back.

Shared by the torch encoders (``campplus``, ``ge2e``). :func:`choose_runner`
wires :mod:`voiceprint.encoders.exports` for a torch module: the ONNX export
is keyed by the weights' sha256, verified against the module on probe inputs
and used when it matches; otherwise the module itself runs (``runtime="auto"``).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from voiceprint.encoders.exports import (
    FP32,
    REDUCED,
    ExportKey,
    Runner,
    RunnerChoice,
    load_export,
    select_runner,
)
from voiceprint.encoders.onnx_runtime import MODEL_FILE, OPSET, ort_opener, quantize_int8
from voiceprint.encoders.options import EncoderOptions
from voiceprint.errors import EncoderUnavailable

log = logging.getLogger(__name__)

TORCH_RUNTIMES = ("auto", "onnx", "native")


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise EncoderUnavailable(f"torch is not installed ({exc}): pip install torch") from exc
    return torch


def set_threads(num_threads: int | None) -> None:
    """torch's intra-op threads (process-wide) when ``num_threads`` is set."""
    if num_threads:
        import_torch().set_num_threads(int(num_threads))


def once(factory: Callable[[], Any]) -> Callable[[], Any]:
    """``factory`` called at most once; later calls return its first result."""
    if getattr(factory, "_once", False):
        return factory
    memo: list[Any] = []

    def call() -> Any:
        if not memo:
            memo.append(factory())
        return memo[0]

    call._once = True  # type: ignore[attr-defined]
    return call


def torch_runner(module: Any) -> Runner:
    """``module`` on float32 numpy batches under ``inference_mode``."""
    torch = import_torch()
    module.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return run


def export_onnx(module: Any, example: np.ndarray, path: Path, *, dynamic: Mapping[int, str],
                opset: int = OPSET) -> None:
    """``torch.onnx.export`` (TorchScript-based exporter) of a module with one
    input ``feats`` and one output ``emb``; ``dynamic``: input axis -> name."""
    torch = import_torch()
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(np.ascontiguousarray(example, np.float32)),),
                          str(path), dynamo=False, opset_version=opset, input_names=["feats"],
                          output_names=["emb"], do_constant_folding=True,
                          dynamic_axes={"feats": dict(dynamic), "emb": {0: dynamic.get(0, "batch")}})


def exporter_name() -> str:
    """``torch.onnx <version>``, read from the package metadata (no torch import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"torch.onnx {version('torch')}"
    except PackageNotFoundError as exc:
        raise EncoderUnavailable(f"torch is not installed ({exc}): pip install torch") from exc


def choose_runner(name: str, options: EncoderOptions, *, weights_sha256: str,
                  module: Callable[[], Any], example: np.ndarray, dynamic: Mapping[int, str],
                  probe_inputs: Callable[[], Sequence[np.ndarray]], default_precision: str = "fp32",
                  settings: Mapping[str, Any] | None = None, graph_version: int = 1,
                  int8_ops: Sequence[str] | None = None) -> RunnerChoice:
    """The runner for a torch model under ``options.runtime`` / ``precision``.

    ``module()`` builds the loaded torch module (called at most once, and
    only when the original must run: building or verifying an export, or as
    the fallback).
    """
    if options.runtime not in TORCH_RUNTIMES:
        raise EncoderUnavailable(f"{name} runs on one of {', '.join(TORCH_RUNTIMES)}, "
                                 f"not {options.runtime!r}", reason="bad_encoder_option")
    module = once(module)
    precision = default_precision if options.precision == "auto" else options.precision
    if precision != "fp32" and options.runtime == "auto":
        try:
            return choose_runner(name, replace(options, runtime="onnx", precision=precision),
                                 weights_sha256=weights_sha256, module=module, example=example,
                                 dynamic=dynamic, probe_inputs=probe_inputs, settings=settings,
                                 graph_version=graph_version, int8_ops=int8_ops)
        except EncoderUnavailable as exc:
            log.warning("%s: %s precision unusable (%s); using fp32", name, precision, exc.message)
            precision = "fp32"
    cache: dict[str, Runner] = {}

    def native() -> Runner:
        if "native" not in cache:
            set_threads(options.threads)
            cache["native"] = torch_runner(module())
        return cache["native"]

    def build(directory: Path) -> list[str]:
        target = directory / (MODEL_FILE if precision == "fp32" else "fp32.onnx")
        export_onnx(module(), example, target, dynamic=dynamic)
        if precision == "int8":
            quantize_int8(target, directory / MODEL_FILE, op_types=int8_ops)
            target.unlink()
        return [MODEL_FILE]

    key = ExportKey(model=name, weights_sha256=weights_sha256, exporter=exporter_name(),
                    precision=precision, graph_version=graph_version, settings=dict(settings or {}))

    def export() -> Any:
        return load_export(key, options.cache_path, build=build,
                           open_runner=ort_opener(options.threads, options.ort_spin),
                           reference=native, probe_inputs=probe_inputs,
                           tolerance=FP32 if precision == "fp32" else REDUCED)

    backend = "onnxruntime" if precision == "fp32" else f"onnxruntime-{precision}"
    return select_runner(name, options.runtime, export=export, export_backend=backend,
                         native=native, native_backend="torch")
