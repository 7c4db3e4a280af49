"""tenants, API keys and the audit log; every record belongs to a tenant; ids never re-used

Existing data goes into the default tenant (id 1, "default"). On SQLite the
tables are rebuilt with AUTOINCREMENT so that a deleted row's id is never
handed out again. On MySQL/MariaDB the external ids and names become
VARBINARY so that they match exactly (case and trailing spaces count).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

from voiceprint.stores.types import BigId, ExactString, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NO_REUSE = {"sqlite_autoincrement": True}
#: tables with a surrogate id that SQLite must stop re-using
ID_TABLES = ("utterances", "sounds", "sound_loads")


def _legacy(name: str, *columns: sa.Column) -> sa.Table:
    """A table as 0001/0002 created it, minus its unnamed unique constraint (SQLite batch copy)."""
    return sa.Table(name, sa.MetaData(), *columns)


def _legacy_speakers() -> sa.Table:
    return _legacy(
        "speakers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("meta", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False))


def _legacy_libraries() -> sa.Table:
    return _legacy(
        "sound_libraries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False))


def _unique_on(table: str, column: str) -> str | None:
    for uc in sa.inspect(op.get_bind()).get_unique_constraints(table):
        if uc["column_names"] == [column]:
            return uc["name"]
    return None


def _tenant_column() -> sa.Column:
    return sa.Column("tenant_id", BigId, nullable=False, server_default=sa.text("1"))


def _scope_to_tenant(table: str, unique_col: str | None, unique_name: str | None,
                     legacy: sa.Table | None) -> None:
    """Add tenant_id (existing rows -> tenant 1), its FK and index; make ``unique_col``
    unique per tenant instead of globally."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    old_unique = _unique_on(table, unique_col) if unique_col and not sqlite else None
    kwargs = dict(recreate="always", table_kwargs=NO_REUSE, copy_from=legacy) if sqlite else {}
    with op.batch_alter_table(table, **kwargs) as batch:
        batch.add_column(_tenant_column())
        if old_unique:
            batch.drop_constraint(old_unique, type_="unique")
        if unique_col:
            batch.alter_column(unique_col, type_=ExactString(128 if table == "speakers" else 64),
                               existing_nullable=False)
            batch.create_unique_constraint(unique_name, ["tenant_id", unique_col])
        batch.create_foreign_key(f"fk_{table}_tenant_id", "tenants", ["tenant_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index(f"ix_{table}_tenant_id", ["tenant_id"])
    if not sqlite:
        op.alter_column(table, "tenant_id", server_default=None, existing_type=BigId,
                        existing_nullable=False)


def upgrade() -> None:
    tenants = op.create_table(
        "tenants",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", ExactString(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        **NO_REUSE,
    )
    op.bulk_insert(tenants, [{"id": 1, "name": "default",
                              "created_at": dt.datetime.now(dt.timezone.utc)}])
    if op.get_bind().dialect.name == "postgresql":  # the explicit id 1 did not advance the sequence
        op.execute("SELECT setval(pg_get_serial_sequence('tenants', 'id'), 1)")
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_prefix", ExactString(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_used_at", UtcDateTime, nullable=True),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        **NO_REUSE,
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("tenant_id", BigId, nullable=True),
        sa.Column("key_id", BigId, nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=True),
        sa.Column("target_id", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON, nullable=True),
        **NO_REUSE,
    )
    for col in ("created_at", "tenant_id", "action"):
        op.create_index(f"ix_audit_log_{col}", "audit_log", [col])

    sqlite = op.get_bind().dialect.name == "sqlite"
    _scope_to_tenant("speakers", "external_id", "uq_speakers_tenant_external_id",
                     _legacy_speakers())
    _scope_to_tenant("sound_libraries", "name", "uq_sound_libraries_tenant_name",
                     _legacy_libraries())
    _scope_to_tenant("calibrations", None, None, None)
    if sqlite:
        for table in ID_TABLES:
            with op.batch_alter_table(table, recreate="always", table_kwargs=NO_REUSE):
                pass


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, col, name in (("speakers", "external_id", "uq_speakers_tenant_external_id"),
                             ("sound_libraries", "name", "uq_sound_libraries_tenant_name"),
                             ("calibrations", None, None)):
        with op.batch_alter_table(table, **(dict(recreate="always") if sqlite else {})) as batch:
            if name:
                batch.drop_constraint(name, type_="unique")
            batch.drop_constraint(f"fk_{table}_tenant_id", type_="foreignkey")
            batch.drop_index(f"ix_{table}_tenant_id")
            batch.drop_column("tenant_id")
            if col:
                batch.alter_column(col, type_=sa.String(128 if table == "speakers" else 64),
                                   existing_nullable=False)
                batch.create_unique_constraint(f"uq_{table}_{col}", [col])
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_table("tenants")
