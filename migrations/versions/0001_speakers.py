"""speakers, utterances and voiceprints

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "speakers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("meta", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "utterances",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("speaker_id", BigId, sa.ForeignKey("speakers.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("audio_key", sa.String(255), nullable=True),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("speech_s", sa.Float, nullable=False),
        sa.Column("sample_rate", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_utterances_speaker_id", "utterances", ["speaker_id"])
    op.create_index("ix_utterances_speaker_encoder", "utterances", ["speaker_id", "encoder"])
    op.create_table(
        "voiceprints",
        sa.Column("speaker_id", BigId, sa.ForeignKey("speakers.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("encoder", sa.String(64), primary_key=True),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("n_utterances", sa.Integer, nullable=False),
        sa.Column("speech_s", sa.Float, nullable=False),
        sa.Column("enrolled", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("voiceprints")
    op.drop_table("utterances")  # its indexes go with it
    op.drop_table("speakers")
