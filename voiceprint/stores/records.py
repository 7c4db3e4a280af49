"""Relational records (SQLAlchemy Core): tenants, keys, audit, speakers, sounds, calibrations,
diarization jobs (recordings).

The database is the source of truth: every embedding is stored here too
(float32 bytes), so the Milvus collections can be checked and rebuilt from
it (``voiceprint db check --repair``). The schema is created by the Alembic
migrations in ``migrations/``; these table objects must match them (a test
compares the two on SQLite, MariaDB and PostgreSQL).

Every piece of data belongs to a **tenant**: speakers (and through them
utterances and voiceprints), sound libraries (and through them sounds),
calibrations and audit records. Ids are never re-used (``AUTOINCREMENT`` on
SQLite; sequences and InnoDB's persistent counters elsewhere), so a deleted
speaker's id can never point at somebody else.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from voiceprint.stores.types import (BigBlob, BigId, ExactString, UtcDateTime, from_blob,
                                     to_blob, utcnow)

__all__ = ["metadata", "tenants", "api_keys", "audit_log", "speakers", "utterances",
           "voiceprints", "calibrations", "sound_libraries", "sounds", "sound_tags",
           "sound_loads", "sound_landmarks", "recordings", "create_db_engine", "to_blob",
           "from_blob", "utcnow",           "DEFAULT_TENANT_ID"]

metadata = sa.MetaData()
#: the tenant an install without keys runs as, and where pre-tenant data went (migration 0004)
DEFAULT_TENANT_ID = 1
_NO_REUSE = {"sqlite_autoincrement": True}


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, primary_key=True, autoincrement=True)


def _tenant() -> sa.Column[int]:
    return sa.Column("tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                     nullable=False, index=True)


# -- access control -----------------------------------------------------------------
tenants = sa.Table(
    "tenants", metadata, _id(),
    sa.Column("name", ExactString(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    **_NO_REUSE,
)

#: API keys: only a SHA-256 of the secret is kept; ``key_prefix`` is the public part
api_keys = sa.Table(
    "api_keys", metadata, _id(), _tenant(),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("key_prefix", ExactString(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    **_NO_REUSE,
)

#: who did what to which record, with what outcome; never any audio
audit_log = sa.Table(
    "audit_log", metadata, _id(),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow, index=True),
    sa.Column("tenant_id", BigId, nullable=True, index=True),
    sa.Column("key_id", BigId, nullable=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False, index=True),
    sa.Column("target_type", sa.String(16), nullable=True),
    sa.Column("target_id", sa.BigInteger, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("details", sa.JSON, nullable=True),
    **_NO_REUSE,
)

# -- speakers -------------------------------------------------------------------------
speakers = sa.Table(
    "speakers", metadata, _id(), _tenant(),
    sa.Column("external_id", ExactString(128), nullable=False),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("meta", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow, onupdate=utcnow),
    sa.UniqueConstraint("tenant_id", "external_id", name="uq_speakers_tenant_external_id"),
    **_NO_REUSE,
)

utterances = sa.Table(
    "utterances", metadata, _id(),
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
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Index("ix_utterances_speaker_encoder", "speaker_id", "encoder"),
    **_NO_REUSE,
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
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow, onupdate=utcnow),
)

#: one row per calibration run: operating points (results JSON) + the AS-norm cohort
calibrations = sa.Table(
    "calibrations", metadata, _id(), _tenant(),
    sa.Column("encoder", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Column("cohort", BigBlob, nullable=False),
    sa.Column("cohort_count", sa.Integer, nullable=False),
    sa.Column("cohort_dim", sa.Integer, nullable=False),
    **_NO_REUSE,
)

# -- similar-sound search ----------------------------------------------------------------
#: a named, isolated sound library; each has its own Milvus collection
#: ``<prefix>_<encoder>_sounds_<id>`` holding vectors of ``encoder``
sound_libraries = sa.Table(
    "sound_libraries", metadata, _id(), _tenant(),
    sa.Column("name", ExactString(64), nullable=False),
    sa.Column("encoder", sa.String(64), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("tenant_id", "name", name="uq_sound_libraries_tenant_name"),
    **_NO_REUSE,
)

#: one row per stored sound; ``embedding`` (float32 bytes) is the source of truth
sounds = sa.Table(
    "sounds", metadata, _id(),
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
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("library_id", "content_sha256", name="uq_sounds_library_sha256"),
    **_NO_REUSE,
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

#: landmark fingerprints of a sound (voiceprint.audio.landmarks): one row per peak pair,
#: looked up by (library, hash) at search and insert time to find the sounds that contain
#: a query at one time offset (near-duplicates under noise, band limits, codecs, cuts)
sound_landmarks = sa.Table(
    "sound_landmarks", metadata,
    sa.Column("sound_id", BigId, sa.ForeignKey("sounds.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("frame", sa.Integer, primary_key=True),
    sa.Column("hash", sa.Integer, primary_key=True),
    sa.Column("library_id", BigId, sa.ForeignKey("sound_libraries.id", ondelete="CASCADE"),
              nullable=False),
    sa.Index("ix_sound_landmarks_library_hash", "library_id", "hash"),
)

#: progress of CLI bulk loads (``voiceprint sounds load``), readable over HTTP
sound_loads = sa.Table(
    "sound_loads", metadata, _id(),
    sa.Column("library_id", BigId, sa.ForeignKey("sound_libraries.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("loaded", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    **_NO_REUSE,
)


# -- diarization jobs ---------------------------------------------------------------------
#: one uploaded recording to diarize: status ``queued`` -> ``running`` -> ``done``/``failed``;
#: ``updated_at`` is the worker's heartbeat, ``result`` the segments and identifications
recordings = sa.Table(
    "recordings", metadata, _id(), _tenant(),
    sa.Column("status", sa.String(16), nullable=False, index=True),
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
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    **_NO_REUSE,
)


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
