"""Keep the workers busy ahead of the writer, in the writer's order.

The writer (the driver, writing through the services) walks a sequence of
files and asks for the results of the next few at a time (:meth:`take`). A
background thread reads that same sequence ahead (``source``: bytes read by
the driver, so the workers need no access to the files), groups the files
into batches, keeps every worker slot filled and collects the results, at
most ``max_ahead`` files ahead of the writer (memory stays bounded and the
embedding overlaps the writes).

A worker that dies takes its batches with it. Each file of a lost batch is
sent again alone; a file that kills its worker on :data:`SINGLE_ATTEMPTS`
attempts of its own is reported as ``worker_crashed`` and never reaches the
service (where it could kill the driver), and the rest of the run goes on.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from voiceprint.bulk.engines import Engine
from voiceprint.bulk.worker import EmbedRequest, EmbedResult

log = logging.getLogger(__name__)

#: attempts of a file on its own, after its batch was lost, before it counts as the culprit
SINGLE_ATTEMPTS = 2
#: seconds the pump waits for a worker (or the writer) before looking around again
POLL_S = 0.2


@dataclass(frozen=True)
class Feed:
    """One file of the writer's sequence as the driver read it.

    ``data`` None: the file could not be read (``reason``, ``message`` say why).
    ``embed`` False: the bytes are for the writer only (e.g. already stored).
    Either way the feed comes back from :meth:`EmbedPipeline.take` untouched.
    """

    key: int
    data: bytes | None
    filename: str | None = None
    embed: bool = True
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Done:
    """A file and what the workers made of it (``result`` None when it was not sent)."""

    feed: Feed
    result: EmbedResult | None


@dataclass
class PipelineStats:
    sent: int = 0
    embedded: int = 0
    not_embedded: int = 0
    crashed: int = 0
    batches: int = 0
    lost_batches: int = 0


@dataclass
class _Queued:
    requests: list[EmbedRequest]
    attempts: int = 0  # > 0: a file on its own after its batch was lost
    outcomes: list[str] = field(default_factory=list)


class EmbedPipeline:
    """``with EmbedPipeline(engine, source) as p: p.take([k1, k2])`` (the engine is started)."""

    def __init__(self, engine: Engine, source: Iterable[Feed], *, batch_size: int = 8,
                 max_ahead: int | None = None) -> None:
        self.engine = engine
        self.source = source
        self.batch_size = max(1, batch_size)
        # enough to fill every worker slot twice over, and never less than a writer's take
        self.max_ahead = max_ahead or max(256, 4 * engine.workers * self.batch_size)
        self.stats = PipelineStats()
        self._cond = threading.Condition()
        self._results: dict[int, Done] = {}
        self._pulled = 0
        self._taken = 0
        self._finished = False
        self._stop = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bulk-embed", daemon=True)

    # -- the writer's side -------------------------------------------------------------
    def __enter__(self) -> "EmbedPipeline":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def take(self, keys: Sequence[int]) -> dict[int, Done]:
        """Block until every key is done; its entries leave the pipeline."""
        if len(keys) > self.max_ahead:
            raise ValueError(f"take at most {self.max_ahead} keys at a time")
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if all(k in self._results for k in keys):
                    break
                if self._finished:
                    missing = [k for k in keys if k not in self._results]
                    raise KeyError(f"keys never fed to the pipeline: {missing[:5]}")
                self._cond.wait(POLL_S)
            out = {k: self._results.pop(k) for k in keys}
            self._taken += len(keys)
            self._cond.notify_all()
        return out

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    # -- the pump ------------------------------------------------------------------------
    def _publish(self, done: Done) -> None:
        with self._cond:
            self._results[done.feed.key] = done
            self._cond.notify_all()

    def _room(self) -> bool:
        with self._cond:
            return self._pulled - self._taken < self.max_ahead

    def _run(self) -> None:
        try:
            self._pump()
        except BaseException as exc:  # noqa: BLE001 - handed to the writer by take()
            log.debug("bulk pipeline stopped", exc_info=True)
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _pump(self) -> None:
        source: Iterator[Feed] = iter(self.source)
        exhausted = False
        partial: list[EmbedRequest] = []
        queue: deque[_Queued] = deque()
        inflight: dict[int, _Queued] = {}
        feeds: dict[int, Feed] = {}
        target = 2 * max(1, self.engine.workers)  # batches waiting beyond the ones in flight
        while not self._stop:
            while not exhausted and len(queue) < target:
                if not self._room():
                    break
                try:
                    feed = next(source)
                except StopIteration:
                    exhausted = True
                    break
                with self._cond:
                    self._pulled += 1
                if feed.data is None or not feed.embed:
                    self._publish(Done(feed, None))
                    continue
                feeds[feed.key] = feed
                partial.append(EmbedRequest(feed.key, feed.data, feed.filename))
                if len(partial) >= self.batch_size:
                    queue.append(_Queued(partial))
                    partial = []
            if partial and (exhausted or not self._room()):  # the writer may wait for them
                queue.append(_Queued(partial))
                partial = []
            while queue and self.engine.has_slot():
                item = queue.popleft()
                inflight[self.engine.submit(item.requests)] = item
                self.stats.batches += 1
            if inflight:
                for ticket, outcome in self.engine.wait(POLL_S):
                    self._settle(inflight.pop(ticket), outcome, queue, feeds)
            elif exhausted and not queue:
                return
            else:  # waiting for the writer to take results
                with self._cond:
                    if not self._stop:
                        self._cond.wait(POLL_S)

    def _settle(self, item: _Queued, outcome: list[EmbedResult] | str,
                queue: deque[_Queued], feeds: dict[int, Feed]) -> None:
        if isinstance(outcome, list):
            for req, res in zip(item.requests, outcome):
                self.stats.sent += 1
                if res.embedded:
                    self.stats.embedded += 1
                else:
                    self.stats.not_embedded += 1
                self._publish(Done(feeds.pop(req.key), res))
            return
        self.stats.lost_batches += 1
        if item.attempts == 0:  # the whole batch was lost: try its files one by one, first
            queue.extendleft(_Queued([r], 1) for r in reversed(item.requests))
            return
        item.outcomes.append(outcome)
        if item.attempts < SINGLE_ATTEMPTS:
            queue.appendleft(_Queued(item.requests, item.attempts + 1, item.outcomes))
            return
        req = item.requests[0]
        crashed = "died" in item.outcomes
        self.stats.sent += 1
        self.stats.crashed += crashed
        self.stats.not_embedded += 1
        log.warning("%s %s on its own %d times: %s", req.filename or req.key,
                    "killed its worker" if crashed else "failed", SINGLE_ATTEMPTS,
                    "reported, not stored")
        self._publish(Done(feeds.pop(req.key), EmbedResult(
            req.key, reason="worker_crashed" if crashed else "embedding_failed",
            message=("processing this file killed the worker process on each of "
                     f"{SINGLE_ATTEMPTS} attempts; it was not stored" if crashed else
                     "the worker failed on this file; it was not stored"))))
