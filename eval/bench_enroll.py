"""Bulk enrollment throughput: in-process vs Ray workers, and the write side alone.

    python -m eval.bench_enroll [--encoder campplus] [--speakers 6] [--clips 16]
                                [--engines local,ray:1,ray:2] [--stores lite|server]

Builds a folder tree of ``--speakers`` x ``--clips`` real-speech clips of
3-5 s (8 FSDD digits of one speaker concatenated, 8 kHz; ``VOICEPRINT_FSDD``
names the recordings folder if it is not ``../shared/data/fsdd``;
synthesized voices when FSDD is absent) and runs ``voiceprint bulk enroll``
(:class:`BulkEnroller`) on
fresh stores once per engine, all in one run:

* ``local``: the encoder in this process (all cores);
* ``ray:N``: N Ray actors of one CPU each on a local Ray instance (started
  once, before the timings; each actor loads the encoder before the clock
  starts);
* ``writes``: the same corpus with the embeddings computed beforehand
  (replayed by a fake engine), so only the driver works: reading, the
  service's decode and checks, and per stored utterance a row, a vector and
  an audio file (plus the speaker's voiceprint row and vector per call).
  That is the ceiling a cluster of any size meets on this driver and these
  stores.

``--stores server`` writes to a fresh MariaDB database and a Milvus 2.3
server started for the run (the production path) instead of SQLite + Milvus
Lite. Prints a table; asserts nothing. Wall-clock figures depend on the
machine's load (printed with them); CPU seconds do less: "CPU ms per clip"
is the Ray actors' own process CPU per clip (decode, checks, model), so one
worker on an idle core embeds about 1000 / that many clips per second.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
FSDD = Path(os.environ.get("VOICEPRINT_FSDD")
            or HERE.parents[1] / "shared" / "data" / "fsdd" / "recordings")
MYSQL_ADMIN = os.environ.get("VOICEPRINT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def write_corpus(root: Path, speakers: int, clips: int, seed: int = 0) -> float:
    """``root/<speaker>/<n>.wav``; returns the seconds of audio written."""
    rng = np.random.default_rng(seed)
    total = 0.0
    if FSDD.is_dir():
        names = sorted({p.name.split("_")[1] for p in FSDD.glob("*.wav")})[:speakers]
        for name in names:
            files = sorted(FSDD.glob(f"*_{name}_*.wav"))
            for i in range(clips):
                parts, rate = [], 8000
                for p in rng.choice(files, size=8, replace=False):
                    x, rate = sf.read(p, dtype="float32")
                    parts += [x, np.zeros(int(0.08 * rate), np.float32)]
                audio = np.concatenate(parts)
                total += len(audio) / rate
                out = root / name / f"{i:03d}.wav"
                out.parent.mkdir(parents=True, exist_ok=True)
                sf.write(out, audio, rate)
        return total
    from eval.synth_voices import synthesize_corpus
    corpus = synthesize_corpus(str(HERE / "cache" / "synth_voices"), clips_per_speaker=clips)
    for name in sorted(corpus)[:speakers]:
        for i, src in enumerate(corpus[name][:clips]):
            out = root / name / f"{i:03d}{src.suffix}"
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, out)
            total += sf.info(src).duration
    return total


@contextlib.contextmanager
def stores(kind: str, tmp: Path, milvus_uri: str | None) -> Iterator[dict[str, Any]]:
    """Config overrides for fresh stores: SQLite + Milvus Lite, or MariaDB + the Milvus server."""
    import sqlalchemy as sa

    from voiceprint.stores import migrate
    base = {"DATA_DIR": str(tmp), "AUDIO_DIR": str(tmp / "audio"),
            "MILVUS_COLLECTION_PREFIX": f"b{uuid.uuid4().hex[:10]}"}
    if kind == "lite":
        url = f"sqlite:///{tmp / 'vp.db'}"
        migrate.upgrade(url)
        yield {**base, "DATABASE_URL": url, "MILVUS_URI": str(tmp / "milvus.db")}
        return
    name = f"vp_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(MYSQL_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))  # our own name, not input
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield {**base, "DATABASE_URL": url, "MILVUS_URI": milvus_uri}
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


class Recorder:
    """Wraps an engine and keeps every result (to replay them in the write-only run)."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.name, self.workers = engine, engine.name, engine.workers
        self.results: dict[int, Any] = {}

    def __getattr__(self, item: str) -> Any:
        return getattr(self.engine, item)

    def wait(self, timeout: float) -> list[Any]:
        done = self.engine.wait(timeout)
        for _, outcome in done:
            if isinstance(outcome, list):
                self.results.update((r.key, r) for r in outcome)
        return done


