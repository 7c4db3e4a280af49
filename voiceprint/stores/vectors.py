"""Vector store: Milvus through pymilvus' ``MilvusClient``.

The same code talks to Milvus Lite (``uri`` is a local file path, the
embedded default; one process only) and to a Milvus server
(``http://host:19530``). Every collection has four fields:

* ``id`` (INT64, primary key): the relational row id of the utterance/sound
  (ids are never re-used by the database);
* ``owner`` (INT64): the speaker id (speaker collections) or library id;
* ``tenant`` (INT64, Milvus *partition key*): the tenant the row belongs to.
  Every search filters on it (:meth:`VectorStore.search` requires it), and
  the partition key makes Milvus search only the partitions that tenant
  hashes to, so one tenant's vectors are never ranked in another's results;
* ``vector`` (FLOAT_VECTOR, ``dim``): an L2-normalised embedding.

The metric is L2. Milvus returns the *squared* Euclidean distance ``d`` in
[0, 4] for unit vectors, so cosine similarity is ``1 - d / 2`` in [-1, 1];
:attr:`Hit.cosine` does that conversion.

Collections made before tenants existed (no ``tenant`` field) are *legacy*:
:meth:`VectorStore.ensure_collection` refuses them and ``voiceprint db
upgrade`` rebuilds them from the database, the source of truth.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from voiceprint.errors import StoreError, VoiceprintError

log = logging.getLogger(__name__)

#: Milvus' default limit on top-k; we keep requests well below it.
MAX_TOP_K = 16384


@dataclass(frozen=True)
class IndexSpec:
    """ANN index: type, build parameters and default search parameters."""

    index_type: str = "HNSW"
    metric: str = "L2"
    build_params: dict[str, Any] = field(default_factory=lambda: {"M": 16, "efConstruction": 200})
    search_params: dict[str, Any] = field(default_factory=lambda: {"ef": 64})

    @classmethod
    def named(cls, index_type: str) -> "IndexSpec":
        """Sensible parameters for ``HNSW``, ``IVF_FLAT``, ``IVF_SQ8`` or ``FLAT``."""
        kind = index_type.upper()
        if kind == "HNSW":
            return cls()
        if kind in ("IVF_FLAT", "IVF_SQ8"):
            return cls(kind, "L2", {"nlist": 1024}, {"nprobe": 16})
        if kind in ("FLAT", "BRUTE_FORCE"):
            return cls("FLAT", "L2", {}, {})
        raise ValueError(f"unsupported index type {index_type!r}; use HNSW, IVF_FLAT, IVF_SQ8 or FLAT")


@dataclass(frozen=True)
class Hit:
    """One search result. ``distance`` is squared L2 (0..4 for unit vectors)."""

    id: int
    owner: int
    distance: float

    @property
    def cosine(self) -> float:
        """Cosine similarity in [-1, 1] (vectors are L2-normalised)."""
        return 1.0 - self.distance / 2.0


def is_local_uri(uri: str) -> bool:
    """True for a Milvus Lite file URI (anything that is not http(s)/tcp/unix/grpc)."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:", "grpc://"))


class LegacyCollection(StoreError):
    """A collection created before tenants (no ``tenant`` field): rebuild it."""

    reason = "legacy_collection"


