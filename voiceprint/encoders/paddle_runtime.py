"""Paddle parts: importing paddle, checkpoints into Layers, threads, static exports.

Exports are *built* here (``paddle.jit.save`` for ``paddle.inference``, then
``paddle2onnx`` for ONNX Runtime); caching and verification are
:mod:`voiceprint.encoders.exports`' job.
"""
from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from voiceprint.errors import EncoderUnavailable

PADDLE_INSTALL_HINT = ("pip install paddlepaddle && pip install --no-deps paddlespeech==1.5.0 "
                       "&& pip install resampy soundfile scipy packaging colorlog pathos tqdm "
                       "h5py kaldiio braceexpand pyyaml")
#: file prefix of a ``paddle.jit.save`` export inside its cache entry
STATIC_PREFIX = "model"


def import_paddle() -> Any:
    """``import paddle`` or raise :class:`EncoderUnavailable` with install instructions.

    The first import sets paddle's C++ log level (``GLOG_minloglevel=2``,
    unless the process set one) and hides its "No ccache found" warning.
    """
    if "paddle" not in sys.modules:
        os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ccache.*")
            import paddle
    except ImportError as exc:
        raise EncoderUnavailable(f"paddlepaddle is not installed ({exc}); {PADDLE_INSTALL_HINT}") from exc
    return paddle


def load_paddle_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a ``.pdparams`` file into name -> float array (numpy)."""
    paddle = import_paddle()
    try:
        raw = paddle.load(str(path), return_numpy=True)
    except Exception as exc:  # paddle raises assorted types for corrupt files
        raise EncoderUnavailable(f"cannot read checkpoint {path.name}: {type(exc).__name__}",
                                 reason="weights_unreadable") from exc
    if not isinstance(raw, Mapping):
        raise EncoderUnavailable(f"checkpoint {path.name} is not a state dict", reason="weights_unreadable")
    return {str(k): np.asarray(v) for k, v in raw.items()}


def assign_state_dict(model: Any, state: Mapping[str, np.ndarray], source: Path) -> None:
    """Copy ``state`` into ``model``'s parameters and buffers exactly; any
    missing, extra or wrongly shaped tensor raises :class:`EncoderUnavailable`."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state)
                       if tuple(own[k].shape) != tuple(np.shape(state[k])))
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if bad_shape:
            k = bad_shape[0]
            parts.append(f"{len(bad_shape)} with the wrong shape (e.g. {k}: checkpoint "
                         f"{tuple(np.shape(state[k]))}, model {tuple(own[k].shape)})")
        raise EncoderUnavailable(
            f"checkpoint {source.name} does not fit the model built from its config: " + "; ".join(parts),
            reason="weights_mismatch",
            details={"missing": missing[:20], "unexpected": unexpected[:20], "bad_shape": bad_shape[:20]})
    model.set_state_dict({k: np.ascontiguousarray(state[k]) for k in own})


def lazy_init() -> Any:
    """Context in which new paddle Layers skip random initialisation
    (``paddle.LazyGuard``): their weights come from a checkpoint anyway, and
    initialising CNN14's 80 M parameters costs seconds."""
    paddle = import_paddle()
    guard = getattr(paddle, "LazyGuard", None)
    return guard() if guard is not None else nullcontext()


def set_paddle_threads(num_threads: int | None) -> int:
    """Set paddle's CPU math threads for dygraph (process-wide); returns the count used."""
    n = int(num_threads) if num_threads else max(1, min(os.cpu_count() or 1, 8))
    try:
        from paddle.base import core
        core.set_num_threads(n)
    except (ImportError, AttributeError):  # pragma: no cover - other paddle builds
        pass
    return n


def paddle_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paddlepaddle")
    except PackageNotFoundError:
        return str(import_paddle().__version__)


def paddle2onnx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paddle2onnx")
    except PackageNotFoundError as exc:
        raise EncoderUnavailable(f"paddle2onnx is not installed ({exc}): pip install paddle2onnx") from exc


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no libc
        pass


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr for a while: paddle's C++ passes print
    to stdout, which would corrupt a CLI's JSON output."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real fd 1 (embedded interpreters)
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except ValueError:
            pass
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


def static_files(directory: Path) -> tuple[Path, Path] | None:
    """(graph, params) of a ``paddle.jit.save`` export in ``directory``, or None."""
    params = directory / f"{STATIC_PREFIX}.pdiparams"
    for ext in (".json", ".pdmodel"):
        graph = directory / f"{STATIC_PREFIX}{ext}"
        if graph.is_file() and params.is_file():
            return graph, params
    return None


def export_static(layer: Any, input_spec: list[Any], directory: Path) -> list[str]:
    """``paddle.jit.to_static`` + ``jit.save`` of ``layer`` into ``directory``;
    returns the file names written."""
    paddle = import_paddle()
    with warnings.catch_warnings(), stdout_to_stderr():
        warnings.simplefilter("ignore")
        static = paddle.jit.to_static(layer, input_spec=input_spec, full_graph=True)
        paddle.jit.save(static, str(directory / STATIC_PREFIX))
    files = static_files(directory)
    if files is None:
        raise RuntimeError("paddle.jit.save wrote no model")
    return [f.name for f in files]


def export_onnx(layer: Any, input_spec: list[Any], directory: Path, *, opset: int,
                model_file: str) -> list[str]:
    """``paddle.jit.save`` then ``paddle2onnx`` into ``directory/model_file``;
    the static files are removed afterwards. Returns ``[model_file]``."""
    import paddle2onnx

    files = export_static(layer, input_spec, directory)
    graph, params = static_files(directory)  # type: ignore[misc]
    with warnings.catch_warnings(), stdout_to_stderr():
        warnings.simplefilter("ignore")
        paddle2onnx.export(str(graph), str(params), str(directory / model_file),
                           opset_version=opset, enable_onnx_checker=True, verbose=False)
    for name in files:
        (directory / name).unlink(missing_ok=True)
    if not (directory / model_file).is_file():
        raise RuntimeError("paddle2onnx wrote no model")
    return [model_file]


class StaticPredictor:
    """A ``paddle.inference`` predictor for a one-input, one-output export.

    ``onednn`` turns on oneDNN kernels; ``num_threads`` is the CPU math
    thread count. Not thread-safe: callers serialise calls.
    """

    def __init__(self, directory: Path, *, num_threads: int, onednn: bool = False) -> None:
        import_paddle()
        import paddle.inference as pi

        files = static_files(directory)
        if files is None:
            raise RuntimeError("no exported paddle model")
        config = pi.Config(str(files[0]), str(files[1]))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(num_threads)
        if onednn:
            config.enable_onednn()
            config.set_onednn_cache_capacity(32)
        else:
            config.disable_onednn()
        config.disable_glog_info()
        with stdout_to_stderr():
            self._predictor = pi.create_predictor(config)
        self._input = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
        self._output = self._predictor.get_output_handle(self._predictor.get_output_names()[0])
        self._warm = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._input.reshape(list(x.shape))
        self._input.copy_from_cpu(x)
        if self._warm:
            self._predictor.run()
        else:  # the first run prints oneDNN pass notes on stdout
            with stdout_to_stderr():
                self._predictor.run()
            self._warm = True
        return self._output.copy_to_cpu()


def dygraph_runner(layer: Any) -> Any:
    """``layer`` under ``paddle.no_grad`` on float32 numpy batches."""
    paddle = import_paddle()
    layer.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with paddle.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return layer(paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return run
