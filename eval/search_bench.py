"""Nearest-neighbour search benchmark shared by ``eval.cnceleb`` (synthetic and real).

Given enrolled unit vectors (row ``i`` has id ``i``) and query vectors:

1. exact top-k ground truth by a chunked matrix product (inner product of
   unit vectors = cosine; ties broken by the lower id);
2. for each backend -- Milvus through :class:`voiceprint.stores.vectors.VectorStore`
   (Milvus Lite file or server), faiss (flat, HNSW, IVF) and exact numpy --
   a sweep of search parameters (HNSW ``ef``, IVF ``nprobe``) measuring
   recall@k against the ground truth, single-query latency (p50/p99 in ms,
   one query per call) and batch throughput (queries per second, ``batch``
   queries per call).

Latencies are wall-clock from the caller's side (``time.perf_counter``), so
Milvus numbers include the client, gRPC and result decoding -- what the
service sees.
"""
from __future__ import annotations

from voiceprint.scoring.cosine import cosine_matrix

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from voiceprint.scoring.metrics import recall_at_k

log = logging.getLogger(__name__)

HNSW_EF = (10, 16, 32, 64, 128, 256)
IVF_NPROBE = (1, 2, 4, 8, 16, 32, 64, 128)
COLLECTION = "bench_vectors"


