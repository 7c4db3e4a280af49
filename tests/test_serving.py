"""The real server (`voiceprint serve`: gunicorn's asyncio worker + the buffering front).

Stalled uploads must not starve the service: eight connections that announce
a 1 MB body and then send nothing leave ``/health`` and an identify
answering within 2 s, and are themselves answered 408 once the body timeout
passes. A non-loopback bind without any API key refuses to start.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from eval.httpclient import call
from eval.httpclient import multipart as _multipart
from tests.conftest import SENTENCES
from voiceprint.cli.serve import is_loopback
from voiceprint.stores.milvus_server import free_port

BODY_TIMEOUT = 4.0


def request(port: int, method: str, path: str, body: bytes | None = None,
            content_type: str | None = None, timeout: float = 30.0) -> tuple[int, Any, float]:
    status, data, _, elapsed = call(port, method, path, body, content_type, timeout=timeout)
    return status, data, elapsed


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    """`voiceprint serve` on a free loopback port, SQLite + Milvus Lite + ge2e."""
    pytest.importorskip("resemblyzer")
    port = free_port()
    env = {**os.environ, "VOICEPRINT_DATA_DIR": str(tmp_path), "VOICEPRINT_SPEAKER_ENCODER": "ge2e",
           "VOICEPRINT_SOUND_ENCODER": "ge2e", "VOICEPRINT_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
           "VOICEPRINT_SERVE_THREADS": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "voiceprint", "serve", "--bind",
                             f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if request(port, "GET", "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            proc.kill()
            pytest.fail("the server did not start:\n" + proc.communicate()[0].decode()[-3000:])
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def stall(port: int) -> socket.socket:
    """A connection that announces a 1 MB upload, sends 10 bytes of it, then nothing."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /speakers/1/enrollments HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 1000000\r\n\r\n--b\r\nConte")
    return s


def test_stalled_uploads_do_not_starve_the_service(server, speak):
    port = server
    body, ctype = _multipart({"external_id": "x"})
    status, created, _ = request(port, "POST", "/speakers",
                                 json.dumps({"external_id": "awb"}).encode(), "application/json")
    assert status == 201
    clips = [speak(t, "flite:awb") for t in SENTENCES[:4]]
    body, ctype = _multipart({"clips": clips[:3]})
    status, enrolled, _ = request(port, "POST", f"/speakers/{created['id']}/enrollments", body, ctype)
    assert status == 201, enrolled
    query, qtype = _multipart({"clip": clips[3]})
    request(port, "POST", "/identify", query, qtype)  # warm

    stalled = [stall(port) for _ in range(8)]
    try:
        time.sleep(0.5)
        status, health, t_health = request(port, "GET", "/health", timeout=10)
        assert status == 200 and t_health < 2.0, t_health
        status, found, t_identify = request(port, "POST", "/identify", query, qtype, timeout=10)
        assert status == 200 and found["decision"] == "identified", found
        assert t_identify < 2.0, t_identify
        # the stalled uploads themselves are answered 408 once the body timeout passes
        stalled[0].settimeout(BODY_TIMEOUT * 3)
        reply = stalled[0].recv(4096).decode(errors="replace")
        assert reply.startswith("HTTP/1.1 408"), reply[:200]
        assert "did not arrive in time" in reply
    finally:
        for s in stalled:
            s.close()


def test_an_oversized_body_is_refused_before_it_is_read(server):
    s = socket.create_connection(("127.0.0.1", server))
    s.sendall(b"POST /identify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
              b"boundary=b\r\nContent-Length: 99999999999\r\n\r\n")
    s.settimeout(10)
    reply = s.recv(4096).decode(errors="replace")
    s.close()
    assert reply.startswith("HTTP/1.1 413"), reply[:200]


def test_serve_refuses_a_public_bind_without_keys(runner):
    r = runner("serve", "--bind", "0.0.0.0:0")
    assert r.exit_code == 1 and "refusing to serve 0.0.0.0:0 with no API key" in r.output
    assert "--allow-open" in r.output


def test_loopback_binds():
    assert is_loopback("127.0.0.1:8000") and is_loopback("localhost:1") and is_loopback("[::1]:80")
    assert is_loopback("unix:/tmp/x.sock")
    assert not is_loopback("0.0.0.0:8000") and not is_loopback("10.0.0.5:80")
    assert not is_loopback("[::]:80") and not is_loopback("example.com:80")


def test_the_serve_plan_keeps_public_binds_safe():
    import click

    from voiceprint.cli.serve import plan
    from voiceprint.config import Config
    server = Config({"VOICEPRINT_MILVUS_URI": "http://milvus:19530"})
    with pytest.raises(click.ClickException, match="no API key"):
        plan(server, "0.0.0.0:8000", 3, has_keys=False, allow_open=False)
    with pytest.raises(click.ClickException, match="VOICEPRINT_REDIS_URL"):
        plan(server, "0.0.0.0:8000", 3, has_keys=True, allow_open=False)
    shared = Config({"VOICEPRINT_MILVUS_URI": "http://milvus:19530",
                     "VOICEPRINT_REDIS_URL": "redis://redis:6379/0"})
    chosen = plan(shared, "0.0.0.0:8000", 3, has_keys=True, allow_open=False)
    assert chosen.workers == 3 and chosen.env == {"VOICEPRINT_AUTH": "required"}
    local = plan(server, "127.0.0.1:8000", 3, has_keys=False, allow_open=False)
    assert local.workers == 3 and local.env == {} and "REDIS_URL" in local.warnings[0]
    lite = plan(Config({}), "127.0.0.1:8000", 4, has_keys=False, allow_open=False)
    assert lite.workers == 1 and "Milvus Lite" in lite.warnings[0]
    trusted = plan(shared, "0.0.0.0:8000", 2, has_keys=False, allow_open=True)
    assert trusted.env == {}