class VectorStore:
    """Collections of L2-normalised vectors keyed by relational ids.

    Thread-safe: calls to a Milvus Lite file are serialised with a lock (the
    engine is single-process and not designed for concurrent callers).
    """

    def __init__(self, uri: str, *, token: str | None = None,
                 index: IndexSpec | None = None, timeout: float = 60.0,
                 consistency: str = "Session") -> None:
        """``consistency``: Milvus read consistency of :meth:`search`. "Session"
        (default) sees this client's own inserts at once without waiting for the
        cluster-wide time tick that "Strong" waits for (measured: ~200 ms per
        search on a Milvus 2.3 server vs ~4 ms). Deletes may show a moment
        later, which is harmless: callers join hits with the database, the
        source of truth. Counts and id listings stay "Strong"."""
        from pymilvus import MilvusClient

        self.uri = uri
        self.consistency = consistency
        self.index = index or IndexSpec()
        self.timeout = timeout
        self.is_lite = is_local_uri(uri)
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.is_lite else contextlib.nullcontext())
        self._known: dict[str, int] = {}
        if self.is_lite:
            # Milvus Lite's in-process gRPC server logs a traceback for every
            # call pymilvus probes and then falls back from (AllocTimestamp).
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        try:
            kwargs: dict[str, Any] = {"uri": uri}
            if token:
                kwargs["token"] = token
            if not self.is_lite:
                kwargs["timeout"] = timeout
            self._client = MilvusClient(**kwargs)
        except Exception as exc:  # pymilvus raises many types; report one
            hint = ""
            if self.is_lite:
                hint = ("; a Milvus Lite file allows one process: if `voiceprint serve` or "
                        "another command has it open, stop it or use the HTTP API, or point "
                        "VOICEPRINT_MILVUS_URI at a Milvus server")
            log.error("cannot open Milvus at %s: %s", uri, exc)
            raise StoreError(f"cannot open the vector store{hint}") from exc

    # -- plumbing -------------------------------------------------------
    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[Any]:
        with self._lock:
            try:
                yield self._client
            except VoiceprintError:
                raise
            except Exception as exc:
                log.exception("Milvus %s failed", what)
                raise StoreError(f"the vector store failed ({what}); nothing was changed, "
                                 "try again") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    # -- collections ----------------------------------------------------
    def ensure_collection(self, name: str, dim: int) -> None:
        """Create ``name`` with the configured index if missing; check ``dim`` if present."""
        if self._known.get(name) == dim:
            return
        from pymilvus import DataType, MilvusClient

        with self._call("create collection") as client:
            if client.has_collection(name):
                existing = self._collection_dim(name)
                if not self._has_tenant_field(name):
                    raise LegacyCollection(
                        f"vector collection {name!r} predates tenants; run `voiceprint db "
                        "upgrade` to rebuild it from the database")
                if existing != dim:
                    raise VoiceprintError(
                        f"Milvus collection {name!r} holds {existing}-dim vectors but the "
                        f"encoder produces {dim}-dim; use another collection prefix or drop it",
                        reason="dimension_mismatch", status=409)
                client.load_collection(name)
            else:
                schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("id", DataType.INT64, is_primary=True)
                schema.add_field("owner", DataType.INT64)
                schema.add_field("tenant", DataType.INT64, is_partition_key=True)
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
                params = client.prepare_index_params()
                params.add_index(field_name="vector", index_type=self.index.index_type,
                                 metric_type=self.index.metric, params=self.index.build_params)
                client.create_collection(name, schema=schema, index_params=params,
                                         consistency_level="Strong")
        self._known[name] = dim

    def _ready(self, client: Any, name: str) -> bool:
        """True if ``name`` exists; loads it once per process (Milvus Lite reopens
        collections "released" after a crash, and searches fail until loaded)."""
        if name in self._known:
            return True
        if not client.has_collection(name):
            return False
        client.load_collection(name)
        self._known[name] = self._collection_dim(name)
        return True

    def _has_tenant_field(self, name: str) -> bool:
        info = self._client.describe_collection(name)
        return any(f["name"] == "tenant" for f in info["fields"])

    def is_legacy(self, name: str) -> bool:
        """True when ``name`` exists and has no ``tenant`` field."""
        with self._call("describe collection") as client:
            return bool(client.has_collection(name)) and not self._has_tenant_field(name)

    def collections(self, prefix: str = "") -> list[str]:
        """Names of the collections starting with ``prefix``."""
        with self._call("list collections") as client:
            return sorted(n for n in client.list_collections() if n.startswith(prefix))

    def _collection_dim(self, name: str) -> int:
        info = self._client.describe_collection(name)
        for f in info["fields"]:
            if f["name"] == "vector":
                return int(f["params"]["dim"])
        raise StoreError(f"collection {name!r} has no vector field")

    def has_collection(self, name: str) -> bool:
        with self._call("has_collection") as client:
            return bool(client.has_collection(name))

    def drop(self, name: str) -> None:
        with self._call("drop collection") as client:
            if client.has_collection(name):
                client.drop_collection(name)
        self._known.pop(name, None)

    def describe_index(self, name: str) -> dict[str, Any]:
        with self._call("describe index") as client:
            return dict(client.describe_index(name, "vector"))

    # -- rows -----------------------------------------------------------
    def _check_vectors(self, name: str, vectors: np.ndarray) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim != 2:
            raise VoiceprintError(f"vectors must be 2-D (n, dim), got shape {arr.shape}",
                                  reason="bad_vector")
        dim = self._known.get(name)
        if dim is not None and arr.shape[1] != dim:
            raise VoiceprintError(f"vectors have dim {arr.shape[1]}, collection {name!r} "
                                  f"holds {dim}", reason="bad_vector")
        if not np.isfinite(arr).all():
            raise VoiceprintError("vectors contain NaN or Inf", reason="bad_vector")
        return arr

    def _rows(self, name: str, ids: Sequence[int], vectors: np.ndarray,
              owners: Sequence[int], tenant: int) -> list[dict[str, Any]]:
        arr = self._check_vectors(name, vectors)
        if not (len(ids) == len(owners) == arr.shape[0]):
            raise ValueError("ids, owners and vectors differ in length")
        return [{"id": int(i), "owner": int(o), "tenant": int(tenant), "vector": v}
                for i, o, v in zip(ids, owners, arr)]

    def insert(self, name: str, ids: Sequence[int], vectors: np.ndarray,
               owners: Sequence[int], *, tenant: int, batch_size: int = 5000) -> None:
        """Insert rows (``ids[i]``, ``owners[i]``, ``vectors[i]``) of one ``tenant``."""
        rows = self._rows(name, ids, vectors, owners, tenant)
        with self._call("insert") as client:
            for start in range(0, len(rows), batch_size):
                client.insert(name, rows[start:start + batch_size])

    def upsert(self, name: str, ids: Sequence[int], vectors: np.ndarray,
               owners: Sequence[int], *, tenant: int) -> None:
        """Insert or replace rows of one ``tenant`` (idempotent: used to undo and repair).

        Done as delete + insert: Milvus 2.3's own upsert puts rows of a
        partition-key collection where a filtered search does not look (the
        row is counted but never found - measured on the 2.3.5 server).
        """
        rows = self._rows(name, ids, vectors, owners, tenant)
        if not rows:
            return
        with self._call("upsert") as client:
            client.delete(name, ids=[r["id"] for r in rows])
            client.insert(name, rows)

    def delete(self, name: str, ids: Sequence[int]) -> None:
        if not len(ids):
            return
        with self._call("delete") as client:
            if client.has_collection(name):
                client.delete(name, ids=[int(i) for i in ids])

    def flush(self, name: str) -> None:
        """Seal growing segments so the ANN index is built (server: segments; Lite: buffer)."""
        with self._call("flush") as client:
            client.flush(name)

    def wait_index(self, name: str, *, timeout_s: float = 3600.0,
                   poll_s: float = 2.0) -> dict[str, Any]:
        """Block until the ANN index covers every row and ``name`` is loaded with it.

        Server: polls ``describe_index`` until ``indexed_rows == total_rows`` and
        nothing is pending (the server builds indexes in the background after a
        flush, and brute-forces growing segments meanwhile). Both: then releases
        and reloads the collection, which makes Milvus Lite build its per-segment
        indexes at once and the server load the indexed segments. Returns the
        index state (type, state, indexed/total/pending rows).
        """
        import time

        deadline = time.monotonic() + timeout_s
        with self._call("wait for index") as client:
            while not self.is_lite:
                info = dict(client.describe_index(name, "vector"))
                total = int(info.get("total_rows", 0))
                if total and int(info.get("indexed_rows", 0)) >= total and \
                        int(info.get("pending_index_rows", 0)) == 0:
                    break
                if time.monotonic() > deadline:
                    raise StoreError(f"the index of {name!r} was not built in {timeout_s:.0f} s")
                time.sleep(poll_s)
            client.release_collection(name)
            client.load_collection(name, timeout=timeout_s)
            info = dict(client.describe_index(name, "vector"))
        return {k: info.get(k) for k in ("index_type", "state", "indexed_rows", "total_rows",
                                         "pending_index_rows")}

    def warm(self, name: str) -> bool:
        """Load ``name`` and run one throw-away search, so the first real search does not
        pay for the collection load and the connection's first round trips. False when
        the collection does not exist (yet)."""
        with self._call("warm up") as client:
            if not self._ready(client, name):
                return False
            dim = self._known[name]
            client.search(name, data=[np.zeros(dim, np.float32)], limit=1,
                          filter="tenant == -1", output_fields=["owner"],
                          search_params={"metric_type": self.index.metric,
                                         "params": dict(self.index.search_params)},
                          consistency_level=self.consistency)
        return True

    def count(self, name: str) -> int:
        with self._call("count") as client:
            if not self._ready(client, name):
                return 0
            res = client.query(name, filter="", output_fields=["count(*)"],
                               consistency_level="Strong")
            return int(res[0]["count(*)"])

    def ids(self, name: str, *, batch_size: int = 10000) -> set[int]:
        """All primary keys in ``name`` (for reconciliation with the database)."""
        out: set[int] = set()
        with self._call("query ids") as client:
            if not self._ready(client, name):
                return out
            it = client.query_iterator(name, batch_size=batch_size, filter="id >= 0",
                                       output_fields=["id"])
            while True:
                batch = it.next()
                if not batch:
                    it.close()
                    break
                out.update(int(r["id"]) for r in batch)
        return out

    def search(self, name: str, queries: np.ndarray, k: int, *, tenant: int,
               owners: Sequence[int] | None = None,
               search_params: dict[str, Any] | None = None) -> list[list[Hit]]:
        """k nearest rows of ``tenant`` for each query row; optionally only among ``owners``.

        Returns one list of :class:`Hit` per query, nearest first.
        """
        arr = self._check_vectors(name, np.atleast_2d(queries))
        if not 1 <= k <= MAX_TOP_K:
            raise VoiceprintError(f"k must be within 1..{MAX_TOP_K}", reason="bad_top_k")
        params = {"metric_type": self.index.metric,
                  "params": dict(search_params if search_params is not None
                                 else self.index.search_params)}
        if "ef" in params["params"]:
            params["params"]["ef"] = max(int(params["params"]["ef"]), k)
        flt = f"tenant == {int(tenant)}"
        if owners is not None:
            if not len(owners):
                return [[] for _ in range(arr.shape[0])]
            flt += f" and owner in [{','.join(str(int(o)) for o in owners)}]"
        with self._call("search") as client:
            if not self._ready(client, name):
                return [[] for _ in range(arr.shape[0])]
            res = client.search(name, data=[row for row in arr], limit=k, filter=flt,
                                output_fields=["owner"], search_params=params,
                                consistency_level=self.consistency)
        return [[Hit(int(h["id"]), int(h["entity"]["owner"]), float(h["distance"]))
                 for h in hits] for hits in res]
