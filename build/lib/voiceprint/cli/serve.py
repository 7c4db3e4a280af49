"""``voiceprint serve``: migrate, check the bind is safe, exec gunicorn."""
from __future__ import annotations

import ipaddress
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
    or ``--allow-open`` / VOICEPRINT_ALLOW_OPEN=1 for a trusted network.
    """
    from voiceprint.stores import migrate
    from voiceprint.stores.vectors import is_local_uri

    cfg = Config()
    bind = bind or cfg.BIND
    migrate.upgrade(cfg.DATABASE_URL)
    if not is_loopback(bind) and cfg.AUTH != "required":
        from voiceprint.services.access import active_key_exists
        from voiceprint.stores.records import create_db_engine
        engine = create_db_engine(cfg.DATABASE_URL)
        try:
            has_keys = active_key_exists(engine)
        finally:
            engine.dispose()
        if not has_keys and not (allow_open or cfg.ALLOW_OPEN):
            raise click.ClickException(
                f"refusing to serve {bind} with no API key: anyone who can reach it could read "
                "and change every voiceprint. Create a key first (`voiceprint keys create "
                "--name admin --scope all`), bind 127.0.0.1, or pass --allow-open "
                "(VOICEPRINT_ALLOW_OPEN=1) on a trusted network.")
    if is_local_uri(cfg.MILVUS_URI):
        if workers and workers > 1:
            click.echo("Milvus Lite allows one process: using 1 worker (set "
                       "VOICEPRINT_MILVUS_URI to a server for more)", err=True)
        workers = 1
    workers = workers or 2
    env = dict(os.environ)
    if threads:
        env["VOICEPRINT_SERVE_THREADS"] = str(threads)
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    args = [gunicorn, "--worker-class", "asgi", "--bind", bind, "--workers", str(workers),
            "--timeout", str(timeout), "--graceful-timeout", "30", "--access-logfile", "-",
            "voiceprint.wsgi:asgi"]
    click.echo(" ".join(args), err=True)
    os.execve(gunicorn, args, env)
