"""``voiceprint serve``: migrate, check the bind is safe, exec gunicorn."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
import os
import shutil
import sys
from pathlib import Path

import click

from voiceprint.cli.base import main
from voiceprint.config import Config


def is_loopback(bind: str) -> bool:
    """True for ``127.x``, ``localhost``, ``[::1]`` and unix sockets."""
    if bind.startswith("unix:"):
        return True
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServePlan:
    """What ``serve`` will run: workers, extra environment, and warnings to print."""

    workers: int
    env: dict[str, str]
    warnings: tuple[str, ...]


def plan(cfg: Config, bind: str, workers: int | None, has_keys: bool,
         allow_open: bool) -> ServePlan:
    """Check the bind and worker layout against the stores and the keys (pure).

    Raises ``click.ClickException`` for an unsafe setup: a non-loopback bind with no
    API key (unless allowed open), or several workers on a public bind without Redis
    (their rate-limit and lock-out counters would not be shared).
    """
    from voiceprint.stores.vectors import is_local_uri

    public = not is_loopback(bind)
    open_ok = allow_open or cfg.ALLOW_OPEN
    warnings: list[str] = []
    env: dict[str, str] = {}
    if public and cfg.AUTH != "required" and not has_keys and not open_ok:
        raise click.ClickException(
            f"refusing to serve {bind} with no API key: anyone who can reach it could read "
            "and change every voiceprint. Create a key first (`voiceprint keys create "
            "--name admin --scope all`), bind 127.0.0.1, or pass --allow-open "
            "(VOICEPRINT_ALLOW_OPEN=1) on a trusted network.")
    if is_local_uri(cfg.MILVUS_URI):
        if workers and workers > 1:
            warnings.append("Milvus Lite allows one process: using 1 worker (set "
                            "VOICEPRINT_MILVUS_URI to a server for more)")
        workers = 1
    workers = workers or 2
    if workers > 1 and not cfg.REDIS_URL:
        msg = (f"{workers} workers without VOICEPRINT_REDIS_URL keep separate rate-limit and "
               f"verify lock-out counters (limits {workers}x looser, a locked claim can be "
               "retried on another worker); set VOICEPRINT_REDIS_URL=redis://host:6379/0")
        if public:
            raise click.ClickException(msg)
        warnings.append(msg)
    if public and cfg.AUTH == "auto" and not open_ok:
        # keys exist: keep them required, so that revoking the last one never opens the
        # service to the network
        env["VOICEPRINT_AUTH"] = "required"
    return ServePlan(workers, env, tuple(warnings))


@main.command()
@click.option("--bind", default=None, help="address:port (default VOICEPRINT_BIND, 127.0.0.1:8000)")
@click.option("--workers", type=int, default=None,
              help="gunicorn worker processes (forced to 1 on Milvus Lite)")
@click.option("--threads", type=int, default=None,
              help="threads per worker running requests (default VOICEPRINT_SERVE_THREADS)")
@click.option("--timeout", type=int, default=120, show_default=True,
              help="worker heartbeat timeout, seconds")
@click.option("--allow-open", is_flag=True,
              help="bind a non-loopback address although no API key exists (trusted networks)")
def serve(bind: str | None, workers: int | None, threads: int | None, timeout: int,
          allow_open: bool) -> None:
    """Apply migrations, then exec gunicorn (asyncio worker with a buffering front).

    A non-loopback bind needs at least one API key (``voiceprint keys create``),
    or ``--allow-open`` / VOICEPRINT_ALLOW_OPEN=1 for a trusted network; several
    workers on it need VOICEPRINT_REDIS_URL.
    """
    from voiceprint.services.access import active_key_exists
    from voiceprint.stores import migrate
    from voiceprint.stores.records import create_db_engine

    cfg = Config()
    bind = bind or cfg.BIND
    migrate.upgrade(cfg.DATABASE_URL)
    engine = create_db_engine(cfg.DATABASE_URL)
    try:
        has_keys = active_key_exists(engine)
    finally:
        engine.dispose()
    chosen = plan(cfg, bind, workers, has_keys, allow_open)
    for warning in chosen.warnings:
        click.echo("warning: " + warning, err=True)
    env = {**os.environ, **chosen.env}
    if threads:
        env["VOICEPRINT_SERVE_THREADS"] = str(threads)
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    args = [gunicorn, "--worker-class", "asgi", "--bind", bind, "--workers", str(chosen.workers),
            "--timeout", str(timeout), "--graceful-timeout", "30", "--access-logfile", "-",
            "voiceprint.wsgi:asgi"]
    click.echo(" ".join(args), err=True)
    os.execve(gunicorn, args, env)
