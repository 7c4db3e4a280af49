"""Apply the Alembic migrations in ``migrations/`` programmatically."""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from voiceprint.stores.records import create_db_engine

def migrations_dir() -> Path:
    """``migrations/`` of a source checkout (or editable install), else the copy an
    installed package carries in ``<prefix>/share/voiceprint/migrations``."""
    source = Path(__file__).resolve().parents[2] / "migrations"
    if (source / "env.py").is_file():
        return source
    for prefix in (sysconfig.get_path("data"), sys.prefix):
        installed = Path(prefix) / "share" / "voiceprint" / "migrations"
        if (installed / "env.py").is_file():
            return installed
    raise FileNotFoundError("the voiceprint migrations are missing (neither a source checkout "
                            "nor <prefix>/share/voiceprint/migrations)")


MIGRATIONS_DIR = migrations_dir()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` to ``revision`` (creates SQLite files' folders)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision(s), comma-separated if the history has several heads."""
    return ",".join(sorted(ScriptDirectory.from_config(alembic_config("")).get_heads()))


def current_revision(url: str) -> str | None:
    """The database's revision(s), comma-separated; None when never migrated."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
            return ",".join(sorted(heads)) if heads else None
    finally:
        engine.dispose()
