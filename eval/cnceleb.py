"""CN-Celeb benchmark: voiceprint lookup (recall@10 vs latency) and verification EER.

Two modes::

    python -m eval.cnceleb --synthetic [--scale S] [--backends lite,server] [--index HNSW]
    python -m eval.cnceleb --data CN-Celeb_flac [--data CN-Celeb2_flac] [--encoder ecapa_tdnn]

**Synthetic** (:mod:`eval.synthetic`): 650,000 enrolled 192-dim unit vectors
of 3,000 speakers and 10,000 held-out queries (``--scale`` multiplies the
sizes), the shape of the CN-Celeb 1+2 lookup figure.

**Real corpus** (``--data``; repeat it for CN-Celeb1 + CN-Celeb2). Assumed
layout, that of the OpenSLR 82 archives (``CN-Celeb_flac`` /
``CN-Celeb_wav`` for v1, ``CN-Celeb2_flac`` for v2):

* ``data/<speaker>/*.flac|wav`` -- training utterances. If ``dev/dev.lst``
  exists only its speakers are used; otherwise every speaker folder except
  the evaluation speakers (the prefix of the enrollment ids, e.g.
  ``id00800`` of ``id00800-enroll``);
* ``eval/enroll/*``, ``eval/test/*`` -- evaluation audio;
* ``eval/lists/enroll.lst``: ``<enroll_id> <path>`` per line, the path relative
  to ``eval/`` (``enroll/id00800-enroll.wav``). ``enroll.map`` is read the same
  way with one *or more* files per id (``<enroll_id> <file> [<file> ...]``),
  whose embeddings are averaged. Without either list every file in
  ``eval/enroll`` is an enrollment whose id is the file stem;
* ``eval/lists/trials.lst``: ``<enroll_id> <test path> <label>`` with label
  ``1``/``0`` or ``target``/``nontarget``.

Paths in the lists are resolved relative to ``eval/`` (then ``eval/enroll``
or ``eval/test``), and when a listed file is missing by its file *stem*: the
FLAC release keeps ``.wav`` names in its lists.

Every utterance is embedded with ``--encoder`` (default ``ecapa_tdnn``) in
batches; embeddings are cached under ``--cache-dir/<encoder>/`` as ``.npz``
shards keyed by the absolute file path, so an interrupted run resumes. The
training embeddings are enrolled into Milvus through ``VectorStore`` and the
test embeddings (``--n-query`` of them) are the lookup queries; the trial list
is scored by cosine (EER, minDCF at p_target 0.01) and with AS-norm
(``voiceprint.scoring.normalization``; cohort = the training speakers' mean
embeddings, top 300).

Search side (both modes): exact top-10 ground truth with numpy; sweeps of
HNSW ``ef`` / IVF ``nprobe`` on each Milvus backend (``--backends``: ``lite``
= a Milvus Lite file in a temp dir, ``server`` = a local Milvus 2.3 server
started for the run, or an ``http://`` URI; append ``=INDEX`` to choose the
index per backend, e.g. ``lite=IVF_FLAT,server=HNSW``) and on faiss (flat,
HNSW M16 and, when an IVF index is benchmarked, IVF_FLAT) plus the exact
numpy row. A server is swept per ``--consistency`` level (default
``Session,Strong``): the ``VectorStore``'s own level (Session) through
``VectorStore.search``, others through pymilvus with the same parameters;
``Strong`` costs one server time tick (about 200 ms) per call, so it gets
fewer timed queries. Output in ``--out``
(default ``eval/results/cnceleb-<stamp>/``):
``results.json``, ``README.md``, ``recall_latency.png``.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from eval import report
from eval.cnceleb_corpus import EmbeddingCache, embed_files, load_corpus
from voiceprint.scoring.cosine import l2_normalize
from eval.cnceleb_scoring import score_trials
from eval.search_bench import (BUILD_COLUMNS, TABLE_COLUMNS, Backend, FaissIndex, MilvusIndex,
                               NumpyExact, SweepRow, exact_topk, sweep)

log = logging.getLogger("eval.cnceleb")

#: The figure to reproduce: recall@10 0.90 at 2.9 ms per query.
SEED_POINT = (0.90, 2.9, "seed claim: 90 % recall@10 at 2.9 ms")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- backends
@dataclass(frozen=True)
class BackendChoice:
    """``kind`` is ``lite``, ``server`` or ``uri``; ``uri`` only for the last."""

    kind: str
    index: str
    uri: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "uri":
            return f"milvus@{self.uri.split('://', 1)[-1]}"  # type: ignore[union-attr]
        return f"milvus-{self.kind}"


def parse_backends(items: Sequence[str], default_index: str) -> list[BackendChoice]:
    """``["lite", "server=HNSW", "http://h:19530=IVF_FLAT"]`` -> choices."""
    out = []
    for item in items:
        item = item.strip()
        if not item or item == "none":
            continue
        name, _, index = item.partition("=")
        index = (index or default_index).upper()
        if name in ("lite", "server"):
            out.append(BackendChoice(name, index))
        elif "://" in name:
            out.append(BackendChoice("uri", index, name))
        else:
            raise SystemExit(f"unknown backend {name!r}: use lite, server or an http:// URI")
    return out


def _milvus_backend(choice: BackendChoice, uri: str, args: argparse.Namespace) -> MilvusIndex:
    lite = choice.kind == "lite"
    build_params: dict[str, Any] = {}
    if choice.index == "HNSW":
        build_params = {"M": args.hnsw_m, "efConstruction": args.hnsw_efc}
    elif choice.index.startswith("IVF"):
        build_params = {"nlist": args.nlist}
    return MilvusIndex(
        name=choice.label, index=choice.index, uri=uri, build_params=build_params,
        n_single=args.lite_single_queries if lite else args.single_queries,
        n_batch=args.lite_batch_queries if lite else args.batch_queries,
        nprobe_values=args.nprobe, ef_values=args.ef)


def _consistency_variants(backend: MilvusIndex, args: argparse.Namespace) -> list[Backend]:
    """One server sweep per ``--consistency`` level on the same collection.

    The level the service's ``VectorStore`` uses (its ``consistency``
    attribute; "Session" today) goes through ``VectorStore.search``; other
    levels call pymilvus directly with the same parameters. A "Strong" search
    waits for the server's next time tick (about 200 ms on Milvus 2.3), so it
    gets ``--strong-single-queries`` / ``--strong-batch-queries``.
    """
    service_level = str(getattr(backend.store, "consistency", "Strong"))
    out: list[Backend] = []
    for level in args.consistency:
        strong = level.lower() == "strong"
        sizes = ({"n_single": args.strong_single_queries, "n_batch": args.strong_batch_queries}
                 if strong else {})
        if level.lower() == service_level.lower():
            out.append(backend.variant(None, label=f"{level} (VectorStore)", **sizes))
        else:
            out.append(backend.variant(level, **sizes))
    return out


# --------------------------------------------------------------------------- search half
@dataclass
class SearchRun:
    """Everything the search half measured; written after every backend."""

    context: dict[str, Any]
    rows: list[SweepRow] = field(default_factory=list)
    builds: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def write_outputs(run: SearchRun, out_dir: Path, title: str) -> None:
    rows = [r.as_dict() for r in run.rows]
    report.write_json(out_dir / "results.json", {
        **run.context, "builds": run.builds, "rows": rows, "errors": run.errors, **run.extra})
    sections = [("Search: recall@10 vs exact, latency, throughput",
                 report.markdown_table(rows, TABLE_COLUMNS)),
                ("Index builds", report.markdown_table(run.builds, BUILD_COLUMNS))]
    for key, heading in (("verification", "Verification (trial list)"),
                         ("embedding", "Embedding time")):
        if key in run.extra:
            sections.append((heading, report.markdown_dict(run.extra[key])))
    if run.errors:
        sections.append(("Errors", report.markdown_table(
            run.errors, [("backend", "backend", None), ("error", "error", None)])))
    sections.append(("Setup", report.markdown_dict({
        k: v for k, v in run.context.items() if k != "machine"})))
    sections.append(("Machine", report.markdown_dict(run.context["machine"])))
    report.write_markdown(out_dir / "README.md", title, sections)
    if rows:
        report.plot_recall_latency(rows, out_dir / "recall_latency.png", title=title,
                                   reference=SEED_POINT)


@contextlib.contextmanager
def _server_if_needed(choices: Sequence[BackendChoice], base: Path) -> Iterator[str | None]:
    if not any(c.kind == "server" for c in choices):
        yield None
        return
    from voiceprint.stores.milvus_server import milvus_server

    log.info("starting a local Milvus server under %s", base)
    with milvus_server(base / "milvus-server") as uri:
        yield uri


def _server_version(uri: str) -> str | None:
    try:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri)
        try:
            return str(client.get_server_version())
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - only a label
        return f"unknown ({exc.__class__.__name__})"


def run_search(vectors: np.ndarray, owners: np.ndarray, queries: np.ndarray,
               args: argparse.Namespace, run: SearchRun, out_dir: Path, title: str) -> SearchRun:
    """Ground truth, then every backend's sweep; results rewritten after each backend."""
    k = args.k
    t0 = time.perf_counter()
    truth, _ = exact_topk(vectors, queries, k, progress=True)
    run.context["ground_truth_s"] = time.perf_counter() - t0
    choices = parse_backends(args.backends, args.index)
    run.context["backends"] = [c.__dict__ for c in choices]

    def bench(backend: Backend, variants: Callable[[Any], list[Backend]] | None = None) -> None:
        try:
            backend.build(vectors, owners)
            run.builds.append({"backend": backend.name, "index": backend.index,
                               **backend.build_info})
            write_outputs(run, out_dir, title)
            for variant in (variants(backend) if variants else [backend]):
                sweep(variant, queries, truth, k=k, batch_size=args.batch_size,
                      on_row=lambda row: (run.rows.append(row),
                                          write_outputs(run, out_dir, title)))
        except Exception as exc:  # keep the other backends' numbers
            log.exception("backend %s %s failed", backend.name, backend.index)
            run.errors.append({"backend": f"{backend.name} {backend.index}", "error": repr(exc)})
            write_outputs(run, out_dir, title)
        finally:
            backend.close()

    if not args.no_reference:
        n_exact = min(args.exact_single_queries, len(queries))
        n_exact_batch = min(args.exact_batch_queries, len(queries))
        bench(NumpyExact(n_single=n_exact, n_batch=n_exact_batch))
        bench(FaissIndex(index="FLAT", n_single=n_exact, n_batch=n_exact_batch))
    if not args.no_faiss:
        families = {"HNSW"} | {"IVF_FLAT" for c in choices if c.index.startswith("IVF")}
        for family in sorted(families):
            bench(FaissIndex(index=family, hnsw_m=args.hnsw_m, ef_construction=args.hnsw_efc,
                             nlist=args.nlist, ef_values=args.ef, nprobe_values=args.nprobe,
                             n_single=args.single_queries, n_batch=args.batch_queries))

    with tempfile.TemporaryDirectory(prefix="cnceleb-milvus-") as tmp:
        with _server_if_needed(choices, Path(tmp)) as server_uri:
            for choice in choices:
                if choice.kind == "lite":
                    uri = str(Path(tmp) / f"lite-{choice.index.lower()}.db")
                elif choice.kind == "server":
                    uri = server_uri  # type: ignore[assignment]
                else:
                    uri = choice.uri  # type: ignore[assignment]
                if choice.kind != "lite":
                    run.context.setdefault("milvus_server_version", {})[choice.label] = \
                        _server_version(uri)
                bench(_milvus_backend(choice, uri, args),
                      None if choice.kind == "lite" else lambda b: _consistency_variants(b, args))
    run.context["machine"]["load_average_end"] = report.load_average()
    write_outputs(run, out_dir, title)
    return run


