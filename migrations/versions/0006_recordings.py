"""recordings: diarization jobs (status, progress, result) per tenant

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from voiceprint.stores.types import BigId, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error_reason", sa.String(64), nullable=True),
        sa.Column("error_message", sa.String(512), nullable=True),
        sa.Column("audio_key", sa.String(255), nullable=True),
        sa.Column("worker", sa.String(64), nullable=True),
        sa.Column("key_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recordings_tenant_id", "recordings", ["tenant_id"])
    op.create_index("ix_recordings_status", "recordings", ["status"])


def downgrade() -> None:
    op.drop_table("recordings")  # its indexes go with it (MySQL refuses to drop the FK's first)
