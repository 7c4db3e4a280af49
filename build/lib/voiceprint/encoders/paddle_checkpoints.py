"""Finding, unpacking, downloading and exporting PaddleSpeech checkpoints.

Shared by the ``ecapa_tdnn`` and ``panns_cnn14`` encoders. A model is looked
for, in this order:

1. the ``model_dir`` option, else the encoder's environment variable
   (``VOICEPRINT_ECAPA_MODEL_DIR`` / ``VOICEPRINT_PANNS_MODEL_DIR``): a
   directory holding the checkpoint files (directly or one or two levels
   down), or the PaddleSpeech ``.tar.gz`` archive itself, which is unpacked
   once into voiceprint's cache (keyed by the archive's md5);
2. PaddleSpeech's own cache, ``$PPSPEECH_HOME/models/<tag>/<version>/``
   (``PPSPEECH_HOME`` defaults to ``~/.paddlespeech``), where
   ``paddlespeech`` itself downloads and unpacks the same archives;
3. a download of PaddleSpeech's archive (URL and md5 from PaddleSpeech
   1.5.0's ``resource/pretrained_models.py``) into that same directory, with
   a short timeout. ``VOICEPRINT_OFFLINE=1`` skips it.

When all fail, :class:`~voiceprint.errors.EncoderUnavailable` says which file
to download, its md5 and where to put it.

Nothing here imports paddle except :func:`load_paddle_state_dict` and the
export helpers, so the module is cheap to import.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from voiceprint.errors import EncoderUnavailable

log = logging.getLogger(__name__)

#: seconds allowed for connecting to / reading from the download server
DOWNLOAD_TIMEOUT_S = 10.0

PADDLE_INSTALL_HINT = ("pip install paddlepaddle && pip install --no-deps paddlespeech==1.5.0 "
                       "&& pip install resampy soundfile scipy packaging colorlog pathos tqdm "
                       "h5py kaldiio braceexpand pyyaml")


@dataclass(frozen=True)
class PretrainedSpec:
    """One PaddleSpeech pretrained archive and the files a usable copy holds."""

    #: PaddleSpeech's model tag, e.g. ``ecapatdnn_voxceleb12-16k``
    tag: str
    version: str
    url: str
    md5: str
    #: paths relative to the model root, all of which must exist
    required: tuple[str, ...]
    #: environment variable that may point at a model directory or archive
    env_var: str
    #: human name used in messages
    title: str

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def ppspeech_home() -> Path:
    """PaddleSpeech's home: ``$PPSPEECH_HOME``, default ``~/.paddlespeech``."""
    env = os.environ.get("PPSPEECH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".paddlespeech"


def paddlespeech_model_dir(spec: PretrainedSpec) -> Path:
    """Where PaddleSpeech 1.5.0 downloads ``spec``: ``<home>/models/<tag>/<version>``."""
    return ppspeech_home() / "models" / spec.tag / spec.version


def voiceprint_cache_dir() -> Path:
    """voiceprint's own cache: ``$VOICEPRINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/voiceprint``."""
    env = os.environ.get("VOICEPRINT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "voiceprint"


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def find_model_root(directory: str | Path, required: tuple[str, ...],
                    max_depth: int = 2) -> Path | None:
    """The shallowest directory at most ``max_depth`` levels below ``directory``
    that holds every path in ``required``, or None."""
    level = [Path(directory)]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for d in level:
            if not d.is_dir():
                continue
            if all((d / r).is_file() for r in required):
                return d
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir()))
            except OSError:
                continue
        level = nxt
    return None


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith((".tar.gz", ".tgz", ".tar"))


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a tar archive into ``dest``, refusing members that leave it."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            target = (root / m.name).resolve()
            if target != root and root not in target.parents:
                raise EncoderUnavailable(f"archive {archive} has a member outside its root: {m.name}")
            if m.issym() or m.islnk():
                raise EncoderUnavailable(f"archive {archive} holds a link ({m.name}); refusing it")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest, members=members)


def unpack_to_cache(archive: Path, spec: PretrainedSpec) -> Path:
    """Unpack ``archive`` once into ``<cache>/paddlespeech/<name>-<md5>`` and
    return the model root inside it."""
    digest = file_md5(archive)
    stem = archive.name.split(".")[0]
    dest = voiceprint_cache_dir() / "paddlespeech" / f"{stem}-{digest[:16]}"
    root = find_model_root(dest, spec.required)
    if root is not None:
        return root
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=dest.parent))
    try:
        extract_archive(archive, tmp)
        if find_model_root(tmp, spec.required) is None:
            raise EncoderUnavailable(
                f"{archive} does not hold {', '.join(spec.required)}",
                details={"archive": str(archive), "required": list(spec.required)})
        if dest.exists() and find_model_root(dest, spec.required) is None:
            shutil.rmtree(dest, ignore_errors=True)  # an incomplete leftover
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first
            if find_model_root(dest, spec.required) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    root = find_model_root(dest, spec.required)
    assert root is not None
    return root


