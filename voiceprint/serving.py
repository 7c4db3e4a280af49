"""A buffering front for the Flask app under gunicorn's asyncio (``asgi``) worker.

Why: with a threaded WSGI worker, a client that announces a large body and
then stalls keeps a worker thread blocked in ``read()``; a handful of such
connections starve every other request (measured: four stalled uploads held
``/health`` for 150 s). Here the event loop receives request bodies - a
stalled upload costs a coroutine and a buffer, not a thread - and the WSGI
app only runs, in a thread pool, once its whole body has arrived:

* ``Content-Length`` above the limit: 413 at once, nothing read;
* a body (also chunked) that grows past the limit: 413;
* no body bytes for ``body_timeout`` seconds, or the whole body not in
  within ``body_deadline``: 408 and the connection is closed.

Bodies are spooled to a temporary file past 1 MiB. The response is streamed
back from the worker thread (``send_file`` of a long sound does not sit in
memory).
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import Any, Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BufferedWSGI:
    """ASGI application running a WSGI app on fully received request bodies."""

    def __init__(self, app: WSGIApp, *, max_body: int, body_timeout: float,
                 body_deadline: float | None = None, threads: int = 8) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.body_deadline = body_deadline or 4 * body_timeout
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.pool.shutdown(wait=False, cancel_futures=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        with SpooledTemporaryFile(max_size=2**20) as body:
            try:
                size = await self._receive_body(scope, receive, body)
            except BodyRefused as exc:
                await _error(send, exc.status, exc.message)
                return
            body.seek(0)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.pool, self._run, scope, body, size, send, loop)

    async def _receive_body(self, scope: Scope, receive: Receive, body: Any) -> int:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise BodyRefused(413, f"the request body is larger than {self.max_body} bytes")
        size = 0
        deadline = asyncio.get_running_loop().time() + self.body_deadline
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), min(self.body_timeout, max(left, 0)))
            except asyncio.TimeoutError:
                raise BodyRefused(408, "the request body did not arrive in time") from None
            if message["type"] == "http.disconnect":
                raise BodyRefused(400, "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BodyRefused(413, f"the request body is larger than {self.max_body} bytes")
            body.write(chunk)
            if not message.get("more_body"):
                return size

    def _run(self, scope: Scope, body: Any, size: int, send: Send,
             loop: asyncio.AbstractEventLoop) -> None:
        """In a worker thread: call the WSGI app and stream its response."""
        def post(message: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info and started.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                  for k, v in headers]
            return lambda data: None  # the legacy write() callable is not used by Flask

        result = self.app(_environ(scope, body, size), start_response)
        try:
            for chunk in result:
                if not chunk:
                    continue
                if not started.get("sent"):
                    post({"type": "http.response.start", "status": started["status"],
                          "headers": started["headers"]})
                    started["sent"] = True
                post({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            if not started.get("sent"):
                post({"type": "http.response.start", "status": started["status"],
                      "headers": started["headers"]})
            post({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _environ(scope: Scope, body: Any, size: int) -> dict[str, Any]:
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]), "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(size),
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body, "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    for key, value in scope.get("headers", []):
        name = key.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
        elif name != "CONTENT_LENGTH":
            name = f"HTTP_{name}"
            environ[name] = f"{environ[name]},{text}" if name in environ else text
    return environ


async def _error(send: Send, status: int, message: str) -> None:
    phrase = {400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large"}[status]
    body = json.dumps({"code": status, "status": phrase, "message": message,
                       "errors": {"reason": {408: "body_timeout", 413: "request_too_large",
                                             400: "client_gone"}[status]}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