class Replay:
    """An engine that answers with recorded results at once (no model, no workers)."""

    name, workers = "replay", 4

    def __init__(self, info: Any, results: dict[int, Any]) -> None:
        self.info, self.results, self.done, self.n = info, results, [], 0

    def start(self) -> Any:
        return self.info

    def has_slot(self) -> bool:
        return len(self.done) < 8

    def submit(self, batch: list[Any]) -> int:
        self.n += 1
        from voiceprint.bulk.worker import EmbedResult
        self.done.append((self.n, [self.results.get(r.key, EmbedResult(r.key)) for r in batch]))
        return self.n

    def wait(self, timeout: float) -> list[Any]:
        done, self.done = self.done, []
        return done

    def describe(self) -> dict[str, Any]:
        return {"engine": "replay", "workers": 0}

    def close(self) -> None:
        pass


def warm_up(engine: Any, clip: Path) -> None:
    """One clip through every worker (first inferences are slower), before the clock."""
    from voiceprint.bulk.worker import EmbedRequest
    pending = set()
    for i in range(engine.workers):
        if engine.has_slot():
            pending.add(engine.submit([EmbedRequest(-1 - i, clip.read_bytes(), clip.name)]))
    while pending:
        pending -= {ticket for ticket, _ in engine.wait(1.0)}