def download_file(url: str, dest: Path, md5: str, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` (atomically) and check its md5; raises OSError/ValueError."""
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            for block in iter(lambda: resp.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise ValueError(f"md5 mismatch for {url}: got {digest.hexdigest()}, expected {md5}")
    os.replace(part, dest)
    return dest


def _unpack_like_paddlespeech(archive: Path, spec: PretrainedSpec) -> Path | None:
    """Unpack an archive lying in PaddleSpeech's cache next to itself, as
    PaddleSpeech's downloader does, and return the model root."""
    extract_archive(archive, archive.parent)
    return find_model_root(archive.parent, spec.required)


def _no_weights_error(spec: PretrainedSpec, tried: list[str]) -> EncoderUnavailable:
    cache = paddlespeech_model_dir(spec)
    message = (
        f"{spec.title} weights not found. Download {spec.url} (md5 {spec.md5}) and either "
        f"set {spec.env_var} (or the encoder's model_dir option) to that archive or to the "
        f"directory it unpacks to, or put the archive in {cache}/ (PaddleSpeech's cache, "
        f"$PPSPEECH_HOME/models/{spec.tag}/{spec.version}). Tried: " + "; ".join(tried))
    return EncoderUnavailable(message, details={
        "url": spec.url, "md5": spec.md5, "env_var": spec.env_var,
        "cache_dir": str(cache), "tried": tried})


def resolve_model_root(spec: PretrainedSpec, model_dir: str | os.PathLike[str] | None = None, *,
                       allow_download: bool | None = None,
                       downloader: Callable[..., Path] | None = None,
                       timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Directory holding ``spec.required``, found as the module docstring says.

    An explicit ``model_dir`` (or the environment variable) that does not hold
    the model raises at once rather than falling through to other places.
    """
    explicit = model_dir if model_dir is not None else os.environ.get(spec.env_var) or None
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_dir():
            root = find_model_root(path, spec.required)
            if root is None:
                raise EncoderUnavailable(
                    f"{path} does not hold {', '.join(spec.required)} (the {spec.title} "
                    f"checkpoint; download {spec.url}, md5 {spec.md5})",
                    details={"model_dir": str(path), "url": spec.url, "md5": spec.md5})
            return root
        if is_archive(path):
            try:
                return unpack_to_cache(path, spec)
            except (OSError, tarfile.TarError) as exc:
                raise EncoderUnavailable(
                    f"cannot unpack {path} into {voiceprint_cache_dir()} ({exc}); set "
                    f"VOICEPRINT_CACHE_DIR to a writable directory or unpack it yourself",
                    details={"model_dir": str(path)}) from exc
        raise EncoderUnavailable(
            f"model_dir {path} is neither a directory nor a .tar.gz archive; download "
            f"{spec.url} (md5 {spec.md5})",
            details={"model_dir": str(path), "url": spec.url, "md5": spec.md5})

    tried: list[str] = []
    cache = paddlespeech_model_dir(spec)
    root = find_model_root(cache, spec.required)
    if root is not None:
        return root
    archive = cache / spec.archive_name
    if archive.is_file():
        if file_md5(archive) == spec.md5:
            try:
                root = _unpack_like_paddlespeech(archive, spec)
            except (OSError, tarfile.TarError) as exc:
                tried.append(f"{archive} (cannot unpack: {exc})")
            else:
                if root is not None:
                    return root
                tried.append(f"{archive} (does not hold {', '.join(spec.required)})")
        else:
            tried.append(f"{archive} (md5 is not {spec.md5})")
    else:
        tried.append(f"{cache} (no model files)")

    if allow_download is None:
        allow_download = os.environ.get("VOICEPRINT_OFFLINE", "").lower() not in ("1", "true", "yes")
    if not allow_download:
        tried.append("no download attempted (allow_download=False or VOICEPRINT_OFFLINE=1)")
        raise _no_weights_error(spec, tried)
    fetch = downloader or download_file
    started = time.monotonic()
    try:
        fetch(spec.url, archive, spec.md5, timeout=timeout)
        root = _unpack_like_paddlespeech(archive, spec)
    except (OSError, ValueError, tarfile.TarError, EncoderUnavailable) as exc:
        tried.append(f"download from {spec.url} failed after "
                     f"{time.monotonic() - started:.1f} s: {exc}")
        raise _no_weights_error(spec, tried) from exc
    if root is None:
        tried.append(f"downloaded {archive} but it does not hold {', '.join(spec.required)}")
        raise _no_weights_error(spec, tried)
    return root


# --------------------------------------------------------------------------- paddle parts

def import_paddle() -> Any:
    """``import paddle`` or raise :class:`EncoderUnavailable` with install instructions.

    The first import hides paddle's glog chatter (``GLOG_minloglevel=2`` unless
    already set) and its "No ccache found" warning.
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
        raise EncoderUnavailable(f"cannot read checkpoint {path}: {exc}",
                                 details={"path": str(path)}) from exc
    if not isinstance(raw, Mapping):
        raise EncoderUnavailable(f"checkpoint {path} is not a state dict", details={"path": str(path)})
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
            f"checkpoint {source} does not fit the model built from its config: " + "; ".join(parts),
            details={"path": str(source), "missing": missing[:20], "unexpected": unexpected[:20],
                     "bad_shape": bad_shape[:20]})
    model.set_state_dict({k: np.ascontiguousarray(state[k]) for k in own})


def lazy_init() -> Any:
    """Context in which new paddle Layers skip random initialisation
    (``paddle.LazyGuard``): their weights come from a checkpoint anyway, and
    initialising CNN14's 80 M parameters costs seconds."""
    paddle = import_paddle()
    guard = getattr(paddle, "LazyGuard", None)
    if guard is None:  # pragma: no cover - older paddle
        from contextlib import nullcontext
        return nullcontext()
    return guard()


_BLAS_CONTROLLER: Any = None


def single_threaded_blas() -> Any:
    """Context limiting numpy's BLAS to one thread (via threadpoolctl, when
    installed). The front ends' small matrix products run several times
    faster that way: threading them costs more than it saves, and idle BLAS
    threads spin on the cores paddle needs."""
    global _BLAS_CONTROLLER
    try:
        if _BLAS_CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or failing: run as is
        from contextlib import nullcontext
        return nullcontext()


def set_paddle_threads(num_threads: int | None) -> int:
    """Set paddle's CPU math threads for dygraph (process-wide); returns the count used."""
    n = int(num_threads) if num_threads else max(1, min(os.cpu_count() or 1, 8))
    try:
        from paddle.base import core
        core.set_num_threads(n)
    except (ImportError, AttributeError):  # pragma: no cover - other paddle builds
        pass
    return n


def export_cache_dir(name: str, key: Mapping[str, Any]) -> Path:
    """Directory for a static export of model ``name``; ``key`` (checkpoint
    md5, config, paddle version, ...) makes a stale export impossible."""
    paddle = import_paddle()
    blob = json.dumps({**key, "paddle": paddle.__version__, "format": 1}, sort_keys=True)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:20]
    return voiceprint_cache_dir() / "paddle-inference" / f"{name}-{digest}"


def export_static(layer: Any, input_spec: list[Any], out_dir: Path) -> Path:
    """``paddle.jit.to_static`` + ``jit.save`` of ``layer`` into ``out_dir``
    unless an export is already there; returns the path prefix
    (``<out_dir>/model``). Written to a temporary directory and renamed, so
    a concurrent process sees either no export or a complete one."""
    paddle = import_paddle()
    prefix = out_dir / "model"
    if _export_files(prefix) is not None:
        return prefix
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            static = paddle.jit.to_static(layer, input_spec=input_spec, full_graph=True)
            paddle.jit.save(static, str(tmp / "model"))
        if out_dir.exists() and _export_files(prefix) is None:
            shutil.rmtree(out_dir, ignore_errors=True)  # an incomplete leftover
        try:
            os.rename(tmp, out_dir)
        except OSError:  # another process finished first
            if _export_files(prefix) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if _export_files(prefix) is None:
        raise RuntimeError(f"paddle.jit.save wrote no model under {out_dir}")
    return prefix


def _export_files(prefix: Path) -> tuple[Path, Path] | None:
    params = prefix.with_suffix(".pdiparams")
    for ext in (".json", ".pdmodel"):
        graph = prefix.with_suffix(ext)
        if graph.is_file() and params.is_file():
            return graph, params
    return None


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no libc
        pass


@contextmanager
def stdout_to_stderr() -> Any:
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


class StaticPredictor:
    """A ``paddle.inference`` predictor for a one-input, one-output export.

    ``onednn`` turns on oneDNN kernels; ``num_threads`` is the CPU math
    thread count. Not thread-safe: one call at a time per instance.
    """

    def __init__(self, prefix: Path, *, num_threads: int, onednn: bool = True) -> None:
        import paddle.inference as pi

        files = _export_files(prefix)
        if files is None:
            raise RuntimeError(f"no exported model at {prefix}")
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


#: accepted values of the ``backend`` option / ``VOICEPRINT_PADDLE_BACKEND``
BACKENDS = ("auto", "inference", "onednn", "dygraph")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class PaddleRunner:
    """Runs a loaded paddle ``Layer`` on float32 batches (numpy in, numpy out).

    ``export_layer`` (default ``layer``) is what gets exported: the same
    function written for speed; it is accepted only if it matches ``layer``.
    ``cache_key()`` (called only when exporting: it may hash the checkpoint)
    names the export's cache directory.

    ``backend`` (else ``$VOICEPRINT_PADDLE_BACKEND``, else ``default_backend``):
      * ``"auto"``: a ``paddle.jit`` export of the layer, cached on
        disk under :func:`export_cache_dir` and run by ``paddle.inference``
        (oneDNN off or on, whichever ``prefer_onednn`` says), used only if its
        L2-normalised output on ``probe`` matches dygraph within ``atol``;
        otherwise (export failed, mismatch) dygraph, with a warning;
      * ``"inference"`` / ``"onednn"``: the export without / with oneDNN, and
        an error if it cannot be built or does not match;
      * ``"dygraph"``: the layer itself under ``paddle.no_grad``.
    ``self.backend`` says what runs; ``self.max_abs_diff`` what the check saw.
    Calls are serialised by a lock (a predictor is not thread-safe).
    """

    def __init__(self, layer: Any, *, name: str, input_spec: list[Any],
                 cache_key: Callable[[], Mapping[str, Any]],
                 probe: np.ndarray, num_threads: int, backend: str | None = None,
                 export_layer: Any = None, prefer_onednn: bool = False,
                 default_backend: str = "auto", atol: float = 1e-4) -> None:
        self._paddle = import_paddle()
        self._layer = layer
        self._lock = threading.Lock()
        self.num_threads = num_threads
        choice = (backend or os.environ.get("VOICEPRINT_PADDLE_BACKEND") or default_backend).lower()
        if choice not in BACKENDS:
            raise EncoderUnavailable(f"unknown paddle backend {choice!r}; choose one of {BACKENDS}")
        self.backend = "dygraph"
        self.max_abs_diff: float | None = None
        self.export_dir: Path | None = None
        self._predictor: StaticPredictor | None = None
        if choice == "dygraph":
            return
        onednn = choice == "onednn" or (choice == "auto" and prefer_onednn)
        try:
            self.export_dir = export_cache_dir(name, cache_key())
            target = export_layer if export_layer is not None else layer
            cached = _export_files(self.export_dir / "model") is not None
            try:
                predictor = self._checked_predictor(target, input_spec, probe, onednn, atol, name)
            except Exception:
                if not cached:
                    raise
                # a cached export may be damaged: rebuild it once
                shutil.rmtree(self.export_dir, ignore_errors=True)
                predictor = self._checked_predictor(target, input_spec, probe, onednn, atol, name)
        except Exception as exc:  # export/inference failures are many and varied
            if choice != "auto":
                raise EncoderUnavailable(f"paddle {choice} backend for {name} failed: {exc}") from exc
            log.warning("%s: paddle.inference export unusable (%s); running dygraph", name, exc)
            return
        self._predictor = predictor
        self._layer = None  # the predictor holds its own copy of the weights
        self.backend = "paddle.inference+onednn" if onednn else "paddle.inference"

    def _checked_predictor(self, export_layer: Any, input_spec: list[Any], probe: np.ndarray,
                           onednn: bool, atol: float, name: str) -> StaticPredictor:
        assert self.export_dir is not None
        prefix = export_static(export_layer, input_spec, self.export_dir)
        predictor = StaticPredictor(prefix, num_threads=self.num_threads, onednn=onednn)
        diff = float(np.abs(_unit_rows(predictor(probe)) - _unit_rows(self.dygraph(probe))).max())
        self.max_abs_diff = diff
        if not diff <= atol:
            raise RuntimeError(f"exported {name} differs from dygraph by {diff:.2e} > {atol:g}")
        return predictor

    def dygraph(self, x: np.ndarray) -> np.ndarray:
        """The reference layer under ``paddle.no_grad`` (released once a predictor runs)."""
        if self._layer is None:
            raise RuntimeError("the dygraph layer was released: this runner uses its predictor")
        paddle = self._paddle
        with paddle.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = self._layer(paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32)))
        return out.numpy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._predictor is not None:
                return self._predictor(x)
            return self.dygraph(x)
