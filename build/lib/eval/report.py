"""Writing benchmark results: machine stamp, JSON, Markdown tables, PNG plots.

Every result directory holds ``results.json`` (everything, machine-readable),
``README.md`` (the same as tables) and the plots. Plots use matplotlib's
non-interactive Agg backend, so they work on headless machines.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Versions worth recording next to a measurement.
_PACKAGES = ("numpy", "faiss-cpu", "pymilvus", "milvus-lite", "milvus", "torch",
             "resemblyzer", "paddlepaddle", "paddlespeech", "scikit-learn")


def stamp() -> str:
    """Local time as ``YYYYmmdd-HHMMSS`` for result directory names."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (other jobs on the machine skew timings)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_stamp(**extra: Any) -> dict[str, Any]:
    """CPU model, cores, RAM (GiB), OS, Python and package versions, time, load."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "time": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": _git_commit(),
        "load_average": load_average(),
        "argv": sys.argv,
        **extra,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (numpy values converted, NaN/Inf -> null)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_jsonable(data), indent=2, ensure_ascii=False) + "\n")
    return p


def _cell(value: Any, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if fmt and isinstance(value, (int, float, np.number)):
        return format(value, fmt)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]],
                   columns: Sequence[tuple[str, str, str | None]]) -> str:
    """Rows as a Markdown table; ``columns`` are ``(key, header, format spec)``."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def markdown_dict(data: Mapping[str, Any]) -> str:
    """A flat mapping as a two-column Markdown table."""
    lines = ["| key | value |", "|---|---|"]
    for k, v in data.items():
        if isinstance(v, Mapping):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines)


def write_markdown(path: str | Path, title: str, sections: Iterable[tuple[str, str]]) -> Path:
    """A Markdown file: ``# title`` then ``## heading`` + body per section."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    p.write_text("\n".join(parts))
    return p


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recall_latency(rows: Sequence[Mapping[str, Any]], path: str | Path, *,
                        title: str, reference: tuple[float, float, str] | None = None) -> Path:
    """recall@10 (y) against p50 single-query latency in ms (x, log scale).

    One line per (backend, index) series, each point labelled with its search
    parameters. ``reference`` = ``(recall, latency_ms, label)`` draws a
    starred point, e.g. a published figure to compare against.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    series: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("p50_ms") is None or r.get("recall_at_10") is None:
            continue
        series.setdefault(f"{r['backend']} {r['index']}", []).append(r)
    for name, pts in series.items():
        xs = [p["p50_ms"] for p in pts]
        ys = [p["recall_at_10"] for p in pts]
        ax.plot(xs, ys, marker="o", label=name)
        for i, (p, x, y) in enumerate(zip(pts, xs, ys)):
            label = ",".join(f"{k}{v}" for k, v in (p.get("params") or {}).items())
            # near recall 1 the points crowd: label only the first and last there
            if label and (y < 0.995 or i in (0, len(pts) - 1)):
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7)
    if reference is not None:
        rec, lat, label = reference
        ax.plot([lat], [rec], marker="*", markersize=16, color="red", linestyle="none", label=label)
        ax.annotate(label, (lat, rec), textcoords="offset points", xytext=(-8, -18), ha="right",
                    color="red")
    ax.set_xscale("log")
    ax.set_xlabel("p50 single-query latency (ms, log scale)")
    ax.set_ylabel("recall@10 vs exact search")
    ax.set_ylim(min(0.5, ax.get_ylim()[0]), 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def plot_scores(genuine: np.ndarray, impostor: np.ndarray, path: str | Path, *,
                title: str, threshold: float | None = None) -> Path:
    """Histograms of genuine vs impostor cosine scores (density)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    lo = float(min(genuine.min(), impostor.min()))
    hi = float(max(genuine.max(), impostor.max()))
    bins = np.linspace(lo, hi, 60)
    ax.hist(impostor, bins=bins, density=True, alpha=0.55, label=f"impostor (n={impostor.size})")
    ax.hist(genuine, bins=bins, density=True, alpha=0.55, label=f"genuine (n={genuine.size})")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"EER threshold {threshold:.3f}")
    ax.set_xlabel("cosine score")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def plot_det(fpr: np.ndarray, fnr: np.ndarray, path: str | Path, *, title: str,
             eer: float | None = None) -> Path:
    """DET curve on normal-deviate axes (probit of the error rates)."""
    from scipy.stats import norm

    plt = _pyplot()
    eps = 1e-4
    x = norm.ppf(np.clip(fpr, eps, 1 - eps))
    y = norm.ppf(np.clip(fnr, eps, 1 - eps))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot(x, y, label="DET")
    if eer is not None:
        e = norm.ppf(np.clip(eer, eps, 1 - eps))
        ax.plot([e], [e], "ro", label=f"EER {100 * eer:.2f} %")
    ticks = np.array([0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    ax.set_xticks(norm.ppf(ticks))
    ax.set_xticklabels([f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks))
    ax.set_yticklabels([f"{100 * t:g}" for t in ticks])
    lim = norm.ppf([0.0005, 0.5])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, color="grey", linewidth=0.5)
    ax.set_xlabel("false accept rate (%)")
    ax.set_ylabel("false reject rate (%)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p
