"""Where the workers run: ``local`` (this process) or ``ray`` (actors on a Ray cluster).

An engine is a dumb executor of batches; :mod:`voiceprint.bulk.pipeline`
decides what to send, in which order, and what to do when a worker dies.

``ray``: a pool of ``workers`` actors, each reserving ``cpus_per_worker``
CPUs and loading the encoder once (its threads = its CPUs). Each actor holds
at most :data:`PER_WORKER` batches, so the next batch is already there when
one finishes. Actors run with ``max_restarts=0`` and ``max_task_retries=0``:
a death surfaces as a failed batch here (and the actor is replaced) instead
of Ray retrying the same poisonous batch forever - which is what a Ray Data
``map_batches`` actor pool does (measured: a clip that kills its actor kept
the dataset at 16/20 blocks, restarting the actor every 10 s, until killed).

Why not Ray Data: besides the endless retries, a Ray Data actor pool lives
for one dataset execution, so isolating a bad clip or pipelining writes
behind the embedding would mean new pools (and new model loads); here one
pool serves the whole run and the driver decides about failures.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import socket
from typing import Any, Protocol

from voiceprint.bulk.worker import ClipEmbedder, EmbedRequest, EmbedResult, EncoderInfo, EncoderSpec
from voiceprint.config import Config
from voiceprint.errors import EncoderUnavailable, VoiceprintError

log = logging.getLogger(__name__)

#: batches queued on one Ray actor at a time
PER_WORKER = 2
#: actor deaths in a row, without any batch finishing in between, that stop the run
DEATHS_WITHOUT_PROGRESS = 6

#: a batch's outcome: its results, or "died" (the worker died with it) / "error" (it raised)
Completion = tuple[int, "list[EmbedResult] | str"]


class EngineError(VoiceprintError):
    """The workers cannot go on (they keep dying, or the cluster is unreachable)."""

    status = 503
    reason = "bulk_engine_failed"


class Engine(Protocol):
    name: str
    workers: int

    def start(self) -> EncoderInfo: ...
    def has_slot(self) -> bool: ...
    def submit(self, batch: list[EmbedRequest]) -> int: ...
    def wait(self, timeout: float) -> list[Completion]: ...
    def describe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def _info(ready: dict[str, Any]) -> EncoderInfo:
    if "error" in ready:
        raise EncoderUnavailable(f"a worker cannot load the encoder: {ready['error']}")
    return EncoderInfo(str(ready["name"]), int(ready["dim"]), int(ready["sample_rate"]),
                       str(ready["kind"]))


class LocalEngine:
    """One in-process worker: batches run synchronously in :meth:`submit`."""

    name = "local"
    workers = 1

    def __init__(self, spec: EncoderSpec, config: Config, kind: str) -> None:
        self.spec, self.config, self.kind = spec, config, kind
        self._worker: ClipEmbedder | None = None
        self._info: EncoderInfo | None = None
        self._done: list[Completion] = []
        self._tickets = itertools.count()

    def start(self) -> EncoderInfo:
        """Load the encoder (once; later calls return what it is)."""
        if self._info is None:
            self._worker = ClipEmbedder(self.spec, self.config, self.kind)
            self._info = _info(self._worker.ready())
        return self._info

    def has_slot(self) -> bool:
        return not self._done

    def submit(self, batch: list[EmbedRequest]) -> int:
        assert self._worker is not None, "start() first"
        ticket = next(self._tickets)
        self._done.append((ticket, self._worker.embed(batch)))
        return ticket

    def wait(self, timeout: float) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def describe(self) -> dict[str, Any]:
        return {"engine": "local", "workers": 1}

    def close(self) -> None:
        self._worker = None


class RayEngine:
    """``workers`` Ray actors running :class:`ClipEmbedder`.

    ``address``: ``"auto"`` starts a local Ray instance for the run (and stops
    it at :meth:`close`) - unlike ``ray.init(address="auto")``, which joins a
    running one; anything else (``host:6379``, ``ray://head:10001``) joins
    that cluster. Every node needs voiceprint installed and the model weights
    at the paths the driver's configuration names. ``worker_env`` is set in
    each actor's environment (the CLI passes the driver's ``VOICEPRINT_*``
    variables, so a remote worker reads the same settings).
    """

    name = "ray"

    def __init__(self, spec: EncoderSpec, config: Config, kind: str, *, address: str = "auto",
                 workers: int = 2, cpus_per_worker: float = 1.0,
                 worker_env: dict[str, str] | None = None,
                 init_options: dict[str, Any] | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.spec, self.config, self.kind = spec, config, kind
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.worker_env = dict(worker_env or {})
        self.init_options = dict(init_options or {})
        self._ray: Any = None
        self._started_ray = False
        self._actor_class: Any = None
        self._actors: list[Any] = []
        self._info: EncoderInfo | None = None
        self._load: list[int] = []  # batches queued on the slot's current actor
        self._generation: list[int] = []  # bumped when the slot's actor is replaced
        self._inflight: dict[Any, tuple[int, int, int]] = {}  # ref -> (ticket, slot, generation)
        self._tickets = itertools.count()
        self._deaths_in_row = 0
        self.deaths = 0
        self.pids: set[int] = set()

    # -- cluster ---------------------------------------------------------------------
    def _connect(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise EngineError("the ray engine needs Ray: pip install 'ray[default]'") from exc
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       **self.init_options}
            if self.address == "auto":
                cpus = max(1, int(round(self.workers * self.cpus_per_worker)))
                options.setdefault("num_cpus", cpus)
                ray.init(address="local", **options)
            else:
                _reachable(self.address)  # Ray itself retries an unreachable address forever
                try:
                    ray.init(address=self.address, **options)
                except Exception as exc:  # ConnectionError, ValueError, ... from Ray
                    log.error("cannot join the Ray cluster at %s: %s", self.address, exc)
                    raise EngineError("cannot join the Ray cluster at the given --address; "
                                      "check that it runs (`ray status`)") from exc
            self._started_ray = True
        return ray

    def _new_actor(self) -> Any:
        spec = self.spec if self.spec.num_threads else dataclasses.replace(
            self.spec, num_threads=max(1, int(self.cpus_per_worker)))
        actor = self._actor_class
        if self.worker_env:  # settings some encoders read from the environment (cache, backend)
            actor = actor.options(runtime_env={"env_vars": self.worker_env})
        return actor.remote(spec, self.config, self.kind)

    def start(self) -> EncoderInfo:
        """Join or start Ray and create the actors (once; later calls return the encoder)."""
        if self._info is not None:
            return self._info
        ray = self._ray = self._connect()
        self._actor_class = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0,
                                       max_task_retries=0)(ClipEmbedder)
        self._actors = [self._new_actor() for _ in range(self.workers)]
        self._load = [0] * self.workers
        self._generation = [0] * self.workers
        try:
            readies = ray.get([a.ready.remote() for a in self._actors])
        except ray.exceptions.RayActorError as exc:
            raise EngineError("a Ray worker died while loading the encoder") from exc
        infos = {_info(r) for r in readies}
        self.pids.update(int(r["pid"]) for r in readies)
        if len(infos) != 1:
            raise EngineError(f"the workers load different encoders: {sorted(map(str, infos))}")
        self._info = infos.pop()
        return self._info

    # -- batches -----------------------------------------------------------------------
    def has_slot(self) -> bool:
        return min(self._load) < PER_WORKER

    def submit(self, batch: list[EmbedRequest]) -> int:
        slot = min(range(len(self._actors)), key=lambda i: self._load[i])
        ticket = next(self._tickets)
        ref = self._actors[slot].embed.remote(batch)
        self._inflight[ref] = (ticket, slot, self._generation[slot])
        self._load[slot] += 1
        return ticket

    def wait(self, timeout: float) -> list[Completion]:
        if not self._inflight:
            return []
        ray = self._ray
        ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=timeout)
        if ready:  # everything else that is done too
            ready, _ = ray.wait(list(self._inflight), num_returns=len(self._inflight), timeout=0)
        out: list[Completion] = []
        for ref in ready:
            ticket, slot, generation = self._inflight.pop(ref)
            current = generation == self._generation[slot]
            if current:
                self._load[slot] -= 1
            try:
                out.append((ticket, ray.get(ref)))
                self._deaths_in_row = 0
            except ray.exceptions.RayActorError:
                out.append((ticket, "died"))
                if current:  # later failures of the same dead actor need no new one
                    self._replace(slot)
            except Exception as exc:  # noqa: BLE001 - the method raised (not a death)
                cause = getattr(exc, "cause", None)
                if isinstance(cause, EncoderUnavailable):  # a replacement could not load it
                    raise EncoderUnavailable(f"a Ray worker cannot load the encoder: "
                                             f"{cause.message}") from exc
                log.exception("a Ray worker failed a batch")
                out.append((ticket, "error"))
        return out

    def _replace(self, slot: int) -> None:
        """Put a fresh actor in ``slot``; its dead predecessor's other batches fail on their own."""
        self.deaths += 1
        self._deaths_in_row += 1
        if self._deaths_in_row > DEATHS_WITHOUT_PROGRESS:
            raise EngineError(f"Ray workers died {self._deaths_in_row} times in a row without "
                              "finishing a batch; see the Ray logs of the worker nodes")
        log.warning("a Ray worker died; starting a replacement (%d deaths so far)", self.deaths)
        try:
            self._ray.kill(self._actors[slot], no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._actors[slot] = self._new_actor()
        self._generation[slot] += 1
        self._load[slot] = 0

    def worker_stats(self) -> list[dict[str, float]]:
        """Per live actor: files handled and its process's CPU seconds."""
        if self._ray is None:
            return []
        try:
            return list(self._ray.get([a.stats.remote() for a in self._actors], timeout=30))
        except Exception:  # noqa: BLE001 - statistics only
            return []

    def describe(self) -> dict[str, Any]:
        stats = self.worker_stats()
        files = sum(s["files"] for s in stats)
        return {"engine": "ray", "workers": self.workers, "cpus_per_worker": self.cpus_per_worker,
                "address": self.address, "worker_deaths": self.deaths,
                "worker_cpu_s_per_file": round(sum(s["cpu_s"] for s in stats) / files, 4)
                if files else None}

    def close(self) -> None:
        ray, self._ray = self._ray, None
        if ray is None:
            return
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._actors = []
        self._info = None
        if self._started_ray:
            ray.shutdown()


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast (:class:`EngineError`) when nothing listens at a ``host:port`` /
    ``ray://host:port`` address; other forms are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(f"nothing answers at the Ray address given with --address "
                          f"({exc.strerror or type(exc).__name__}); check that the cluster runs "
                          "(`ray status` on its head node) and the port") from None


def make_engine(name: str, spec: EncoderSpec, config: Config, kind: str, *,
                address: str = "auto", workers: int = 2, cpus_per_worker: float = 1.0,
                worker_env: dict[str, str] | None = None) -> Engine:
    """``local`` or ``ray`` (see :class:`RayEngine` for ``address`` and ``worker_env``)."""
    if name == "local":
        return LocalEngine(spec, config, kind)
    if name == "ray":
        return RayEngine(spec, config, kind, address=address, workers=workers,
                         cpus_per_worker=cpus_per_worker, worker_env=worker_env)
    raise ValueError(f"unknown engine {name!r}; use local or ray")