def run_once(overrides: dict[str, Any], engine: Any, corpus: Path,
             batch_size: int) -> dict[str, Any]:
    from voiceprint.bulk.enroll import BulkEnroller
    from voiceprint.bulk.plan import plan_from_folder
    from voiceprint.config import Config
    from voiceprint.runtime import Runtime

    config = Config({})
    for key, value in overrides.items():
        setattr(config, key, value)
    rt = Runtime.from_config(config.validate())
    try:
        info = engine.start()  # models load before the clock starts
        warm_up(engine, next(corpus.rglob("*.wav")))
        for kind in ("utterances", "speakers"):  # creating a collection: seconds, once
            rt.vectors.ensure_collection(rt.collection(info.name, kind), info.dim)
        plan = plan_from_folder(corpus)
        cpu, wall = time.process_time(), time.perf_counter()
        report = BulkEnroller(rt, 1, engine, batch_size=batch_size).run(plan)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        rt.close()
    enrolled = report.count("enrolled")
    per_clip = report.engine.get("worker_cpu_s_per_file")
    if per_clip is None and report.engine.get("engine") == "local":
        per_clip = cpu / max(1, report.total)  # the driver embeds: its CPU, writes included
    return {"clips": report.total, "enrolled": enrolled, "wall": wall, "cpu": cpu,
            "stored_per_s": enrolled / wall, "misses": report.embedded_on_driver,
            "cpu_ms_per_clip": None if per_clip is None else 1000 * per_clip}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", default=None, help="default: campplus if it loads, else ge2e")
    p.add_argument("--speakers", type=int, default=6)
    p.add_argument("--clips", type=int, default=16, help="clips per speaker")
    p.add_argument("--engines", default="local,ray:1,ray:2")
    p.add_argument("--stores", choices=("lite", "server"), default="lite")
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args(argv)

    from voiceprint.bulk.engines import LocalEngine, RayEngine
    from voiceprint.bulk.worker import EncoderSpec
    from voiceprint.config import Config
    from voiceprint.errors import EncoderUnavailable

    encoder = args.encoder
    if encoder is None:
        try:
            EncoderSpec("campplus").load()
            encoder = "campplus"
        except EncoderUnavailable:
            encoder = "ge2e"
    rules = {"SPEAKER_ENCODER": encoder, "PRELOAD_MODELS": False,
             "ENROLL_MIN_SPEECH_SECONDS": 8.0}
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        seconds = write_corpus(tmp / "corpus", args.speakers, args.clips)
        milvus_uri = None
        if args.stores == "server":
            from voiceprint.stores.milvus_server import milvus_server
            milvus_uri = stack.enter_context(milvus_server(tmp / "milvus-server"))
        ray_started = None
        recorded: Recorder | None = None
        for spec in args.engines.split(","):
            kind, _, n = spec.partition(":")
            base = Config({})
            for key, value in rules.items():
                setattr(base, key, value)
            if kind == "local":
                engine: Any = Recorder(LocalEngine(EncoderSpec(encoder), base, "speaker"))
                recorded = engine
                label, threads = "local (in-process)", "all cores"
            else:
                import ray
                if ray_started is None:
                    t0 = time.perf_counter()
                    ray.init(num_cpus=max(2, int(n or 2)), include_dashboard=False,
                             log_to_driver=False)
                    ray_started = time.perf_counter() - t0
                engine = RayEngine(EncoderSpec(encoder), base, "speaker", workers=int(n or 2))
                label, threads = f"ray, {int(n or 2)} worker(s)", "1 per worker"
            work = tmp / f"run-{len(rows)}"
            with stores(args.stores, work, milvus_uri) as overrides:
                try:
                    out = run_once({**rules, **overrides}, engine, tmp / "corpus", args.batch_size)
                finally:
                    engine.close()
            rows.append((label, threads, out))
            print(f"{label}: {out['clips'] / out['wall']:.2f} clips/s", flush=True)
        if recorded is not None and recorded.results:
            info = EncoderSpec(encoder).load()
            from voiceprint.bulk.worker import EncoderInfo
            replay = Replay(EncoderInfo(info.name, info.dim, info.sample_rate, info.kind),
                            recorded.results)
            with stores(args.stores, tmp / "run-writes", milvus_uri) as overrides:
                rows.append(("writes only (embeddings precomputed)", "-",
                             run_once({**rules, **overrides}, replay, tmp / "corpus",
                                      args.batch_size)))
        if ray_started is not None:
            import ray
            ray.shutdown()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nencoder {encoder}; {args.speakers} speakers x {args.clips} clips, "
          f"{seconds / max(1, args.speakers * args.clips):.1f} s per clip on average; stores "
          f"{'SQLite + Milvus Lite' if args.stores == 'lite' else 'MariaDB + Milvus 2.3 server'}; "
          f"load average {load:.1f} on {os.cpu_count()} cores"
          + (f"; Ray start {ray_started:.1f} s (not timed)" if ray_started else ""))
    print("\n| engine | model threads | clips | enrolled | wall s | clips/s | audio s/s "
          "| driver CPU s | CPU ms per clip (embedding side) | stored utterances/s |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    for label, threads, o in rows:
        per_clip = "-" if o["cpu_ms_per_clip"] is None else f"{o['cpu_ms_per_clip']:.0f}"
        print(f"| {label} | {threads} | {o['clips']} | {o['enrolled']} | {o['wall']:.1f} | "
              f"{o['clips'] / o['wall']:.2f} | {seconds / o['wall']:.1f} | {o['cpu']:.1f} | "
              f"{per_clip} | {o['stored_per_s']:.1f} |")


if __name__ == "__main__":
    main()
