"""A tiny HTTP client for benchmarks and tests that talk to a real `voiceprint serve`."""
from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import Any


def multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body: bytes values (or lists of them) become files.

    Returns (body, content type with its boundary).
    """
    boundary = uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bytes):
                out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                           f'filename="{name}.wav"\r\nContent-Type: audio/wav\r\n\r\n'.encode()
                           + item + b"\r\n")
            else:
                out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                           f'{item}\r\n'.encode())
    return (b"".join(out) + f"--{boundary}--\r\n".encode(),
            f"multipart/form-data; boundary={boundary}")


def call(port: int, method: str, path: str, body: bytes | None = None,
         content_type: str | None = None, key: str | None = None,
         timeout: float = 120.0) -> tuple[int, Any, dict[str, str], float]:
    """(status, JSON body or None, headers with lower-case names, seconds) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if content_type:
        headers["Content-Type"] = content_type
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t0
    conn.close()
    return (resp.status, json.loads(data) if data else None,
            {k.lower(): v for k, v in resp.getheaders()}, elapsed)
