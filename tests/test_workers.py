"""Many workers on shared state: ``voiceprint serve --workers 3`` on MariaDB + a Milvus server.

Eight client threads enroll, identify, verify and delete for a bounded time
(``VOICEPRINT_TEST_STRESS_SECONDS``, default 60) with an API key, limits and
lock-outs in Redis. Afterwards: no 5xx, rows = vectors = files and
``voiceprint db check`` clean. Then what must be shared across workers is
checked through the running server: a verify lock-out (Redis) holds whichever
worker answers, a revoked key is refused by every worker at once, and a
speaker enrolled through one worker is found by identify on the others (after
Milvus' time tick: searches read with "Session" consistency).
"""
from __future__ import annotations

import collections
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import SENTENCES, _migrated_empty
from tests.test_serving import _multipart
from voiceprint.stores.milvus_server import free_port

pytestmark = pytest.mark.slow

WORKERS = 3
THREADS = 8
STRESS_SECONDS = float(os.environ.get("VOICEPRINT_TEST_STRESS_SECONDS", "60"))
REDIS_DB = 13
MAX_REJECTS = 3
VOICES = ("flite:awb", "flite:slt", "flite:rms")
#: a voice the load never enrolls: identify must find exactly the one speaker enrolled with it
FRESH = "flite:kal16"
#: answers a client may get under this load; anything 5xx fails the test
EXPECTED = {200, 201, 204, 404, 409, 429}


def call(port: int, method: str, path: str, key: str | None, body: bytes | None = None,
         content_type: str | None = None, timeout: float = 120.0) -> tuple[int, Any]:
    """One request on a new connection (so gunicorn hands it to any worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(data) if data and data[:1] in b"{[" else None


def post_json(port: int, path: str, key: str, obj: Any) -> tuple[int, Any]:
    return call(port, "POST", path, key, json.dumps(obj).encode(), "application/json")


def post_form(port: int, path: str, key: str, **fields: Any) -> tuple[int, Any]:
    body, ctype = _multipart(fields)
    return call(port, "POST", path, key, body, ctype)


@pytest.fixture(scope="module")
def voices(speak) -> dict[str, list[bytes]]:
    return {v: [speak(t, v) for t in SENTENCES] for v in (*VOICES, FRESH)}


@pytest.fixture
def stores(mysql_url: str, milvus_server_uri: str, tmp_path: Path) -> dict[str, str]:
    redis = pytest.importorskip("redis")
    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    env = {
        "VOICEPRINT_DATA_DIR": str(tmp_path), "VOICEPRINT_AUDIO_DIR": str(tmp_path / "audio"),
        "VOICEPRINT_DATABASE_URL": _migrated_empty(mysql_url),
        "VOICEPRINT_MILVUS_URI": milvus_server_uri,
        "VOICEPRINT_MILVUS_PREFIX": f"w{uuid.uuid4().hex[:12]}",
        "VOICEPRINT_SPEAKER_ENCODER": "ge2e", "VOICEPRINT_SOUND_ENCODER": "ge2e",
        "VOICEPRINT_REDIS_URL": url, "VOICEPRINT_RATE_LIMIT": "100000/minute",
        "VOICEPRINT_VERIFY_MAX_REJECTS": str(MAX_REJECTS),
        "VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS": "6", "VOICEPRINT_NUM_THREADS": "1",
        "VOICEPRINT_ORPHAN_FILE_MIN_AGE_SECONDS": "0",
    }
    yield env
    redis.Redis.from_url(url).flushdb()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voiceprint", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def server(stores: dict[str, str], tmp_path: Path) -> Iterator[tuple[int, str, dict[str, str]]]:
    """``voiceprint serve --workers 3`` with an admin key created by the CLI beforehand."""
    pytest.importorskip("resemblyzer")
    made = cli(stores, "keys", "create", "--name", "stress", "--scope", "all")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "voiceprint", "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", str(WORKERS), "--threads", "4"],
                            env={**os.environ, **stores}, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if call(port, "GET", "/health", None, timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the server did not start:\n"
                        + (tmp_path / "server.log").read_text()[-3000:])
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        yield port, key, {**stores, "_pid": str(proc.pid)}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


class Load:
    """What the client threads did and saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter[tuple[str, int]] = collections.Counter()
        self.errors: list[str] = []
        self.enrolled: list[tuple[int, str]] = []  # (speaker id, voice) still alive
        self.deleted: set[int] = set()

    def saw(self, what: str, status: int, body: Any) -> None:
        with self.lock:
            self.statuses[(what, status)] += 1
            if status not in EXPECTED:
                self.errors.append(f"{what}: {status} {json.dumps(body)[:300]}")


