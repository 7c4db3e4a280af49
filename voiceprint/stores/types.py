"""Column types shared by the tables and the migrations.

* :data:`BigId` - BIGINT ids (they meet Milvus INT64); INTEGER on SQLite so
  that ``AUTOINCREMENT`` applies (ids are never re-used, see the tables'
  ``sqlite_autoincrement``).
* :class:`UtcDateTime` - stored as naive UTC on every database, returned as a
  timezone-aware UTC ``datetime`` (so the API prints RFC 3339 with ``+00:00``).
* :class:`ExactString` - a string compared byte for byte on every database:
  on MySQL/MariaDB it is ``VARBINARY`` (their default collations ignore case
  and trailing spaces; ``utf8mb4_bin`` still pads spaces).
* :data:`BigBlob` - ``LONGBLOB`` on MySQL (``BLOB`` caps at 64 KiB).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BigBlob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")
#: largest id a client may name (Milvus INT64, SQL BIGINT)
MAX_ID = 2**63 - 1


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A UTC instant: naive UTC in the database, aware UTC in Python."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs a timezone-aware datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


class ExactString(sa.types.TypeDecorator[str]):
    """A string matched exactly (case, accents and trailing spaces count) everywhere."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(self.length * 4))
        return dialect.type_descriptor(sa.String(self.length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in ("mysql", "mariadb"):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return value  # type: ignore[no-any-return]


def to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes of a 1-D vector."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """The float32 vector stored by :func:`to_blob`."""
    return np.frombuffer(blob, dtype="<f4").copy()
