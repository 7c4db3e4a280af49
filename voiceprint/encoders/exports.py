"""Exported inference graphs: built once per checkpoint, cached, verified, or refused.

Every encoder that runs an exported graph (ONNX for all four, paddle's static
format for ``ecapa_tdnn``'s ``paddle.inference`` runtime) goes through
:func:`load_export` and :func:`select_runner`:

* **Key.** An export is keyed by the checkpoint's content hash (sha256), the
  exporter and its version, the opset, the precision and voiceprint's own
  graph version (:class:`ExportKey`). Its cache entry is the directory
  ``<cache_dir>/exports/<model>-<precision>-<digest>/``; a new checkpoint,
  exporter or precision can never pick up a stale export.
* **Verification before first use.** A new export is run on probe inputs
  (features of probe clips, see :func:`probe_clips`) next to the original
  model; per probe the L2-normalised outputs must agree within
  :class:`Tolerance` (max abs difference and cosine). The inputs, the
  original's outputs and the verdict are stored in the entry
  (``probes.npz``, ``manifest.json``, with the sha256 of every file).
* **Later loads** need not build the original model: the entry's files must
  hash as recorded, the graph must load, and it must reproduce the stored
  outputs of the original within the same tolerance. Anything else means a
  damaged entry: it is deleted and rebuilt once.
* **Refusal.** An export whose outputs do not match is recorded as refused
  and never used (:class:`ExportRefused`); :func:`select_runner` then runs the
  original model with a logged reason (``runtime="auto"``) or raises
  :class:`~voiceprint.errors.EncoderUnavailable` when the export was asked for
  explicitly.

Entries are written to a temporary directory and renamed into place, so a
concurrent process sees either no entry or a complete one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from voiceprint.errors import EncoderUnavailable

log = logging.getLogger(__name__)

#: a model call on one float32 batch -> raw outputs ``(batch, ...)``
Runner = Callable[[np.ndarray], np.ndarray]

MANIFEST = "manifest.json"
PROBES = "probes.npz"
FORMAT = 1


class ExportFailed(RuntimeError):
    """The export could not be built or loaded."""


class ExportRefused(RuntimeError):
    """The export was built but its outputs do not match the original's."""


@dataclass(frozen=True)
class Tolerance:
    """Agreement required between export and original, per probe, on
    L2-normalised outputs: max abs difference and cosine similarity ([-1, 1])."""

    max_abs_diff: float
    min_cosine: float


#: same arithmetic, other kernels: float rounding only
FP32 = Tolerance(max_abs_diff=1e-3, min_cosine=0.9999)
#: reduced precision (int8, bf16): cosine >= 0.99 per clip
REDUCED = Tolerance(max_abs_diff=0.2, min_cosine=0.99)


