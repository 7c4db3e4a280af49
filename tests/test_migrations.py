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


def test_an_open_install_upgrades_into_the_default_tenant(db_url):
    """Data of a pre-tenant install (revision 0003) lands in tenant 'default', ids kept."""
    import datetime as dt
    if migrate.current_revision(db_url) is not None:  # a session database other tests migrated
        migrate.downgrade(db_url, "base")
    migrate.upgrade(db_url, "0003")
    engine = create_db_engine(db_url)
    now = dt.datetime(2026, 11, 30, 12, 0, 0)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO speakers (id, external_id, name, meta, created_at, "
                             "updated_at) VALUES (7, 'cust-7', 'Ada', '{}', :n, :n)"), {"n": now})
        conn.execute(sa.text("INSERT INTO utterances (id, speaker_id, encoder, embedding, "
                             "content_sha256, duration_s, speech_s, sample_rate, created_at) "
                             "VALUES (3, 7, 'ge2e', :b, 'x', 1, 1, 16000, :n)"),
                     {"n": now, "b": b"\0\0\x80?"})
        conn.execute(sa.text("INSERT INTO sound_libraries (id, name, encoder, dim, created_at) "
                             "VALUES (2, 'fx', 'aisfx', 512, :n)"), {"n": now})
    engine.dispose()
    migrate.upgrade(db_url)
    from voiceprint.stores.records import sound_libraries, speakers, tenants, utterances
    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(tenants.c.id, tenants.c.name)).all() == [(1, "default")]
        spk = conn.execute(sa.select(speakers)).one()
        assert (spk.id, spk.tenant_id, spk.external_id) == (7, 1, "cust-7")
        assert spk.created_at.tzinfo is not None and spk.created_at.hour == 12
        assert conn.execute(sa.select(utterances.c.id, utterances.c.speaker_id)).all() == [(3, 7)]
        assert conn.execute(sa.select(sound_libraries.c.tenant_id)).scalar_one() == 1
    engine.dispose()
    migrate.downgrade(db_url, "base")
    migrate.upgrade(db_url)


def test_every_migration_ships_with_the_package():
    """setup.cfg's data_files carry migrations/ into <prefix>/share/voiceprint/migrations."""
    import configparser
    import glob
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    shipped = set()
    for target, files in cfg["options.data_files"].items():
        assert target.startswith("share/voiceprint/migrations")
        for pattern in files.split(","):
            shipped |= {Path(p).relative_to(root / "migrations").as_posix()
                        for p in glob.glob(str(root / pattern.strip()))}
    on_disk = {p.relative_to(root / "migrations").as_posix()
               for p in (root / "migrations").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk <= shipped, on_disk - shipped
