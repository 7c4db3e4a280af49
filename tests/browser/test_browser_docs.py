"""/docs (Swagger UI) renders without internet once it loads the packaged copy (see voiceprint.web)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import LiveServer
from voiceprint.web import SWAGGER_UI_URL, swagger_ui_dist


def test_api_docs_render_offline(live_server: LiveServer, browser, page_factory) -> None:
    if swagger_ui_dist() is None:
        pytest.skip("flask-swagger-ui is not installed")
    html = live_server.app.test_client().get("/docs").get_data(as_text=True)
    if SWAGGER_UI_URL not in html:
        pytest.skip("OPENAPI_SWAGGER_UI_URL still points at a CDN: set it to "
                    "voiceprint.web.swagger_ui_url(<cdn>) in create_app")
    page = page_factory(browser(), live_server)
    page.driver.get(f"{live_server.url}/docs")
    title = page.wait(lambda d: d.find_elements("css selector", ".swagger-ui .info .title"))[0]
    assert title.text.startswith("voiceprint")
    assert page.all(".swagger-ui .opblock-tag")  # the API's sections are listed
    page.screenshot("docs")
