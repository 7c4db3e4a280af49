"""The real server (`voiceprint serve`: gunicorn's asyncio worker + the buffering front).

Stalled uploads must not starve the service: eight connections that announce
a 1 MB body and then send nothing leave ``/health`` and an identify
answering within 2 s, and are themselves answered 408 once the body timeout
passes. A non-loopback bind without any API key refuses to start.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import SENTENCES
from voiceprint.cli.serve import is_loopback
from voiceprint.stores.milvus_server import free_port

BODY_TIMEOUT = 4.0


def _multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bytes):
                head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                        f'filename="{name}.wav"\r\nContent-Type: audio/wav\r\n\r\n')
                parts.append(head.encode() + item + b"\r\n")
            else:
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                             f'\r\n\r\n{item}\r\n'.encode())
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(port: int, method: str, path: str, body: bytes | None = None,
            content_type: str | None = None, timeout: float = 30.0) -> tuple[int, Any, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": content_type} if content_type else {}
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t0
    conn.close()
    return resp.status, json.loads(data) if data else None, elapsed


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
