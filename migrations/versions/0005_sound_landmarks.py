"""sound_landmarks: landmark fingerprints of sounds (near-duplicate search)

One row per pair of spectral peaks of a stored sound
(``voiceprint.audio.landmarks``), looked up by (library, hash). Sounds stored
before this revision have no landmarks and are ranked by cosine alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

from voiceprint.stores.types import BigId

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sound_landmarks",
        sa.Column("sound_id", BigId, sa.ForeignKey("sounds.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("frame", sa.Integer, primary_key=True),
        sa.Column("hash", sa.Integer, primary_key=True),
        sa.Column("library_id", BigId, sa.ForeignKey("sound_libraries.id", ondelete="CASCADE"),
                  nullable=False),
    )
    op.create_index("ix_sound_landmarks_library_hash", "sound_landmarks", ["library_id", "hash"])


def downgrade() -> None:
    # the table takes its index along (MySQL refuses to drop an index a foreign key uses)
    op.drop_table("sound_landmarks")
