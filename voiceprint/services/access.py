"""Tenants and API keys: who may call, for which tenant, with which scopes.

A key looks like ``vpk_<prefix>_<secret>``. Only the SHA-256 of the whole key
is stored (keys are 256-bit random strings, so a fast hash is enough: there
is nothing to brute-force); ``prefix`` is public and finds the row. The
secret is shown once, when the key is created (``voiceprint keys create``).

Scopes (a key holds one or more):

======================  =========================================================
``recognize``           identify and verify (``/identify``, ``/verify``)
``enroll``              create speakers and add clips to them
``speakers``            read, update and delete speakers; replace a voiceprint
``sounds:read``         search, list and play sounds
``sounds:write``        insert and delete sounds
``admin``               calibrations, dropping libraries, the audit log
======================  =========================================================

An install with no active key at all (and ``VOICEPRINT_AUTH=auto``) runs as
the default tenant with every scope: that is the open, loopback-only
install; ``voiceprint serve`` refuses to bind it to another address.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from voiceprint.errors import Conflict, NotFound, Unauthorized, VoiceprintError
from voiceprint.runtime import Runtime
from voiceprint.stores.records import DEFAULT_TENANT_ID, api_keys, tenants, utcnow

SCOPES: dict[str, str] = {
    "recognize": "identify and verify",
    "enroll": "create speakers and add clips to them",
    "speakers": "read, update and delete speakers; replace a voiceprint",
    "sounds:read": "search, list and play sounds",
    "sounds:write": "insert and delete sounds",
    "admin": "calibrations, dropping sound libraries, the audit log",
}
KEY_PATTERN = re.compile(r"^vpk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
PREFIX_PATTERN = re.compile(r"[0-9a-f]{12}")
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: how often (seconds) a key's last_used_at is written at most
LAST_USED_EVERY = 60.0


@dataclass(frozen=True)
class Principal:
    """The caller: a tenant, the key used (None for an open install or the CLI) and scopes."""

    tenant_id: int
    key_id: int | None
    scopes: frozenset[str]
    actor: str

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def open_principal(tenant_id: int = DEFAULT_TENANT_ID, actor: str = "open") -> Principal:
    """Every scope on a tenant: an install without keys, or the CLI on the host."""
    return Principal(tenant_id, None, frozenset(SCOPES), actor)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(SCOPES) if "all" in scopes else set(scopes))
    unknown = [s for s in out if s not in SCOPES]
    if unknown or not out:
        raise VoiceprintError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; choose "
                              f"from {', '.join(SCOPES)} or all", reason="bad_scope", status=422)
    return out


def active_key_exists(engine: Engine) -> bool:
    """True when at least one key is not revoked (the install is no longer open)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(api_keys.c.id).where(
            api_keys.c.revoked_at.is_(None)).limit(1)).first() is not None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessService:
    """Tenants and keys (the CLI manages them; the HTTP layer authenticates with them)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._last_used: dict[int, float] = {}
        self._lock = threading.Lock()

    # -- tenants ----------------------------------------------------------------------
    def tenant_id(self, name: str, *, create: bool = False) -> int:
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(tenants.c.id).where(tenants.c.name == name)).first()
        if row is not None:
            return int(row.id)
        if not create:
            raise NotFound(f"tenant {name!r} does not exist (create it with --create-tenant)",
                           reason="tenant_not_found")
        if not TENANT_NAME.match(name):
            raise VoiceprintError(f"tenant name {name!r} is invalid: 1-64 letters, digits, "
                                  "'_', '-' or '.'", reason="bad_tenant", status=422)
        try:
            with self.rt.engine.begin() as conn:
                return int(conn.execute(tenants.insert().values(
                    name=name, created_at=utcnow())).inserted_primary_key[0])
        except sa.exc.IntegrityError:  # created meanwhile
            return self.tenant_id(name)

    def tenants(self) -> list[dict[str, Any]]:
        with self.rt.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(tenants).order_by(tenants.c.id))]

    # -- keys -------------------------------------------------------------------------
    def create_key(self, tenant: str, name: str, scopes: Iterable[str], *,
                   create_tenant: bool = False) -> tuple[dict[str, Any], str]:
        """A new key; returns (its record, the secret - shown this once, stored hashed)."""
        scope_list = check_scopes(scopes)
        tenant_id = self.tenant_id(tenant, create=create_tenant)
        prefix = secrets.token_hex(6)
        secret = f"vpk_{prefix}_{secrets.token_urlsafe(32)}"
        with self.rt.engine.begin() as conn:
            key_id = int(conn.execute(api_keys.insert().values(
                tenant_id=tenant_id, name=name[:128], key_prefix=prefix, key_hash=hash_key(secret),
                scopes=" ".join(scope_list), created_at=utcnow())).inserted_primary_key[0])
        return self.key(key_id), secret

    def _query(self) -> sa.Select[Any]:
        return (sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.key_prefix,
                          api_keys.c.scopes, api_keys.c.created_at, api_keys.c.last_used_at,
                          api_keys.c.revoked_at, api_keys.c.tenant_id,
                          tenants.c.name.label("tenant"))
                .join(tenants, tenants.c.id == api_keys.c.tenant_id))

    @staticmethod
    def _dict(row: Any) -> dict[str, Any]:
        d = dict(row._mapping)
        d["scopes"] = d["scopes"].split()
        d["active"] = d["revoked_at"] is None
        return d

    def key(self, key_id: int) -> dict[str, Any]:
        with self.rt.engine.connect() as conn:
            row = conn.execute(self._query().where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"API key {key_id} does not exist", reason="key_not_found")
        return self._dict(row)

    def keys(self, tenant: str | None = None) -> list[dict[str, Any]]:
        q = self._query().order_by(api_keys.c.id)
        if tenant is not None:
            q = q.where(tenants.c.name == tenant)
        with self.rt.engine.connect() as conn:
            return [self._dict(r) for r in conn.execute(q)]

    def revoke(self, ref: str) -> dict[str, Any]:
        """Revoke by prefix (12 hex digits, which may all be decimal digits) or id.

        Revoking twice is a 409.
        """
        if PREFIX_PATTERN.fullmatch(ref):
            cond = api_keys.c.key_prefix == ref
        elif ref.isdigit() and len(ref) <= 18:
            cond = api_keys.c.id == int(ref)
        else:
            raise NotFound(f"no API key {ref!r}; give its id or its 12-character prefix",
                           reason="key_not_found")
        with self.rt.engine.begin() as conn:
            row = conn.execute(sa.select(api_keys.c.id, api_keys.c.revoked_at).where(cond)).first()
            if row is None:
                raise NotFound(f"no API key {ref!r}", reason="key_not_found")
            if row.revoked_at is not None:
                raise Conflict(f"API key {ref!r} is already revoked", reason="already_revoked")
            conn.execute(api_keys.update().where(api_keys.c.id == row.id)
                         .values(revoked_at=utcnow()))
        return self.key(int(row.id))

    def any_active(self) -> bool:
        return active_key_exists(self.rt.engine)

    def authenticate(self, secret: str) -> Principal:
        """The principal of a presented key; :class:`Unauthorized` for anything else."""
        match = KEY_PATTERN.match(secret or "")
        if match is None:
            raise Unauthorized("the API key is malformed; send 'Authorization: Bearer vpk_...'",
                               reason="bad_key")
        with self.rt.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(
                api_keys.c.key_prefix == match.group(1))).first()
        if row is None or not hmac.compare_digest(row.key_hash, hash_key(secret)):
            raise Unauthorized("the API key is not valid", reason="bad_key")
        if row.revoked_at is not None:
            raise Unauthorized("the API key was revoked", reason="key_revoked")
        self._touch(int(row.id))
        return Principal(int(row.tenant_id), int(row.id), frozenset(row.scopes.split()),
                         f"key:{row.id}")

    def _touch(self, key_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_used.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
                return
            self._last_used[key_id] = now
        with self.rt.engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.id == key_id)
                         .values(last_used_at=utcnow()))
