"""``voiceprint db``: migrations and the consistency check."""
from __future__ import annotations

import click

from voiceprint.cli.base import cli_runtime, echo_json, main
from voiceprint.config import Config


@main.group()
def db() -> None:
    """Database migrations and consistency checks."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (SQLite, MySQL/MariaDB, PostgreSQL); rebuild legacy vector collections.

    Data from before tenants goes to the tenant ``default``. Vector
    collections made before tenants are rebuilt from the database.
    """
    from voiceprint.services.reconcile import Reconciler
    from voiceprint.stores import migrate
    url = Config().DATABASE_URL
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current_revision(url)}")
    rebuilt = [r for r in Reconciler(cli_runtime()).speakers(repair=True) if r.legacy]
    for r in rebuilt:
        click.echo(f"rebuilt vector collection {r.collection} ({r.rows} vectors) with tenants")


@db.command("current")
def db_current() -> None:
    from voiceprint.stores import migrate
    click.echo(f"{migrate.current_revision(Config().DATABASE_URL)} (head {migrate.head_revision()})")


@db.command("check")
@click.option("--repair", is_flag=True,
              help="re-insert missing vectors, delete orphan vectors and files, rebuild legacy "
                   "collections")
@click.option("--min-age", type=float, default=None,
              help="seconds an unreferenced file must be old to count as a leftover (default "
                   "VOICEPRINT_ORPHAN_FILE_MIN_AGE_SECONDS; 0 when the service is stopped)")
def db_check(repair: bool, min_age: float | None) -> None:
    """Compare Milvus and the audio files with the database (the source of truth)."""
    from voiceprint.services.reconcile import Reconciler
    reports = Reconciler(cli_runtime()).run(repair=repair, min_file_age=min_age)
    echo_json([r.to_dict() for r in reports])
    if not repair and not all(r.ok for r in reports):
        raise SystemExit(1)