@dataclass(frozen=True)
class ExportKey:
    """What makes two exports interchangeable."""

    model: str
    #: sha256 of the checkpoint's bytes
    weights_sha256: str
    #: e.g. "torch.onnx 2.13.0", "paddle2onnx 2.1.0"
    exporter: str
    #: "onnx" or "paddle.inference"
    fmt: str = "onnx"
    opset: int = 17
    #: "fp32", "int8", ...
    precision: str = "fp32"
    #: bumped when voiceprint changes how it builds the graph
    graph_version: int = 1
    #: model settings that shape the graph (config values)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "settings": dict(self.settings), "format": FORMAT}

    def digest(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def entry_name(self) -> str:
        return f"{self.model}-{self.fmt.replace('.', '_')}-{self.precision}-{self.digest()[:16]}"


@dataclass
class Verification:
    """How an export compared with the original on the probes."""

    max_abs_diff: float
    min_cosine: float
    probes: int
    passed: bool

    def summary(self) -> str:
        return (f"max abs diff {self.max_abs_diff:.2e}, min cosine {self.min_cosine:.6f} "
                f"over {self.probes} probes")


@dataclass
class LoadedExport:
    runner: Runner
    entry: Path
    verification: Verification
    #: "cached" or "built"
    source: str
    seconds: float


def _brief(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows flattened and L2-normalised in float64."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def compare(got: Sequence[np.ndarray], want: Sequence[np.ndarray], tol: Tolerance) -> Verification:
    """Per probe, L2-normalised rows of ``got`` vs ``want``."""
    diffs, cosines = [0.0], [1.0]
    for g, w in zip(got, want):
        a, b = unit_rows(g), unit_rows(w)
        if a.shape != b.shape or not np.isfinite(a).all():
            return Verification(float("inf"), -1.0, len(want), False)
        diffs.append(float(np.abs(a - b).max()))
        cosines.append(float((a * b).sum(axis=1).min()))
    v = Verification(max(diffs), min(cosines), len(want), False)
    v.passed = v.max_abs_diff <= tol.max_abs_diff and v.min_cosine >= tol.min_cosine
    return v


def probe_clips(sample_rate: int, seconds: Sequence[float] = (1.3, 3.7)) -> list[np.ndarray]:
    """Speech-like probe clips (no recordings ship with voiceprint): a voiced
    source with a gliding pitch, formant-like resonances moving at syllable
    rate, pauses and a little noise; peak 0.5. Deterministic."""
    from scipy.signal import lfilter

    clips = []
    for i, s in enumerate(seconds):
        rng = np.random.default_rng(1000 + i)
        n = int(round(s * sample_rate))
        t = np.arange(n) / sample_rate
        f0 = 110.0 + 25.0 * i + 30.0 * np.sin(2 * np.pi * 0.6 * t + i)
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        src = sum(np.sin(k * phase) / k for k in range(1, 30))
        y = np.zeros(n)
        for formant, width in ((650.0, 80.0), (1200.0, 120.0), (2500.0, 200.0)):
            f = min(formant * (1 + 0.15 * np.sin(2 * np.pi * 3.0 * s + i)), 0.45 * sample_rate)
            r = np.exp(-np.pi * width / sample_rate)
            y += lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / sample_rate), r * r], src)
        envelope = np.clip(np.sin(2 * np.pi * 2.5 * t + i) + 0.3, 0.0, None)
        x = y * envelope + 0.01 * rng.standard_normal(n) * np.abs(y).max()
        clips.append((0.5 * x / np.abs(x).max()).astype(np.float32))
    return clips


def _write_manifest(entry: Path, key: ExportKey, files: list[str], v: Verification,
                    meta: Mapping[str, Any]) -> None:
    manifest = {"key": key.as_dict(), "status": "ok" if v.passed else "refused",
                "verification": asdict(v), "files": {f: file_sha256(entry / f) for f in files},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **dict(meta)}
    (entry / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))


