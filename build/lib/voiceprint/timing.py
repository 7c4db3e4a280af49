"""Where a request's time goes: named stages, reported as a ``Server-Timing`` header.

The HTTP layer starts a :class:`Stopwatch` per request; code anywhere below
marks its work with ``with stage("embed"): ...`` (a no-op outside a request).
Durations are wall-clock milliseconds; a stage entered twice adds up.
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Iterator

_current: contextvars.ContextVar["Stopwatch | None"] = contextvars.ContextVar(
    "voiceprint_stopwatch", default=None)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stages: dict[str, float] = {}

    def add(self, name: str, ms: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + ms

    def header(self) -> str:
        """``decode;dur=3.1, embed;dur=41.0, ..., total;dur=52.4`` (RFC: Server-Timing)."""
        total = (time.perf_counter() - self.started) * 1000
        parts = [f"{k};dur={v:.1f}" for k, v in self.stages.items()]
        return ", ".join([*parts, f"total;dur={total:.1f}"])


def start() -> Stopwatch:
    watch = Stopwatch()
    _current.set(watch)
    return watch


def current() -> Stopwatch | None:
    return _current.get()


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as ``name`` on the current request's stopwatch (if any)."""
    watch = _current.get()
    if watch is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        watch.add(name, (time.perf_counter() - t0) * 1000)