# --------------------------------------------------------------------------- exact
def _sorted_topk(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best of a dense block: score descending, then id ascending."""
    kk = min(k, scores.shape[1])
    if scores.shape[1] > kk:
        part = np.argpartition(scores, scores.shape[1] - kk, axis=1)[:, -kk:]
        scores = np.take_along_axis(scores, part, 1)
        ids = np.take_along_axis(ids, part, 1)
    order = np.lexsort((ids, -scores), axis=1)  # last key first: score desc, then id
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def _merge_candidates(best_s: np.ndarray, best_i: np.ndarray, rows: np.ndarray,
                      cand_s: np.ndarray, cand_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge sparse candidates (row, score, id) into per-row sorted top-k arrays."""
    q, k = best_s.shape
    all_r = np.concatenate([np.repeat(np.arange(q), k), rows])
    all_s = np.concatenate([best_s.ravel(), cand_s])
    all_i = np.concatenate([best_i.ravel(), cand_i])
    order = np.lexsort((all_i, -all_s, all_r))
    all_r, all_s, all_i = all_r[order], all_s[order], all_i[order]
    rank = np.arange(all_r.size) - np.searchsorted(all_r, np.arange(q))[all_r]
    keep = rank < k
    return all_s[keep].reshape(q, k), all_i[keep].reshape(q, k)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int = 10, *,
               query_chunk: int = 512, base_chunk: int = 131_072, first_block: int = 8192,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by inner product; returns ``(ids int64 (n, k), scores float32 (n, k))``.

    For unit vectors the score is the cosine in [-1, 1] and the ranking equals
    the L2 ranking. Rows are ordered by score descending, then id ascending
    (on exact ties the lower id wins). Memory: one ``query_chunk x base_chunk``
    float32 block.

    Selection: the first ``first_block`` base rows give each query a running
    k-th best score; in every later block only entries strictly above it
    (few, once the running top-k is good) are gathered and merged. An entry
    equal to the k-th best cannot enter: its id is larger than those seen.
    """
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n, n_base = queries.shape[0], base.shape[0]
    k = min(k, n_base)
    out_ids = np.empty((n, k), dtype=np.int64)
    out_scores = np.empty((n, k), dtype=np.float32)
    head = min(n_base, max(first_block, k))
    starts = range(0, n, query_chunk)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="exact top-k", unit="chunk")
    for qs in starts:
        q = queries[qs:qs + query_chunk]
        sims = cosine_matrix(q, base[:head])
        best_s, best_i = _sorted_topk(
            sims, np.broadcast_to(np.arange(head, dtype=np.int64), sims.shape), k)
        for bs in range(head, n_base, base_chunk):
            sims = cosine_matrix(q, base[bs:bs + base_chunk])
            rows, cols = np.nonzero(sims > best_s[:, -1:])
            if rows.size:
                best_s, best_i = _merge_candidates(best_s, best_i, rows, sims[rows, cols],
                                                   cols.astype(np.int64) + bs)
        out_ids[qs:qs + q.shape[0]] = best_i
        out_scores[qs:qs + q.shape[0]] = best_s
    return out_ids, out_scores


# --------------------------------------------------------------------------- backends
@dataclass
class Backend:
    """A searchable index. Subclasses fill ``build`` / ``search`` / ``param_grid``."""

    name: str
    index: str
    build_info: dict[str, Any] = field(default_factory=dict)
    #: queries timed one at a time; queries run in batches (for recall and throughput)
    n_single: int = 1000
    n_batch: int | None = None

    def build(self, vectors: np.ndarray, owners: np.ndarray) -> None:
        raise NotImplementedError

    def param_grid(self) -> list[dict[str, Any]]:
        return [{}]

    def search(self, queries: np.ndarray, k: int, params: dict[str, Any]) -> np.ndarray:
        """Ids of the k nearest rows, shape (n, k), int64, padded with -1."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _pad(rows: Sequence[Sequence[int]], k: int) -> np.ndarray:
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for r, ids in enumerate(rows):
        ids = list(ids)[:k]
        out[r, :len(ids)] = ids
    return out


@dataclass
class NumpyExact(Backend):
    """Brute force with numpy/BLAS: the exact reference row."""

    name: str = "numpy"
    index: str = "exact"

    def build(self, vectors: np.ndarray, owners: np.ndarray) -> None:
        self._base = np.ascontiguousarray(vectors, dtype=np.float32)
        self.build_info = {"rows": int(vectors.shape[0]), "build_s": 0.0}

    def search(self, queries: np.ndarray, k: int, params: dict[str, Any]) -> np.ndarray:
        return exact_topk(self._base, queries, k)[0]


@dataclass
class FaissIndex(Backend):
    """faiss on inner product (= cosine for unit vectors): FLAT, HNSW or IVF_FLAT."""

    name: str = "faiss"
    index: str = "HNSW"
    hnsw_m: int = 16
    ef_construction: int = 200
    nlist: int = 1024
    ef_values: Sequence[int] = HNSW_EF
    nprobe_values: Sequence[int] = IVF_NPROBE

    def build(self, vectors: np.ndarray, owners: np.ndarray) -> None:
        import faiss

        x = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = x.shape[1]
        t0 = time.perf_counter()
        kind = self.index.upper()
        if kind == "FLAT":
            idx = faiss.IndexFlatIP(dim)
            params: dict[str, Any] = {}
        elif kind == "HNSW":
            idx = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = self.ef_construction
            params = {"M": self.hnsw_m, "efConstruction": self.ef_construction}
        elif kind == "IVF_FLAT":
            nlist = max(1, min(self.nlist, x.shape[0] // 39))
            quantizer = faiss.IndexFlatIP(dim)
            idx = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            idx.train(x)
            params = {"nlist": nlist}
            self._nlist = nlist
        else:
            raise ValueError(f"faiss backend: unsupported index {self.index!r}")
        idx.add(x)
        self._idx = idx
        self.build_info = {"rows": int(x.shape[0]), "build_s": time.perf_counter() - t0,
                           "build_params": params, "threads": faiss.omp_get_max_threads(),
                           "compile_options": faiss.get_compile_options()}

    def param_grid(self) -> list[dict[str, Any]]:
        kind = self.index.upper()
        if kind == "HNSW":
            return [{"ef": e} for e in self.ef_values]
        if kind == "IVF_FLAT":
            return [{"nprobe": p} for p in self.nprobe_values if p <= self._nlist]
        return [{}]

    def search(self, queries: np.ndarray, k: int, params: dict[str, Any]) -> np.ndarray:
        import faiss

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        kind = self.index.upper()
        if kind == "HNSW":
            sp = faiss.SearchParametersHNSW(efSearch=max(int(params["ef"]), k))
            _, ids = self._idx.search(q, k, params=sp)
        elif kind == "IVF_FLAT":
            sp = faiss.SearchParametersIVF(nprobe=int(params["nprobe"]))
            _, ids = self._idx.search(q, k, params=sp)
        else:
            _, ids = self._idx.search(q, k)
        return ids.astype(np.int64)


@dataclass
class MilvusIndex(Backend):
    """Milvus (Lite file or server) through the service's :class:`VectorStore`."""

    name: str = "milvus"
    index: str = "HNSW"
    uri: str = ""
    insert_batch: int = 10_000
    ef_values: Sequence[int] = HNSW_EF
    nprobe_values: Sequence[int] = IVF_NPROBE
    index_timeout_s: float = 3600.0
    build_params: dict[str, Any] | None = None
    #: None = through VectorStore.search (its own level); else a pymilvus consistency level
    consistency: str | None = None

    def _spec(self) -> Any:
        from voiceprint.stores.vectors import IndexSpec

        spec = IndexSpec.named(self.index)
        if self.build_params:
            spec = IndexSpec(spec.index_type, spec.metric,
                             {**spec.build_params, **self.build_params}, spec.search_params)
        return spec

    def build(self, vectors: np.ndarray, owners: np.ndarray) -> None:
        from tqdm import tqdm

        from voiceprint.stores.vectors import VectorStore

        spec = self._spec()
        self.store = VectorStore(self.uri, index=spec, timeout=600.0)
        self.store.drop(COLLECTION)
        self.store.ensure_collection(COLLECTION, vectors.shape[1])
        n = vectors.shape[0]
        t0 = time.perf_counter()
        with tqdm(total=n, desc=f"insert {self.name}", unit="vec", unit_scale=True) as bar:
            for start in range(0, n, self.insert_batch):
                stop = min(n, start + self.insert_batch)
                self.store.insert(COLLECTION, list(range(start, stop)), vectors[start:stop],
                                  owners[start:stop].tolist(), tenant=1,
                                  batch_size=self.insert_batch)
                bar.update(stop - start)
        t_insert = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.store.flush(COLLECTION)
        t_flush = time.perf_counter() - t1
        t2 = time.perf_counter()
        index_state = self.store.wait_index(COLLECTION, timeout_s=self.index_timeout_s)
        t_index = time.perf_counter() - t2
        count = self.store.count(COLLECTION)
        self.build_info = {
            "rows": count, "uri_kind": "lite" if self.store.is_lite else "server",
            "index_type": spec.index_type, "build_params": spec.build_params,
            "insert_s": t_insert, "insert_rows_per_s": n / t_insert if t_insert else None,
            "flush_s": t_flush, "index_and_load_s": t_index, "index_state": index_state,
            "build_s": t_insert + t_flush + t_index,
        }
        if count != n:
            log.warning("%s holds %d rows after insert, expected %d", self.name, count, n)

    def param_grid(self) -> list[dict[str, Any]]:
        kind = self.index.upper()
        if kind == "HNSW":
            return [{"ef": e} for e in self.ef_values]
        if kind.startswith("IVF"):
            nlist = int(self._spec().build_params.get("nlist", 1024))
            return [{"nprobe": p} for p in self.nprobe_values if p <= nlist]
        return [{}]

    def variant(self, consistency: str | None, *, label: str | None = None,
                n_single: int | None = None, n_batch: int | None = None) -> "MilvusIndex":
        """The same built collection searched with another consistency level.

        ``None`` searches through ``VectorStore.search`` (the store's own
        level); a level name ("Strong", "Session", "Bounded", "Eventually")
        passes ``consistency_level`` to pymilvus' search with the same
        parameters ``VectorStore`` would send.
        """
        other = copy.copy(self)
        other.consistency = consistency
        other.name = f"{self.name} {label or consistency or ''}".strip()
        if n_single is not None:
            other.n_single = n_single
        if n_batch is not None:
            other.n_batch = n_batch
        return other

    def search(self, queries: np.ndarray, k: int, params: dict[str, Any]) -> np.ndarray:
        if self.consistency is None:
            hits = self.store.search(COLLECTION, queries, k, tenant=1, search_params=params)
            return _pad([[h.id for h in row] for row in hits], k)
        p = dict(params)
        if "ef" in p:
            p["ef"] = max(int(p["ef"]), k)
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        with self.store._lock:  # noqa: SLF001 - VectorStore.search has no consistency option
            res = self.store._client.search(  # noqa: SLF001
                COLLECTION, data=[row for row in q], limit=k, output_fields=["owner"],
                filter="tenant == 1",
                search_params={"metric_type": self.store.index.metric, "params": p},
                consistency_level=self.consistency)
        return _pad([[int(h["id"]) for h in row] for row in res], k)

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            try:
                store.drop(COLLECTION)
            finally:
                store.close()


# --------------------------------------------------------------------------- measuring
@dataclass
class SweepRow:
    """One (backend, index, search params) measurement."""

    backend: str
    index: str
    params: dict[str, Any]
    recall_at_10: float | None
    recall_queries: int
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    single_queries: int
    batch_qps: float | None
    batch_size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(backend: Backend, params: dict[str, Any], queries: np.ndarray, truth: np.ndarray, *,
            k: int = 10, batch_size: int = 100, warmup: int = 3) -> SweepRow:
    """Single-query latency on ``backend.n_single`` queries, then batches for recall and q/s."""
    n_single = min(backend.n_single, len(queries))
    n_batch = min(backend.n_batch or len(queries), len(queries))
    for i in range(min(warmup, len(queries))):
        backend.search(queries[i:i + 1], k, params)
    lat = np.empty(n_single)
    for i in range(n_single):
        t0 = time.perf_counter()
        backend.search(queries[i:i + 1], k, params)
        lat[i] = time.perf_counter() - t0
    found = np.empty((n_batch, k), dtype=np.int64)
    t0 = time.perf_counter()
    for start in range(0, n_batch, batch_size):
        stop = min(n_batch, start + batch_size)
        found[start:stop] = backend.search(queries[start:stop], k, params)
    elapsed = time.perf_counter() - t0
    ms = lat * 1e3
    return SweepRow(
        backend=backend.name, index=backend.index, params=dict(params),
        recall_at_10=recall_at_k(found, truth[:n_batch], k), recall_queries=n_batch,
        p50_ms=float(np.percentile(ms, 50)) if n_single else None,
        p99_ms=float(np.percentile(ms, 99)) if n_single else None,
        mean_ms=float(ms.mean()) if n_single else None, single_queries=n_single,
        batch_qps=n_batch / elapsed if elapsed > 0 else None, batch_size=batch_size)


def sweep(backend: Backend, queries: np.ndarray, truth: np.ndarray, *, k: int = 10,
          batch_size: int = 100,
          on_row: Callable[[SweepRow], None] | None = None) -> list[SweepRow]:
    """:func:`measure` for every entry of ``backend.param_grid()``."""
    rows = []
    for params in backend.param_grid():
        row = measure(backend, params, queries, truth, k=k, batch_size=batch_size)
        log.info("%s %s %s: recall@%d %.4f p50 %.2f ms q/s %.0f", row.backend, row.index,
                 row.params, k, row.recall_at_10 or 0, row.p50_ms or 0, row.batch_qps or 0)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


TABLE_COLUMNS: list[tuple[str, str, str | None]] = [
    ("backend", "backend", None),
    ("index", "index", None),
    ("params", "search params", None),
    ("recall_at_10", "recall@10", ".4f"),
    ("p50_ms", "p50 ms", ".2f"),
    ("p99_ms", "p99 ms", ".2f"),
    ("batch_qps", "q/s (batch)", ",.0f"),
    ("single_queries", "single n", "d"),
    ("recall_queries", "recall n", "d"),
]

BUILD_COLUMNS: list[tuple[str, str, str | None]] = [
    ("backend", "backend", None),
    ("index", "index", None),
    ("rows", "rows", ",d"),
    ("build_params", "build params", None),
    ("insert_rows_per_s", "insert rows/s", ",.0f"),
    ("build_s", "build total s", ".1f"),
    ("index_and_load_s", "index+load s", ".1f"),
]
