"""A local Milvus standalone server from the ``milvus`` PyPI package.

For tests and benchmarks on machines without Docker: starts Milvus 2.3 with
its embedded etcd/storage under ``base_dir`` and stops it afterwards. In
production, run Milvus with docker-compose (see ``docker-compose.yml``).
"""
from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def milvus_server(base_dir: str | Path, port: int | None = None,
                  startup_timeout_s: float = 600.0) -> Iterator[str]:
    """Start a Milvus server, yield its URI (``http://127.0.0.1:PORT``), stop it.

    ``startup_timeout_s``: how long to wait for it to answer (about 20 s on an
    idle machine; several minutes on a loaded 2-core one). Raises
    ``RuntimeError`` when the ``milvus`` package is not installed, or
    ``TimeoutError`` when the server does not come up (it is stopped then).
    """
    try:
        from milvus import MilvusServer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the 'milvus' package is not installed: pip install milvus") from exc
    server = MilvusServer()
    server.set_base_dir(str(base_dir))
    server.listen_port = port or free_port()
    server.wait_for_started = False
    server.start()
    try:
        server.wait_started(timeout=startup_timeout_s * 1000)
    except BaseException:
        server.stop()
        raise
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
