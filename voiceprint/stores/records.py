"""Relational records (SQLAlchemy Core): speakers, utterances, voiceprints, sounds.

The database is the source of truth: every embedding is stored here too
(float32 bytes), so the Milvus collections can be checked and rebuilt from
it (``voiceprint db check --repair``). The schema is created by the Alembic
migrations in ``migrations/``; these table objects must match them (a test
compares the two on SQLite, MariaDB and PostgreSQL).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

# BIGINT everywhere ids meet Milvus INT64; SQLite needs INTEGER for autoincrement.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


speakers = sa.Table(
    "speakers", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("external_id", sa.String(128), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("meta", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow),
)

utterances = sa.Table(
    "utterances", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("speaker_id", BigId, sa.ForeignKey("speakers.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("encoder", sa.String(64), nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("audio_key", sa.String(255), nullable=True),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("speech_s", sa.Float, nullable=False),
    sa.Column("sample_rate", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Index("ix_utterances_speaker_encoder", "speaker_id", "encoder"),
)

#: one voiceprint per (speaker, encoder): the L2-normalised mean of its utterances
voiceprints = sa.Table(
    "voiceprints", metadata,
    sa.Column("speaker_id", BigId, sa.ForeignKey("speakers.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("encoder", sa.String(64), primary_key=True),
    sa.Column("embedding", sa.LargeBinary, nullable=False),
    sa.Column("n_utterances", sa.Integer, nullable=False),
    sa.Column("speech_s", sa.Float, nullable=False),
    sa.Column("enrolled", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow),
)


def to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes of a 1-D vector."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


def create_db_engine(url: str) -> Engine:
    """Engine with per-dialect settings (SQLite: WAL, foreign keys, busy timeout)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)

#: LONGBLOB on MySQL (BLOB caps at 64 KiB); bytea / BLOB elsewhere
BigBlob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")

#: one row per calibration run: operating points (results JSON) + the AS-norm cohort
calibrations = sa.Table(
    "calibrations", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("encoder", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Column("cohort", BigBlob, nullable=False),
    sa.Column("cohort_count", sa.Integer, nullable=False),
    sa.Column("cohort_dim", sa.Integer, nullable=False),
)

# -- similar-sound search -------------------------------------------------------
#: a named, isolated sound library; each has its own Milvus collection
#: ``<prefix>_<encoder>_sounds_<id>`` holding vectors of ``encoder``
sound_libraries = sa.Table(
    "sound_libraries", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("encoder", sa.String(64), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
)

#: one row per stored sound; ``embedding`` (float32 bytes) is the source of truth
sounds = sa.Table(
    "sounds", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("library_id", BigId, sa.ForeignKey("sound_libraries.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("sample_rate", sa.Integer, nullable=False),
    sa.Column("channels", sa.Integer, nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("encoder", sa.String(64), nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),
    sa.Column("audio_key", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("library_id", "content_sha256", name="uq_sounds_library_sha256"),
)

#: tags of a sound (string key -> string value), indexed for equality filters
sound_tags = sa.Table(
    "sound_tags", metadata,
    sa.Column("sound_id", BigId, sa.ForeignKey("sounds.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
    sa.Index("ix_sound_tags_key_value", "key", "value"),
)

#: progress of CLI bulk loads (``voiceprint sounds load``), readable over HTTP
sound_loads = sa.Table(
    "sound_loads", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("library_id", BigId, sa.ForeignKey("sound_libraries.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("loaded", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", sa.DateTime, nullable=False, default=utcnow),
    sa.Column("finished_at", sa.DateTime, nullable=True),
)
