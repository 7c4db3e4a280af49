"""Rate limits (Flask-Limiter) and verify lock-outs (the ``limits`` library underneath it).

* Every request counts against its API key (or, without one, the client
  address) at ``VOICEPRINT_RATE_LIMIT`` (default 600/minute); over it: 429
  with ``Retry-After``. Liveness, the API document and static files are exempt.
* A claimed speaker whose verifies were rejected ``VOICEPRINT_VERIFY_MAX_REJECTS``
  times within ``VOICEPRINT_VERIFY_LOCKOUT_SECONDS`` is locked: further verifies
  of that claim answer 429 with ``Retry-After`` until the oldest reject leaves
  the window (a moving window) - an impostor cannot try voice after voice.

Counters live in memory (one process: the embedded default) or, with
``VOICEPRINT_REDIS_URL``, in Redis, shared by every worker and host.
"""
from __future__ import annotations

import time
from typing import Any

from flask import Flask, g, request
from flask_limiter import Limiter
from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from voiceprint.api.auth import PUBLIC_ENDPOINTS
from voiceprint.config import Config
from voiceprint.errors import TooManyRequests


def _caller() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None and principal.key_id is not None:
        return f"key:{principal.key_id}"
    return f"addr:{request.remote_addr or 'unknown'}"


def _exempt() -> bool:
    return request.endpoint in PUBLIC_ENDPOINTS or request.endpoint in ("health.Health",
                                                                        "health.Ready")


def storage_uri(config: Config) -> str:
    return config.REDIS_URL or "memory://"


def init_rate_limits(app: Flask, config: Config) -> Limiter:
    """Per-caller limits on every route but the public ones (after authentication)."""
    return Limiter(_caller, app=app, default_limits=[config.RATE_LIMIT],
                   default_limits_exempt_when=_exempt, storage_uri=storage_uri(config),
                   strategy="moving-window", headers_enabled=True,
                   key_prefix=config.MILVUS_COLLECTION_PREFIX)


class VerifyLockout:
    """Counts rejected verifies per (tenant, claimed speaker) and locks the claim."""

    def __init__(self, config: Config) -> None:
        self.item = RateLimitItemPerSecond(config.VERIFY_MAX_REJECTS,
                                           config.VERIFY_LOCKOUT_SECONDS)
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri(config)))
        self.prefix = f"{config.MILVUS_COLLECTION_PREFIX}:verify"

    def _keys(self, tenant_id: int, speaker_id: int) -> tuple[str, ...]:
        return (self.prefix, str(tenant_id), str(speaker_id))

    def check(self, tenant_id: int, speaker_id: int) -> None:
        """429 while the claim is locked."""
        keys = self._keys(tenant_id, speaker_id)
        if not self.limiter.test(self.item, *keys):
            reset, _ = self.limiter.get_window_stats(self.item, *keys)
            raise TooManyRequests(
                f"speaker {speaker_id} is locked after {self.item.amount} rejected verifies; "
                "try again later", reason="verify_locked", retry_after=int(reset - time.time()) + 1)

    def rejected(self, tenant_id: int, speaker_id: int) -> None:
        self.limiter.hit(self.item, *self._keys(tenant_id, speaker_id))

    def status(self, tenant_id: int, speaker_id: int) -> dict[str, Any]:
        reset, remaining = self.limiter.get_window_stats(self.item,
                                                         *self._keys(tenant_id, speaker_id))
        return {"remaining_attempts": remaining, "window_reset": reset}


class AuthFailureLimit:
    """Refused keys per client address: past ``per_minute`` the address gets 429 before any
    key lookup or audit write (guessing keys is hopeless anyway: they are 256-bit random;
    this bounds the work and the audit rows a scanner can cause)."""

    def __init__(self, config: Config, per_minute: int = 30) -> None:
        self.item = RateLimitItemPerSecond(per_minute, 60)
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri(config)))
        self.prefix = f"{config.MILVUS_COLLECTION_PREFIX}:authfail"

    def check(self, address: str) -> None:
        if not self.limiter.test(self.item, self.prefix, address):
            reset, _ = self.limiter.get_window_stats(self.item, self.prefix, address)
            raise TooManyRequests("too many refused API keys from this address; try again later",
                                  reason="too_many_auth_failures",
                                  retry_after=int(reset - time.time()) + 1)

    def failed(self, address: str) -> None:
        self.limiter.hit(self.item, self.prefix, address)
