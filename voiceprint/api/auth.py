"""Who is calling: API keys, scopes and the access decision of every route.

Every view method says what it needs with :func:`requires` (a scope) or
:func:`public`; a ``before_request`` hook enforces it for every request,
and a route without a decision is refused (403) - deny by default, and a
test walks the URL map so a new route cannot ship without one.

* no ``Authorization`` header (keys exist)  -> 401, ``WWW-Authenticate: Bearer``
* a bad, unknown or revoked key             -> 401
* a valid key without the route's scope     -> 403
* another tenant's record                   -> 404 (the services scope every query)
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, TypeVar

from flask import Flask, current_app, g, request
from flask_smorest import Blueprint

from voiceprint.errors import Forbidden, Unauthorized
from voiceprint.timing import stage
from voiceprint.services.access import SCOPES, AccessService, Principal, open_principal

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

#: endpoints that need no key (liveness, the API document, the web page's static files)
PUBLIC_ENDPOINTS = frozenset({"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                              "api-docs.openapi_redoc", "api-docs.openapi_rapidoc"})
#: blueprints whose every route is public (the web page: HTML, JS, CSS; it holds no data)
PUBLIC_BLUEPRINTS = frozenset({"web"})
#: seconds an "is any key configured?" answer is reused
OPEN_CHECK_TTL = 5.0

ERROR_BODY = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def requires(scope: str) -> Callable[[F], F]:
    """Mark a view method as needing ``scope`` (see :data:`SCOPES`); documents it too."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorator(func: F) -> F:
        documented = Blueprint.doc(
            security=[{"bearerAuth": []}],
            responses={"401": {"description": "no valid API key", **ERROR_BODY},
                       "403": {"description": f"the key lacks the '{scope}' scope",
                               **ERROR_BODY},
                       "429": {"description": "rate limit or verify lock-out; see Retry-After",
                               **ERROR_BODY}})(func)
        documented._voiceprint_scope = scope  # type: ignore[attr-defined]
        return documented  # type: ignore[no-any-return]
    return decorator


def public(func: F) -> F:
    """Mark a view method as open to anyone (no key)."""
    documented = Blueprint.doc(security=[])(func)
    documented._voiceprint_scope = None  # type: ignore[attr-defined]
    return documented  # type: ignore[no-any-return]


class NoDecision(LookupError):
    """A route whose view says neither :func:`requires` nor :func:`public`."""


def route_scope(app: Flask, endpoint: str | None, method: str) -> str | None:
    """The scope ``endpoint`` needs for ``method`` (None: public); :class:`NoDecision` if unset."""
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS or \
            endpoint.split(".", 1)[0] in PUBLIC_BLUEPRINTS:
        return None
    if method == "OPTIONS":  # CORS preflight and allowed-methods answers carry no data
        return None
    view = app.view_functions.get(endpoint)
    target = getattr(view, "view_class", None)
    name = "get" if method == "HEAD" else method.lower()
    func = getattr(target, name, None) if target is not None else view
    if func is None or not hasattr(func, "_voiceprint_scope"):
        raise NoDecision(f"{endpoint} {method}")
    return func._voiceprint_scope  # type: ignore[no-any-return]


def principal() -> Principal:
    """The authenticated caller of this request."""
    return g.principal  # type: ignore[no-any-return]


class Authenticator:
    """The ``before_request`` hook; one per app (holds the key service)."""

    def __init__(self, app: Flask, access: AccessService, failures: Any) -> None:
        """``failures``: an :class:`~voiceprint.api.limits.AuthFailureLimit` (refused keys
        per client address)."""
        self.access = access
        self.failures = failures
        self.required = app.config["VOICEPRINT"].AUTH == "required"
        self._open_until = 0.0
        self._open = False
        app.before_request(self.before_request)

    def forget_open_state(self) -> None:
        """Re-check at the next request whether any key exists (else cached for seconds)."""
        self._open_until = 0.0

    def _install_is_open(self) -> bool:
        """No active key and AUTH=auto: the loopback install without keys."""
        if self.required:
            return False
        now = time.monotonic()
        if now >= self._open_until:
            self._open = not self.access.any_active()
            self._open_until = now + OPEN_CHECK_TTL
        return self._open

    def before_request(self) -> None:
        g.request_id = (request.headers.get("X-Request-ID") or uuid.uuid4().hex)[:64]
        try:
            scope = route_scope(current_app, request.endpoint, request.method)
        except NoDecision:
            log.error("route %s has no access decision: refused", request.endpoint)
            raise Forbidden("this route has no access decision; it is refused",
                            reason="no_access_decision") from None
        header = request.headers.get("Authorization", "")
        g.principal = None
        if scope is None:  # public: a key, if any, is not even looked at
            return
        if not header and self._install_is_open():
            g.principal = open_principal()
        elif header:
            address = request.remote_addr or "unknown"
            self.failures.check(address)
            kind, _, secret = header.partition(" ")
            try:
                if kind.lower() != "bearer" or not secret.strip():
                    raise Unauthorized("send the API key as 'Authorization: Bearer <key>'",
                                       reason="bad_authorization_header")
                with stage("auth"):
                    g.principal = self.access.authenticate(secret.strip())
            except Unauthorized:
                self.failures.failed(address)
                raise
        else:
            raise Unauthorized("this route needs an API key: send 'Authorization: Bearer <key>' "
                               "(create one with `voiceprint keys create`)", reason="no_key")
        if not g.principal.has(scope):
            raise Forbidden(f"the API key lacks the '{scope}' scope needed here",
                            reason="missing_scope", details={"required_scope": scope})
