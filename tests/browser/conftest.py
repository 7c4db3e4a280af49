"""Browser tests: the page at ``/`` in headless Chromium (Selenium) against a real HTTP server.

The service runs in a thread (werkzeug ``make_server`` on a free loopback
port) on SQLite + Milvus Lite with the ge2e speaker encoder and the small
random CNN14 of ``tests/sound_fixtures.py`` as sound encoder. Chromium is
Debian's ``chromium`` with ``chromium-driver``; tests skip when either is
missing. Screenshots of each page state go to ``$VOICEPRINT_BROWSER_ARTIFACTS``
or, by default, ``tests/artifacts/browser/`` (git-ignored); the path is printed.
"""
from __future__ import annotations

import base64
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.sound_fixtures import paddle_cache, panns_dir, panns_small  # noqa: F401 (fixtures)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("VOICEPRINT_BROWSER_ARTIFACTS")
                 or Path(__file__).resolve().parents[1] / "artifacts" / "browser")
WAIT_S = 60.0  # the slowest step: embedding several clips on a busy 2-core machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


# -- the service -----------------------------------------------------------------------
class LiveServer:
    """The app served over real HTTP from a thread; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.app = app
        # one request at a time, like a gunicorn sync worker
        self.server = make_server("127.0.0.1", 0, app, threaded=False)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server", daemon=True)
        self.thread.start()

    @property
    def rt(self) -> Any:
        return self.app.extensions["voiceprint"]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def app_config(root: Path, **overrides: Any) -> dict[str, Any]:
    from voiceprint.stores import migrate

    url = f"sqlite:///{root / 'voiceprint.db'}"
    migrate.upgrade(url)
    return {"DATA_DIR": str(root), "DATABASE_URL": url, "MILVUS_URI": str(root / "milvus.db"),
            "MILVUS_COLLECTION_PREFIX": f"b{uuid.uuid4().hex[:12]}", "AUDIO_DIR": str(root / "audio"),
            "SPEAKER_ENCODER": "ge2e", "PRELOAD_MODELS": False, "ENROLL_MIN_SPEECH_SECONDS": 6.0,
            "MIN_CLIP_SPEECH_SECONDS": 1.0, "SCORE_NORMALIZATION": "none", **overrides}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, ge2e: Any) -> Iterator[LiveServer]:
    from voiceprint import create_app

    app = create_app(app_config(tmp_path_factory.mktemp("live")))
    app.extensions["voiceprint"].models.put(ge2e)
    server = LiveServer(app)
    yield server
    server.stop()
    app.extensions["voiceprint"].close()


@pytest.fixture(scope="module")
def with_sound_encoder(live_server: LiveServer, panns_small: Any) -> LiveServer:  # noqa: F811
    live_server.rt.models.put(panns_small)
    return live_server


# -- the browser -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {ARTIFACTS}")
    return ARTIFACTS


def chromium_options(user_data_dir: Path, fake_audio: Path | None, width: int, height: int) -> Any:
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = CHROMIUM or ""
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}",
                 "--lang=en-US"]:
        opts.add_argument(flag)
    if fake_audio is not None:
        opts.add_argument("--use-fake-device-for-media-stream")
        opts.add_argument("--use-fake-ui-for-media-stream")
        opts.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return opts


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``browser(fake_audio=None, width=1280, height=900)`` -> a fresh headless Chromium."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def launch(fake_audio: Path | None = None, width: int = 1280, height: int = 900) -> Any:
        profile = tmp_path / f"chromium-profile-{len(drivers)}"
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                  options=chromium_options(profile, fake_audio, width, height))
        driver.set_script_timeout(WAIT_S)
        drivers.append(driver)
        return driver

    yield launch
    for driver in drivers:
        driver.quit()


# -- page helpers ----------------------------------------------------------------------
class Page:
    """The voiceprint page in one browser: navigation, waits, uploads, screenshots."""

    def __init__(self, driver: Any, server: LiveServer, artifacts: Path, prefix: str) -> None:
        self.driver, self.server, self.artifacts, self.prefix = driver, server, artifacts, prefix

    def open(self, view: str = "identify") -> "Page":
        self.driver.get(f"{self.server.url}/#{view}")
        self.wait(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        return self

    def reload(self) -> None:
        self.driver.refresh()
        self.wait(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))

    def go(self, view: str) -> None:
        self.driver.find_element("css selector", f'a[data-view-link="{view}"]').click()
        self.wait(lambda d: self.css(f'[data-view="{view}"]').is_displayed())

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT_S, message: str = "") -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(condition, message)
        except Exception:
            self.screenshot("timeout")
            raise

    def css(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def all(self, selector: str) -> list[Any]:
        return self.driver.find_elements("css selector", selector)

    def wait_css(self, selector: str, timeout: float = WAIT_S) -> Any:
        return self.wait(lambda d: (d.find_elements("css selector", selector) or [None])[0], timeout,
                         f"no element matches {selector}")

    def text(self, selector: str) -> str:
        return str(self.css(selector).text)

    def fill(self, selector: str, value: str) -> None:
        el = self.css(selector)
        el.clear()
        el.send_keys(value)

    def upload(self, picker: str, paths: list[Path]) -> None:
        """Choose files in the clip picker ``[data-picker=picker]`` through its file input."""
        before = len(self.all(f'[data-picker="{picker}"] li.clip'))
        self.css(f'[data-picker="{picker}"] input[type=file]').send_keys("\n".join(str(p) for p in paths))
        want = before + len(paths) if self.css(f'[data-picker="{picker}"] input[type=file]').get_attribute(
            "multiple") else 1
        self.wait(lambda d: len(self.all(f'[data-picker="{picker}"] li.clip')) == want)

    def record(self, picker: str, seconds: float) -> Any:
        """Record ``seconds`` from the (fake) microphone into a picker; returns the new clip's <li>."""
        root = f'[data-picker="{picker}"]'
        recorded = f'{root} li.clip[data-clip-name^="recording-"]'
        before = len(self.all(recorded))
        button = self.css(f"{root} .record-button")
        button.click()
        self.wait(lambda d: button.get_attribute("aria-pressed") == "true")
        self.wait(lambda d: float(self.css(f"{root} .rec-time").get_attribute("textContent").split()[0])
                  >= seconds)
        self.screenshot(f"recording-{picker}")
        button.click()
        self.wait(lambda d: button.get_attribute("aria-pressed") == "false")
        # a single-clip picker replaces its clip, a multi-clip picker appends
        return self.wait(lambda d: (self.all(recorded)[-1] if self.all(recorded) and (
            len(self.all(recorded)) > before or self.all(recorded)[-1].get_attribute("data-clip-name")
            != f"recording-{before}.wav") else None))

    def status(self, form: str) -> str:
        """The form's status region once it is no longer busy."""
        self.wait(lambda d: self.css(form).get_attribute("aria-busy") is None)
        self.wait(lambda d: self.css(f"{form} .form-status").text.strip() != "")
        return self.text(f"{form} .form-status")

    def screenshot(self, name: str) -> Path:
        """Full-page PNG ``<prefix>-<name>.png`` in the artifacts folder."""
        path = self.artifacts / f"{self.prefix}-{name}.png"
        try:
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True, "fromSurface": True})
            path.write_bytes(base64.b64decode(shot["data"]))
        except Exception:  # pragma: no cover - fall back to the viewport
            self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """Script errors logged so far (failed API answers are expected and left out)."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and e.get("source") != "network"]


@pytest.fixture
def page_factory(artifacts: Path, request: pytest.FixtureRequest) -> Callable[..., Page]:
    def make(driver: Any, server: LiveServer) -> Page:
        return Page(driver, server, artifacts, request.node.name)
    return make


# -- audio for the tests -----------------------------------------------------------------
@pytest.fixture(scope="module")
def voice_files(tmp_path_factory: pytest.TempPathFactory, speak: Callable[..., bytes]) -> Callable[..., Path]:
    """``voice_files(voice, i)`` -> path of a WAV of SENTENCES[i] spoken by ``voice`` (cached)."""
    from tests.conftest import SENTENCES

    root = tmp_path_factory.mktemp("voices")

    def get(voice: str, i: int) -> Path:
        path = root / f"{voice.replace(':', '_').replace('+', '_')}-{i}.wav"
        if not path.exists():
            path.write_bytes(speak(SENTENCES[i], voice))
        return path

    return get


def api_enroll(server: LiveServer, external_id: str, paths: list[Path], name: str | None = None) -> int:
    """Create and enroll a speaker through the HTTP API (in process); returns its id."""
    import io

    client = server.app.test_client()
    r = client.post("/speakers", json={"external_id": external_id, "name": name})
    assert r.status_code == 201, r.json
    sid = int(r.json["id"])
    r = client.post(f"/speakers/{sid}/enrollments", content_type="multipart/form-data",
                    data={"clips": [(io.BytesIO(p.read_bytes()), p.name) for p in paths]})
    assert r.status_code == 201 and r.json["enrollment"]["status"] == "enrolled", r.json
    return sid
