"""Identify at scale on the server path: a real `voiceprint serve` against a Milvus server.

    python -m eval.bench_identify [--encoder campplus] [--utterances 650000]
        [--per-speaker 200] [--workers 2] [--threads 2] [--num-threads 1]
        [--clients 1,4] [--requests 60] [--speaker-models centroid,best_utterance]
        [--milvus URI] [--database-url URL]

1. Fills the database and Milvus (a local server started from the ``milvus``
   package unless ``--milvus``) with ``--utterances`` synthetic utterance
   embeddings of the encoder's dimension (``--per-speaker`` per speaker,
   voiceprints = their means), then waits until the HNSW index covers them.
2. Starts ``voiceprint serve`` (gunicorn's asyncio worker, the given
   worker/thread layout), creates an API key and enrolls the 6 real FSDD
   speakers through the HTTP API (3 recordings each).
3. Times ``POST /identify`` of real 5 s clips (held-out FSDD digits of the
   enrolled speakers): the first request after start, then ``--requests``
   per client with 1 and 4 concurrent clients: p50/p99 end to end,
   throughput, top-1 of the real speakers, and the split from the service's
   ``Server-Timing`` header (decode, vad, resample, embed, search,
   normalise, db).
4. Reports the resident memory of each worker process.

With ``best_utterance`` the search runs over all utterance vectors (the
650k); with ``centroid`` (the default model) over one voiceprint per
speaker. Prints Markdown tables; nothing is asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf

from eval.datasets import fsdd_dir
from eval.httpclient import call, multipart

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
STAGES = ("decode", "vad", "resample", "embed", "search", "normalise", "db", "auth", "total")


# -- audio ------------------------------------------------------------------------------
def _wav(paths: list[Path], gap_s: float = 0.1) -> bytes:
    parts, rate = [], 8000
    for p in paths:
        x, rate = sf.read(p, dtype="float32")
        parts += [x, np.zeros(int(gap_s * rate), np.float32)]
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(parts), rate, format="WAV")
    return buf.getvalue()


def enrollment_clips(fsdd: Path, speaker: str) -> list[bytes]:
    """Three recordings of digits 0-9 (training indices 5-7): about 12-15 s of speech."""
    return [_wav([fsdd / f"{d}_{speaker}_{i}.wav" for d in range(10)]) for i in (5, 6, 7)]


def query_clips(fsdd: Path, speaker: str, n: int = 4) -> list[bytes]:
    """About 5 s of held-out speech each: digits 0-9 of test index i (FSDD split 0-4)."""
    return [_wav([fsdd / f"{d}_{speaker}_{i}.wav" for d in range(10)]) for i in range(n)]


# -- HTTP -------------------------------------------------------------------------------
def server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


# -- the stores ---------------------------------------------------------------------------
def populate(rt: Any, dim: int, n_utt: int, per_speaker: int, encoder: str,
             chunk: int = 20_000) -> float:
    """Synthetic speakers, utterances and voiceprints, rows and vectors; seconds taken."""
    from voiceprint.stores.records import speakers, utcnow, utterances, voiceprints
    from voiceprint.stores.types import to_blob

    rng = np.random.default_rng(0)
    n_spk = n_utt // per_speaker
    utt_coll, spk_coll = rt.collection(encoder, "utterances"), rt.collection(encoder, "speakers")
    for coll in (utt_coll, spk_coll):
        rt.vectors.ensure_collection(coll, dim)
    now = utcnow()
    t0 = time.perf_counter()
    step = max(1, chunk // per_speaker)
    for s0 in range(0, n_spk, step):
        ids = np.arange(s0 + 1, min(n_spk, s0 + step) + 1)
        centres = rng.standard_normal((len(ids), dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        utt = np.repeat(centres, per_speaker, axis=0) + 0.9 * rng.standard_normal(
            (len(ids) * per_speaker, dim)).astype(np.float32) / np.sqrt(dim)
        utt /= np.linalg.norm(utt, axis=1, keepdims=True)
        owners = np.repeat(ids, per_speaker)
        utt_ids = np.arange(s0 * per_speaker + 1, s0 * per_speaker + len(utt) + 1)
        vps = utt.reshape(len(ids), per_speaker, dim).mean(axis=1)
        vps /= np.linalg.norm(vps, axis=1, keepdims=True)
        with rt.engine.begin() as conn:
            conn.execute(speakers.insert(), [
                {"id": int(i), "tenant_id": 1, "external_id": f"synthetic-{i}", "name": None,
                 "meta": {}, "created_at": now, "updated_at": now} for i in ids])
            conn.execute(utterances.insert(), [
                {"id": int(u), "speaker_id": int(o), "encoder": encoder, "embedding": to_blob(v),
                 "filename": None, "content_sha256": f"{u:064x}", "audio_key": None,
                 "duration_s": 3.0, "speech_s": 3.0, "sample_rate": 16000, "created_at": now}
                for u, o, v in zip(utt_ids, owners, utt)])
            conn.execute(voiceprints.insert(), [
                {"speaker_id": int(i), "encoder": encoder, "embedding": to_blob(v),
                 "n_utterances": per_speaker, "speech_s": 3.0 * per_speaker, "enrolled": True,
                 "updated_at": now} for i, v in zip(ids, vps)])
        rt.vectors.insert(utt_coll, utt_ids.tolist(), utt, owners.tolist(), tenant=1)
        rt.vectors.insert(spk_coll, ids.tolist(), vps, ids.tolist(), tenant=1)
        print(f"  {int(utt_ids[-1]):,} utterances ({time.perf_counter() - t0:.0f} s)", flush=True)
    for coll in (utt_coll, spk_coll):
        rt.vectors.flush(coll)
    for coll in (utt_coll, spk_coll):
        state = rt.vectors.wait_index(coll)
        print(f"  index of {coll}: {state}", flush=True)
    return time.perf_counter() - t0


@contextlib.contextmanager
def milvus(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.milvus:
        yield args.milvus
        return
    from voiceprint.stores.milvus_server import milvus_server
    with milvus_server(tmp / "milvus-server") as uri:
        yield uri


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, workers: int, threads: int) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-m", "voiceprint", "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", str(workers), "--threads",
                             str(threads)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health/ready")
                if conn.getresponse().status == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("voiceprint serve did not become ready")
        yield proc
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            proc.kill()


def worker_rss_mb(master_pid: int) -> list[float]:
    """Resident memory of the gunicorn workers (children of the master), MB."""
    out = []
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (child / "status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            ppid = int(fields["PPid"].strip())
            if ppid == master_pid:
                out.append(int(fields["VmRSS"].split()[0]) / 1024)
    return sorted(out)


# -- measuring --------------------------------------------------------------------------------
def run_clients(port: int, key: str, queries: list[tuple[str, bytes]], clients: int,
                requests: int) -> dict[str, Any]:
    lat: list[float] = []
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    hits = [0, 0]
    lock = threading.Lock()

    def worker(offset: int) -> None:
        for i in range(requests):
            spk, clip = queries[(offset + i) % len(queries)]
            body, ctype = multipart({"clip": clip})
            status, out, headers, elapsed = call(port, "POST", "/identify", body, ctype, key)
            timing = server_timing(headers.get("server-timing", ""))
            with lock:
                lat.append(elapsed)
                for s in STAGES:
                    stages[s].append(timing.get(s, 0.0))
                hits[1] += 1
                hits[0] += int(status == 200 and bool(out["candidates"])
                               and out["candidates"][0]["external_id"] == spk)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"clients": clients, "n": len(lat), "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "rps": len(lat) / wall,
            "top1": hits[0] / max(hits[1], 1),
            "stages": {s: statistics.median(v) for s, v in stages.items() if v}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoder", default="campplus")
    p.add_argument("--sound-encoder", default="aisfx", help="loaded too (memory figure)")
    p.add_argument("--utterances", type=int, default=650_000)
    p.add_argument("--per-speaker", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="request threads per worker")
    p.add_argument("--num-threads", type=int, default=1, help="model threads per call")
    p.add_argument("--clients", default="1,4")
    p.add_argument("--requests", type=int, default=60, help="per client")
    p.add_argument("--speaker-models", default="centroid,best_utterance")
    p.add_argument("--milvus", default=None, help="a Milvus server URI (default: start one)")
    p.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = p.parse_args(argv)
    fsdd = fsdd_dir()
    if not fsdd.is_dir():
        sys.exit(f"FSDD recordings are needed for real queries: {fsdd} (or $VOICEPRINT_FSDD)")

    from voiceprint import create_app
    from voiceprint.services.access import AccessService
    from voiceprint.stores import migrate
    from voiceprint.stores.milvus_server import free_port

    with tempfile.TemporaryDirectory() as tmpdir, milvus(args, Path(tmpdir)) as uri:
        tmp = Path(tmpdir)
        url = args.database_url or f"sqlite:///{tmp / 'vp.db'}"
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        migrate.upgrade(url)
        env = {**os.environ, "VOICEPRINT_DATA_DIR": str(tmp), "VOICEPRINT_DATABASE_URL": url,
               "VOICEPRINT_MILVUS_URI": uri, "VOICEPRINT_MILVUS_PREFIX": prefix,
               "VOICEPRINT_SPEAKER_ENCODER": args.encoder, "VOICEPRINT_SOUND_ENCODER": args.sound_encoder,
               "VOICEPRINT_NUM_THREADS": str(args.num_threads),
               "VOICEPRINT_RATE_LIMIT": "1000000/minute",
               "VOICEPRINT_MIN_CLIP_SPEECH_SECONDS": "0.5"}
        app = create_app({"DATABASE_URL": url, "MILVUS_URI": uri, "DATA_DIR": str(tmp),
                          "MILVUS_COLLECTION_PREFIX": prefix, "SPEAKER_ENCODER": args.encoder,
                          "PRELOAD_MODELS": False})
        rt = app.extensions["voiceprint"]
        dim = rt.speaker_encoder().dim
        print(f"populating {args.utterances:,} utterances ({args.encoder}, {dim}-d, "
              f"{args.per_speaker} per speaker) on {uri}", flush=True)
        fill_s = populate(rt, dim, args.utterances, args.per_speaker, args.encoder)
        key = AccessService(rt).create_key("default", "bench", ["all"])[1]
        # the real speakers are enrolled before any server starts, so that each server's
        # first identify is a true first request after start (not one right after writes,
        # which waits for Milvus' time tick under Session consistency)
        client = app.test_client()
        auth = {"Authorization": f"Bearer {key}"}
        for spk in SPEAKERS:
            made = client.post("/speakers", json={"external_id": spk}, headers=auth).json
            r = client.post(f"/speakers/{made['id']}/enrollments", headers=auth,
                            data={"clips": [(io.BytesIO(c), f"{spk}{i}.wav") for i, c in
                                            enumerate(enrollment_clips(fsdd, spk))]},
                            content_type="multipart/form-data")
            print(f"  enrolled {spk}: {r.status_code} {r.json['enrollment']['status']}", flush=True)
        rt.close()
        queries = [(spk, q) for spk in SPEAKERS for q in query_clips(fsdd, spk)]
        rows: list[tuple[str, dict[str, Any]]] = []
        for model in args.speaker_models.split(","):
            port = free_port()
            with serving({**env, "VOICEPRINT_SPEAKER_MODEL": model}, port, args.workers,
                         args.threads) as proc:
                body, ctype = multipart({"clip": queries[0][1]})
                _, _, headers, elapsed = call(port, "POST", "/identify", body, ctype, key)
                first = elapsed * 1000
                print(f"  first identify: {first:.0f} ms; Server-Timing: "
                      f"{headers.get('server-timing')}", flush=True)
                for clients in (int(c) for c in args.clients.split(",")):
                    res = run_clients(port, key, queries, clients, args.requests)
                    res["first_ms"] = first
                    res["rss"] = worker_rss_mb(proc.pid)
                    rows.append((model, res))
                    print(f"  {model}, {clients} client(s): {res}", flush=True)

    print(f"\n{args.utterances:,} utterances ({args.utterances // args.per_speaker:,} speakers + 6 "
          f"real), {args.encoder}, Milvus server HNSW, gunicorn asyncio worker x {args.workers}, "
          f"{args.threads} request threads, {args.num_threads} model thread(s) per call; filled "
          f"and indexed in {fill_s:.0f} s\n")
    print("| speaker model | clients | p50 ms | p99 ms | req/s | top-1 (real) | first request ms "
          "| worker RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for model, r in rows:
        print(f"| {model} | {r['clients']} | {r['p50']:.0f} | {r['p99']:.0f} | {r['rps']:.1f} | "
              f"{r['top1']:.2f} | {r['first_ms']:.0f} | {', '.join(f'{x:.0f}' for x in r['rss'])} |")
    print("\nmedian per stage (ms, from Server-Timing):\n")
    print("| speaker model | clients | " + " | ".join(s for s in STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    for model, r in rows:
        print(f"| {model} | {r['clients']} | " +
              " | ".join(f"{r['stages'].get(s, 0):.1f}" for s in STAGES) + " |")


if __name__ == "__main__":
    main()
