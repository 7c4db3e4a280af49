"""Alembic environment for voiceprint (SQLAlchemy Core metadata, no ORM).

The URL comes from ``config.attributes['url']`` (set by ``voiceprint db
upgrade``), else ``VOICEPRINT_DATABASE_URL`` / the embedded SQLite default.
"""
from __future__ import annotations

from alembic import context

from voiceprint.config import Config
from voiceprint.stores.records import create_db_engine, metadata

config = context.config
url = config.attributes.get("url") or Config().DATABASE_URL


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(url)
    with engine.connect() as conn:
        if url.startswith("sqlite"):
            # batch migrations rebuild tables (drop + rename): with foreign keys on,
            # dropping ``speakers`` would cascade into ``utterances``
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()  # end SQLAlchemy's autobegin so Alembic's transaction commits
        context.configure(connection=conn, target_metadata=metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