# --------------------------------------------------------------------------- modes
def run_synthetic(args: argparse.Namespace, out_dir: Path) -> SearchRun:
    from eval.synthetic import SyntheticSpec, cosine_stats, enroll_set, query_set

    spec = SyntheticSpec(seed=args.seed, within_cosine=args.within_cosine).scaled(args.scale)
    log.info("generating %d x %d enrolled + %d queries", spec.n_enroll, spec.dim, spec.n_query)
    owners, vectors = enroll_set(spec)
    _, queries = query_set(spec)
    run = SearchRun(context={
        "mode": "synthetic", "data": spec.describe(), "cosine": cosine_stats(owners, vectors),
        "encoder": "none (synthetic 192-dim vectors, ECAPA-TDNN shape)", "k": args.k,
        "batch_size": args.batch_size,
        "machine": report.machine_stamp()})
    title = (f"CN-Celeb-shaped synthetic lookup: {spec.n_enroll:,} enrolled, "
             f"{spec.n_query:,} queries, dim {spec.dim}")
    return run_search(vectors, owners, queries, args, run, out_dir, title)


def run_corpus(args: argparse.Namespace, out_dir: Path) -> SearchRun:
    from voiceprint.encoders.registry import load_encoder

    corpus = load_corpus([Path(d) for d in args.data], limit_train=args.limit_train)
    log.info("corpus: %d training utterances, %d enrollments, %d trials",
             len(corpus.train), len(corpus.enroll), len(corpus.trials))
    if not corpus.train:
        raise SystemExit("no training utterances found (data/<speaker>/*.flac|wav)")
    encoder = load_encoder(args.encoder, model_dir=args.model_dir)
    cache = EmbeddingCache(Path(args.cache_dir), encoder.name)
    train_paths = [p for _, p in corpus.train]
    enroll_paths = sorted({p for ps in corpus.enroll.values() for p in ps})
    test_paths = sorted({t for _, t, _ in corpus.trials})
    all_paths = list(dict.fromkeys([*train_paths, *enroll_paths, *test_paths]))
    _, stats = embed_files(encoder, all_paths, cache, batch_size=args.embed_batch,
                           desc=f"embed ({encoder.name})")
    vec = cache.vectors

    def rows(paths: Sequence[Path]) -> np.ndarray:
        return np.stack([vec.get(EmbeddingCache.key(p), np.full(encoder.dim, np.nan, np.float32))
                         for p in paths]) if paths else np.zeros((0, encoder.dim), np.float32)

    train = rows(train_paths)
    speakers = sorted({s for s, _ in corpus.train})
    spk_index = {s: i for i, s in enumerate(speakers)}
    owners = np.array([spk_index[s] for s, _ in corpus.train], dtype=np.int64)
    ok = np.isfinite(train).all(axis=1)
    train, owners = l2_normalize(train[ok]), owners[ok]
    queries = rows(test_paths) if test_paths else rows(enroll_paths)
    queries = queries[np.isfinite(queries).all(axis=1)]
    if len(queries) > args.n_query:
        queries = queries[np.sort(np.random.default_rng(args.seed).choice(
            len(queries), args.n_query, replace=False))]
    queries = l2_normalize(queries)
    sums = np.zeros((len(speakers), train.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, train)
    cohort = l2_normalize(sums[np.bincount(owners, minlength=len(speakers)) > 0])
    verification = score_trials(corpus, {EmbeddingCache.key(p): vec.get(
        EmbeddingCache.key(p), np.full(encoder.dim, np.nan, np.float32))
        for p in [*enroll_paths, *test_paths]}, cohort) if corpus.trials else {"trials": 0}
    run = SearchRun(context={
        "mode": "corpus", "data": [str(d) for d in args.data], "notes": corpus.notes,
        "enrolled": int(len(train)), "speakers": len(speakers), "queries": int(len(queries)),
        "encoder": encoder.describe(), "k": args.k, "batch_size": args.batch_size,
        "machine": report.machine_stamp()},
        extra={"verification": verification, "embedding": stats})
    title = (f"CN-Celeb lookup ({encoder.name}): {len(train):,} enrolled, "
             f"{len(queries):,} queries")
    if len(train) <= args.k:
        raise SystemExit(f"only {len(train)} training utterances; need more than k={args.k}")
    return run_search(train, owners, queries, args, run, out_dir, title)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval.cnceleb", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--synthetic", action="store_true", help="generated CN-Celeb-shaped vectors")
    mode.add_argument("--data", action="append", metavar="DIR",
                      help="CN-Celeb root (repeatable: CN-Celeb_flac, CN-Celeb2_flac)")
    ap.add_argument("--scale", type=float, default=1.0, help="synthetic: multiply sizes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--within-cosine", type=float, default=0.65,
                    help="synthetic: mean same-speaker cosine")
    ap.add_argument("--backends", default=None,
                    help="comma list of lite, server, http://URI, each optionally =INDEX; "
                         "none = no Milvus")
    ap.add_argument("--milvus", metavar="URI", help="shorthand for --backends URI")
    ap.add_argument("--milvus-server", action="store_true", help="shorthand for --backends server")
    ap.add_argument("--index", default="HNSW", help="default index: HNSW, IVF_FLAT, IVF_SQ8, FLAT")
    ap.add_argument("--hnsw-m", type=int, default=16)
    ap.add_argument("--hnsw-efc", type=int, default=200, help="HNSW efConstruction")
    ap.add_argument("--nlist", type=int, default=1024, help="IVF lists")
    ap.add_argument("--ef", default=",".join(map(str, (10, 16, 32, 64, 128, 256))),
                    help="HNSW ef values to sweep")
    ap.add_argument("--nprobe", default=",".join(map(str, (1, 2, 4, 8, 16, 32, 64, 128))),
                    help="IVF nprobe values to sweep")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--single-queries", type=int, default=1000,
                    help="queries timed one per call (server, faiss)")
    ap.add_argument("--lite-single-queries", type=int, default=200)
    ap.add_argument("--exact-single-queries", type=int, default=200,
                    help="single queries for the exact numpy/faiss-flat rows")
    ap.add_argument("--exact-batch-queries", type=int, default=1000,
                    help="batched queries for the exact numpy/faiss-flat rows")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--batch-queries", type=int, default=None,
                    help="queries run in batches for recall and q/s (default: all)")
    ap.add_argument("--lite-batch-queries", type=int, default=1000)
    ap.add_argument("--consistency", default="Session,Strong",
                    help="server consistency levels to sweep; the VectorStore's own level "
                         "(Session) goes through VectorStore.search")
    ap.add_argument("--strong-single-queries", type=int, default=100)
    ap.add_argument("--strong-batch-queries", type=int, default=1000)
    ap.add_argument("--no-faiss", action="store_true", help="skip the faiss HNSW/IVF floor")
    ap.add_argument("--no-reference", action="store_true", help="skip exact numpy/faiss rows")
    ap.add_argument("--encoder", default="ecapa_tdnn")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--cache-dir",
                    default=str(Path(__file__).resolve().parent / "cache" / "cnceleb-embeddings"),
                    help="embedding cache root (one subfolder per encoder)")
    ap.add_argument("--embed-batch", type=int, default=16)
    ap.add_argument("--n-query", type=int, default=10_000, help="corpus: lookup queries")
    ap.add_argument("--limit-train", type=int, default=None,
                    help="corpus: enroll at most this many training utterances")
    ap.add_argument("--out", default=None, help="output dir (default eval/results/cnceleb-<stamp>)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def _ints(text: str) -> list[int]:
    return [int(t) for t in str(text).split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread()
    # SIGTERM -> SystemExit, so a Milvus server started for the run is stopped
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)) if on_main else None
    try:
        return _run(args)
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    logging.getLogger("eval.search_bench").setLevel(logging.INFO)
    items: list[str] = []
    if args.backends:
        items += args.backends.split(",")
    if args.milvus:
        items.append(args.milvus)
    if args.milvus_server:
        items.append("server")
    args.backends = items or ["lite"]
    args.ef, args.nprobe = _ints(args.ef), _ints(args.nprobe)
    args.consistency = [c.strip() for c in args.consistency.split(",") if c.strip()]
    out_dir = Path(args.out) if args.out else RESULTS_DIR / f"cnceleb-{report.stamp()}"
    run = run_synthetic(args, out_dir) if args.synthetic else run_corpus(args, out_dir)
    print((out_dir / "README.md").read_text())
    print(f"results written to {out_dir}", file=sys.stderr)
    return 1 if run.errors and not run.rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