def client_thread(port: int, key: str, voices: dict[str, list[bytes]], load: Load,
                  until: float, seed: int) -> None:
    rng = random.Random(seed)
    mine: list[int] = []
    while time.monotonic() < until:
        action = rng.choices(("enroll", "identify", "verify", "delete"), (3, 4, 4, 1))[0]
        voice = rng.choice(VOICES)
        clips = voices[voice]
        try:
            if action == "enroll":
                status, spk = post_json(port, "/speakers", key,
                                        {"external_id": f"{voice}-{seed}-{uuid.uuid4().hex[:8]}"})
                load.saw("create", status, spk)
                if status != 201:
                    continue
                status, body = post_form(port, f"/speakers/{spk['id']}/enrollments", key,
                                         clips=rng.sample(clips[:4], 3))
                load.saw("enroll", status, body)
                if status == 201:
                    mine.append(spk["id"])
                    with load.lock:
                        load.enrolled.append((spk["id"], voice))
            elif action == "identify":
                status, body = post_form(port, "/identify", key, clip=rng.choice(clips[4:]))
                load.saw("identify", status, body)
            elif action == "verify":
                with load.lock:
                    pool = list(load.enrolled)
                if not pool:
                    continue
                sid, _ = rng.choice(pool)
                status, body = post_form(port, "/verify", key, clip=rng.choice(clips[4:]),
                                         speaker_id=str(sid))
                load.saw("verify", status, body)
            elif mine:
                sid = mine.pop(rng.randrange(len(mine)))
                status, body = call(port, "DELETE", f"/speakers/{sid}", key)
                load.saw("delete", status, body)
                if status == 204:
                    with load.lock:
                        load.enrolled = [e for e in load.enrolled if e[0] != sid]
                        load.deleted.add(sid)
        except OSError as exc:  # a dropped connection is as bad as a 5xx
            load.saw(action, 599, {"error": repr(exc)})


