"""Alembic migrations run on SQLite, MariaDB and PostgreSQL and match the table objects."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from voiceprint.stores import migrate
from voiceprint.stores.records import create_db_engine, metadata


@pytest.fixture(params=["sqlite", "mysql", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return request.getfixturevalue(f"{request.param}_url")


def _diff(url: str) -> list:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, metadata)
    engine.dispose()
    return diff


def test_upgrade_matches_metadata_and_downgrade_empties(db_url):
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    assert _diff(db_url) == []
    migrate.downgrade(db_url, "base")
    engine = create_db_engine(db_url)
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert not tables & set(metadata.tables)
    migrate.upgrade(db_url)  # and back up again
    assert _diff(db_url) == []
