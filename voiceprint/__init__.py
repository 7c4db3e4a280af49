"""voiceprint: speaker enrollment, identification, verification and similar-sound search."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask

from voiceprint.config import Config

__version__ = "0.1.0"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Application factory.

    ``test_config`` overrides :class:`Config` keys (tests use a temporary
    data directory). The database must be migrated first
    (``voiceprint db upgrade``; ``voiceprint serve`` does it).
    """
    from voiceprint.api import init_api
    from voiceprint.runtime import Runtime
    from voiceprint.web import init_web, swagger_ui_url

    config = Config(overrides=test_config)
    app = Flask(__name__)
    app.config.update(
        API_TITLE="voiceprint", API_VERSION=__version__, OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_SWAGGER_UI_PATH="/docs",
        # Swagger UI's files from the installed flask-swagger-ui (offline), else the CDN
        OPENAPI_SWAGGER_UI_URL=swagger_ui_url("https://cdn.jsdelivr.net/npm/swagger-ui-dist/"),
        # the whole request body; each file is also held to MAX_UPLOAD_BYTES
        MAX_CONTENT_LENGTH=config.MAX_REQUEST_BYTES,
        API_SPEC_OPTIONS={"info": {"description": (
            "Speaker enrollment, identification (1:N, open set), verification (1:1) and "
            "similar-sound search. Scores are cosine similarities of L2-normalised "
            "embeddings in [-1, 1] unless `score_scale` says otherwise; errors are JSON with "
            "code, status, message and errors. Send an API key as `Authorization: Bearer "
            "<key>`; each route names the scope it needs.")},
            "security": [{"bearerAuth": []}]},
    )
    app.config["VOICEPRINT"] = config
    logging.basicConfig(level=logging.INFO)
    rt = Runtime.from_config(config)
    app.extensions["voiceprint"] = rt
    init_api(app)
    init_web(app)  # the page at / (voiceprint/web)
    if config.PRELOAD_MODELS:
        rt.preload()
    return app