def worker_rss_mb(pid: int) -> list[int]:
    """Resident memory (MB) of the server's worker processes (Linux /proc), for the log."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                status = (stat.parent / "status").read_text()
                out.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024)
        except (OSError, ValueError, AttributeError):
            continue
    return sorted(out)


def counts(env: dict[str, str]) -> dict[str, int]:
    """Rows, vectors and files, counted directly in the stores."""
    from voiceprint.stores.records import create_db_engine, utterances, voiceprints
    from voiceprint.stores.vectors import VectorStore
    engine = create_db_engine(env["VOICEPRINT_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(utterances)).scalar_one()
        enrolled = conn.execute(sa.select(sa.func.count()).select_from(voiceprints)
                                .where(voiceprints.c.enrolled.is_(True))).scalar_one()
    engine.dispose()
    vectors = VectorStore(env["VOICEPRINT_MILVUS_URI"])
    prefix = env["VOICEPRINT_MILVUS_PREFIX"]
    try:
        out = {"utterance_rows": int(rows), "voiceprint_rows": int(enrolled),
               "utterance_vectors": vectors.count(f"{prefix}_ge2e_utterances"),
               "voiceprint_vectors": vectors.count(f"{prefix}_ge2e_speakers")}
    finally:
        vectors.close()
    out["files"] = sum(1 for p in Path(env["VOICEPRINT_AUDIO_DIR"]).rglob("*") if p.is_file())
    return out


def test_three_workers_under_concurrent_load_stay_consistent(server, voices):
    port, key, env = server
    load = Load()
    until = time.monotonic() + STRESS_SECONDS
    threads = [threading.Thread(target=client_thread, args=(port, key, voices, load, until, i))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STRESS_SECONDS + 600)
    summary = {f"{what} {status}": n for (what, status), n in sorted(load.statuses.items())}
    print("requests:", summary)
    print("worker RSS MB:", worker_rss_mb(int(env["_pid"])))
    assert not load.errors, load.errors[:10]
    ok = {w: n for (w, s), n in load.statuses.items() if s in (200, 201)}
    assert ok.get("enroll", 0) >= 4 and ok.get("identify", 0) >= 4, summary
    assert load.deleted, summary

    # the tenant holds exactly the speakers that were created and not deleted
    status, page = call(port, "GET", "/speakers?page_size=1", key)
    created = sum(n for (w, s), n in load.statuses.items() if w == "create" and s == 201)
    assert status == 200 and page["total"] == created - len(load.deleted)

    # shared lock-out: MAX_REJECTS rejected verifies of one claim, over any workers, lock it
    status, spk = post_json(port, "/speakers", key, {"external_id": "lock-target"})
    assert post_form(port, f"/speakers/{spk['id']}/enrollments", key,
                     clips=voices["flite:awb"][:3])[0] == 201
    answers = [post_form(port, "/verify", key, clip=voices["flite:slt"][i],
                         speaker_id=str(spk["id"])) for i in range(MAX_REJECTS + 3)]
    assert [s for s, _ in answers[:MAX_REJECTS]] == [200] * MAX_REJECTS
    assert all(not b["accepted"] for _, b in answers[:MAX_REJECTS])
    assert [s for s, _ in answers[MAX_REJECTS:]] == [429] * 3, answers

    # a speaker enrolled through one worker is identified through every worker once the
    # Milvus time tick has passed (searches read with "Session" consistency: another
    # process's insert shows within ~0.4 s; measured: README "Many workers and hosts")
    status, spk = post_json(port, "/speakers", key, {"external_id": "fresh"})
    assert post_form(port, f"/speakers/{spk['id']}/enrollments", key,
                     clips=voices[FRESH][:3])[0] == 201
    at_once = post_form(port, "/identify", key, clip=voices[FRESH][5])[1]
    print("identify right after the enrollment:", at_once["decision"],
          [c["external_id"] for c in at_once["candidates"][:2]])
    time.sleep(1.0)
    found = [post_form(port, "/identify", key, clip=voices[FRESH][5])[1] for _ in range(9)]
    seen = [[(c["external_id"], round(c["cosine"], 3)) for c in f["candidates"][:3]]
            for f in found]
    print("identify after enrollment:", seen)
    assert all(f["candidates"] and f["candidates"][0]["speaker_id"] == spk["id"]
               for f in found), seen

    # keys: checked in the database on every request, so a revoked key is refused at once
    made = cli(env, "keys", "create", "--name", "short-lived", "--scope", "recognize")
    short = made.stdout.strip().splitlines()[-1]
    assert [call(port, "GET", "/speakers", short)[0] for _ in range(6)] == [403] * 6
    assert cli(env, "keys", "revoke", short.split("_")[1]).returncode == 0
    assert [call(port, "GET", "/speakers", short)[0] for _ in range(9)] == [401] * 9
    assert [call(port, "GET", "/speakers", None)[0] for _ in range(9)] == [401] * 9

    # the stores agree: rows = vectors = files, and the reconciler finds nothing
    c = counts(env)
    print("stores:", c)
    assert c["utterance_rows"] == c["utterance_vectors"] == c["files"] > 0, c
    assert c["voiceprint_rows"] == c["voiceprint_vectors"] > 0, c
    check = cli(env, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert all(r["ok"] for r in json.loads(check.stdout))
