"""The web page at ``/``: speakers, enrollment, identify, verify and sound search.

A plain Flask blueprint (not part of the OpenAPI spec). The page is static
HTML plus ES modules under ``static/``; everything it loads comes from this
package (no CDN), and it talks to the same service's HTTP API with the
user's API key (``Authorization: Bearer``), kept in the browser's
sessionStorage only.
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response, make_response, render_template

#: what the page may load: only this origin, plus blob: URLs for recorded and
#: fetched audio (``<audio src>`` cannot send an Authorization header).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

bp = Blueprint("web", __name__, static_folder="static", static_url_path="/web/static",
               template_folder="templates")


@bp.get("/")
def index() -> Response:
    """The single page (its views are switched by the URL fragment, e.g. ``/#identify``)."""
    response = make_response(render_template("voiceprint_web/index.html"))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # the page holds no data; the API answers carry it, and keys are never in URLs
    response.headers["Cache-Control"] = "no-cache"
    return response


def init_web(app: Flask) -> None:
    """Serve the page at ``/`` and its files under ``/web/static/``."""
    app.register_blueprint(bp)