def _read_entry(entry: Path) -> dict[str, Any] | None:
    """The entry's manifest if every file it lists hashes as recorded, else None."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        if PROBES not in files:
            return None
        for name, digest in files.items():
            if file_sha256(entry / name) != digest:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_probes(path: Path, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
    arrays = {f"in{i}": a for i, a in enumerate(inputs)}
    arrays.update({f"out{i}": a for i, a in enumerate(outputs)})
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _load_probes(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with np.load(path) as data:
        n = sum(1 for k in data.files if k.startswith("in"))
        return [data[f"in{i}"] for i in range(n)], [data[f"out{i}"] for i in range(n)]


def load_export(key: ExportKey, cache_dir: str | Path, *,
                build: Callable[[Path], list[str]],
                open_runner: Callable[[Path], Runner],
                reference: Callable[[], Runner],
                probe_inputs: Callable[[], Sequence[np.ndarray]],
                tolerance: Tolerance = FP32) -> LoadedExport:
    """The verified export for ``key``, from the cache or built now.

    ``build(dir)`` writes the export into an empty directory and returns the
    file names it wrote; ``open_runner(dir)`` loads them; ``reference()``
    gives the original model (called only when building); ``probe_inputs()``
    the model inputs to compare on. Raises :class:`ExportFailed` or
    :class:`ExportRefused`.
    """
    started = time.perf_counter()
    root = Path(cache_dir).expanduser() / "exports"
    entry = root / key.entry_name
    if entry.exists():
        manifest = _read_entry(entry)
        if manifest is not None and manifest.get("status") == "refused":
            v = Verification(**manifest["verification"])
            raise ExportRefused(f"the {key.fmt} export ({key.precision}) does not match the original "
                                f"(recorded when it was built): {v.summary()}")
        problem = "files do not hash as recorded" if manifest is None else None
        if manifest is not None:
            try:
                runner = open_runner(entry)
                inputs, want = _load_probes(entry / PROBES)
                v = compare([runner(x) for x in inputs], want, tolerance)
            except Exception as exc:  # a damaged graph fails in many ways
                problem = f"cannot run it ({type(exc).__name__}: {exc})"
            else:
                if v.passed:
                    return LoadedExport(runner, entry, v, "cached", time.perf_counter() - started)
                problem = f"it no longer reproduces the original ({v.summary()})"
        log.warning("%s: cached export %s is damaged (%s); rebuilding it", key.model, entry.name, problem)
        shutil.rmtree(entry, ignore_errors=True)

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key.entry_name}-", dir=root))
    try:
        try:
            files = list(build(tmp))
            runner = open_runner(tmp)
        except Exception as exc:  # exporters fail in many ways
            log.warning("%s: export with %s failed: %s: %s", key.model, key.exporter,
                        type(exc).__name__, exc)
            raise ExportFailed(f"export with {key.exporter} failed: {_brief(exc)}") from exc
        inputs = [np.ascontiguousarray(x, dtype=np.float32) for x in probe_inputs()]
        original = reference()
        want = [np.asarray(original(x)) for x in inputs]
        try:
            got = [runner(x) for x in inputs]
        except Exception as exc:
            log.warning("%s: the export does not run: %s: %s", key.model, type(exc).__name__, exc)
            raise ExportFailed(f"the export does not run: {_brief(exc)}") from exc
        v = compare(got, want, tolerance)
        _save_probes(tmp / PROBES, inputs, want)
        _write_manifest(tmp, key, [*files, PROBES], v, {"tolerance": asdict(tolerance)})
        try:  # the runner has loaded the graph already; the files may move
            tmp.rename(entry)
        except OSError:  # another process finished first: its entry serves next time
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not v.passed:
        raise ExportRefused(f"the {key.fmt} export ({key.precision}) does not match the "
                            f"original: {v.summary()}; required max abs diff <= "
                            f"{tolerance.max_abs_diff:g} and cosine >= {tolerance.min_cosine:g}")
    log.info("%s: built %s export (%s) in %.1f s: %s", key.model, key.fmt, key.precision,
             time.perf_counter() - started, v.summary())
    return LoadedExport(runner, entry, v, "built", time.perf_counter() - started)


@dataclass
class RunnerChoice:
    """What :func:`select_runner` settled on."""

    runner: Runner
    #: e.g. "onnxruntime", "onnxruntime-int8", "torch", "dygraph"
    backend: str
    export: LoadedExport | None = None
    #: why the export is not used (``None`` when it is)
    fallback_reason: str | None = None


def select_runner(name: str, runtime: str, *, export: Callable[[], LoadedExport] | None,
                  export_backend: str, native: Callable[[], Runner], native_backend: str,
                  exported_runtimes: tuple[str, ...] = ("onnx",)) -> RunnerChoice:
    """``runtime``: ``"auto"`` (the export when it verifies, else the original
    with a logged reason), one of ``exported_runtimes`` (the export or
    :class:`EncoderUnavailable`) or ``"native"`` (the original)."""
    if runtime == "native" or export is None:
        return RunnerChoice(native(), native_backend)
    try:
        loaded = export()
    except (ExportFailed, ExportRefused, OSError) as exc:
        if runtime in exported_runtimes:
            detail = str(exc) if isinstance(exc, (ExportFailed, ExportRefused)) else type(exc).__name__
            raise EncoderUnavailable(f"{name}: the {export_backend} runtime is unusable: {detail}",
                                     reason="export_unusable") from exc
        log.warning("%s: not using %s (%s); running %s", name, export_backend, exc, native_backend)
        return RunnerChoice(native(), native_backend, fallback_reason=str(exc))
    return RunnerChoice(loaded.runner, export_backend, export=loaded)
