"""calibrations: measured operating points and the AS-norm cohort

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BigBlob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("results", sa.JSON, nullable=False),
        sa.Column("cohort", BigBlob, nullable=False),
        sa.Column("cohort_count", sa.Integer, nullable=False),
        sa.Column("cohort_dim", sa.Integer, nullable=False),
    )
    op.create_index("ix_calibrations_encoder", "calibrations", ["encoder"])


def downgrade() -> None:
    op.drop_table("calibrations")
