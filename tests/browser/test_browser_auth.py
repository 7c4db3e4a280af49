"""API keys in the browser: asked once, kept for the tab, a 401/403 shows the API's message.

The service's real keys: ``Authorization: Bearer <key>``; a refused request
answers ``{"code": 401, "status": "Unauthorized", "message": "..."}`` (403
alike); ``GET /health`` carries ``"auth": "required"|"open"``.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.browser.conftest import LiveServer, Page, app_config

MISSING = ("this route needs an API key: send 'Authorization: Bearer <key>' (create one with "
           "`voiceprint keys create`)")
INVALID = "the API key is malformed; send 'Authorization: Bearer vpk_...'"
READ_ONLY = "the API key lacks the 'enroll' scope needed here"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from voiceprint import create_app

    from voiceprint.services.access import AccessService

    app = create_app(app_config(tmp_path_factory.mktemp("keyed")))
    access = AccessService(app.extensions["voiceprint"])
    server = LiveServer(app)
    server.keys = {"good": access.create_key("default", "page", ["all"])[1],  # type: ignore[attr-defined]
                   "reader": access.create_key("default", "reader", ["speakers"])[1]}
    yield server
    server.stop()
    app.extensions["voiceprint"].close()


def key_dialog(page: Page) -> Any:
    return page.wait(lambda d: page.css("#key-dialog").is_displayed() and page.css("#key-dialog"))


def enter_key(page: Page, key: str) -> None:
    key_dialog(page)
    page.fill("#key-input", key)
    page.css("#key-input").send_keys("\n")
    page.wait(lambda d: not page.css("#key-dialog").is_displayed())
    # the dialog's "close" event (which stores the key) is dispatched after close()
    page.wait(lambda d: stored_key(page) == key)


def stored_key(page: Page) -> Any:
    return page.driver.execute_script("return sessionStorage.getItem('voiceprint.apiKey')")


def wrong_key_flow(page: Page, good_key: str, invalid_message: str) -> None:
    """A wrong key -> the API's 401 message in the dialog -> the right key -> the request succeeds."""
    page.go("speakers")
    key_dialog(page)
    page.wait(lambda d: page.text("#key-dialog-message") == invalid_message)
    page.screenshot("wrong-key")
    enter_key(page, good_key)
    page.wait(lambda d: page.text("#speaker-page").startswith("Page 1 of 1"))
    assert stored_key(page) == good_key


def test_wrong_and_read_only_keys_show_the_api_messages(keyed_server: LiveServer, browser,
                                                        page_factory) -> None:
    page = page_factory(browser(), keyed_server).open("identify")
    # /health says keys are required: the page asks before anything else
    dialog = key_dialog(page)
    assert page.text("#key-dialog-message") == "This service needs an API key."
    assert "API key required" in page.text("#service-health")
    page.screenshot("asked")
    enter_key(page, "wrong-key")
    assert stored_key(page) == "wrong-key"
    assert dialog.get_attribute("open") is None

    wrong_key_flow(page, keyed_server.keys["good"], INVALID)
    assert page.text("#key-state") == "API key set for this tab"

    # kept for the tab: a reload asks nothing and the list loads
    page.reload()
    page.wait(lambda d: page.text("#speaker-page").startswith("Page 1 of 1"))
    page.wait(lambda d: "API key required" in page.text("#service-health"))
    assert not page.css("#key-dialog").is_displayed()

    # a 403 shows its message too; cancelling leaves the API's words in the form
    page.css("#key-change").click()
    enter_key(page, keyed_server.keys["reader"])
    page.fill("#new-external-id", f"x-{uuid.uuid4().hex[:6]}")
    page.css('#speaker-create button[type="submit"]').click()
    key_dialog(page)
    assert page.text("#key-dialog-message") == READ_ONLY
    page.screenshot("forbidden")
    page.css('#key-form button[value="cancel"]').click()
    assert page.status("#speaker-create") == READ_ONLY
    assert stored_key(page) == keyed_server.keys["reader"]

    # forgetting the key: the next request is refused as the API words it
    page.css("#key-forget").click()
    assert stored_key(page) is None and page.text("#key-state") == "No API key"
    page.go("identify")
    page.go("speakers")
    key_dialog(page)
    assert page.text("#key-dialog-message") == MISSING
    page.css('#key-form button[value="cancel"]').click()
    page.wait(lambda d: page.text("#speaker-list-status") == MISSING)


def test_open_service_never_asks_for_a_key(live_server: LiveServer, browser, page_factory) -> None:
    page = page_factory(browser(), live_server).open("speakers")
    page.wait(lambda d: page.text("#speaker-page").startswith("Page 1 of"))
    page.wait(lambda d: page.text("#service-health").startswith("Service ok"))
    assert not page.css("#key-dialog").is_displayed()
    assert stored_key(page) is None


def test_wrong_key_with_the_service_keys(tmp_path: Path, browser, page_factory) -> None:
    """The same flow on the service's own keys: wire ``service_with_keys`` when they land."""
    server, good_key, invalid_message = service_with_keys(tmp_path)
    try:
        page = page_factory(browser(), server).open("identify")
        enter_key(page, "wrong-key")
        wrong_key_flow(page, good_key, invalid_message)
    finally:
        server.stop()
        server.app.extensions["voiceprint"].close()


def service_with_keys(tmp_path: Path) -> tuple[LiveServer, str, str]:
    """A live server whose keys are on: (server, a valid key, the API's message for a wrong key)."""
    from voiceprint import create_app
    from voiceprint.services.access import AccessService

    app = create_app(app_config(tmp_path))
    _, good_key = AccessService(app.extensions["voiceprint"]).create_key("default", "page", ["all"])
    return LiveServer(app), good_key, "the API key is malformed; send 'Authorization: Bearer vpk_...'"
