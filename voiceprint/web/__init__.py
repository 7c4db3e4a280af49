"""The web page at ``/``: speakers, enrollment, identify, verify and sound search.

A plain Flask blueprint (not part of the OpenAPI spec). The page is static
HTML plus ES modules under ``static/``; everything it loads comes from this
package (no CDN), and it talks to the same service's HTTP API with the
user's API key (``Authorization: Bearer``), kept in the browser's
sessionStorage only.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, make_response, render_template, send_from_directory

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


# -- Swagger UI without a CDN ----------------------------------------------------------
#: where Swagger UI's files are served when ``flask-swagger-ui`` (which ships the
#: swagger-ui-dist files with their licence) is installed. Relative: the docs page
#: at ``/docs`` finds them under any URL prefix.
SWAGGER_UI_URL = "web/swagger-ui/"


def swagger_ui_dist() -> Path | None:
    """The folder of swagger-ui-bundle.js & co. in ``flask-swagger-ui``, or None (not installed)."""
    spec = importlib.util.find_spec("flask_swagger_ui")  # located, not imported
    for location in (spec.submodule_search_locations or []) if spec else []:
        dist = Path(location) / "dist"
        if (dist / "swagger-ui-bundle.js").is_file():
            return dist
    return None


def swagger_ui_url(fallback: str) -> str:
    """Value for ``OPENAPI_SWAGGER_UI_URL``: the local copy when installed, else ``fallback``."""
    return SWAGGER_UI_URL if swagger_ui_dist() is not None else fallback


@bp.get("/web/swagger-ui/<path:filename>")
def swagger_ui_file(filename: str) -> Response:
    dist = swagger_ui_dist()
    if dist is None:
        abort(404, description="Swagger UI is not installed here (pip install flask-swagger-ui)")
    return send_from_directory(dist, filename, max_age=24 * 3600)


def init_web(app: Flask) -> None:
    """Serve the page at ``/`` and its files under ``/web/static/``."""
    app.register_blueprint(bp)
