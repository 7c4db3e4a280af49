"""The web page's serving: assets resolve, nothing loads from elsewhere, prefixes, packaging.

What the page does is tested in a real browser under tests/browser/.
"""
from __future__ import annotations

import configparser
import fnmatch
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest

WEB = Path(__file__).resolve().parents[1] / "voiceprint" / "web"
STATIC = WEB / "static"
JS = sorted((STATIC / "js").glob("*.js"))
IMPORT = re.compile(r"""(?:\bfrom\s+|\bimport\s*\(\s*|new URL\(\s*)["'](\./[^"']+)["']""")


@pytest.fixture
def web_client(app_config: dict[str, Any]) -> Iterator[Any]:
    from voiceprint import create_app

    app = create_app(app_config)
    yield app.test_client()
    app.extensions["voiceprint"].close()


class Assets(HTMLParser):
    """src/href of <script>, <link> and <a> in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.meta: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        elif tag == "link":
            self.links.append(a)
        elif tag == "meta" and a.get("name"):
            self.meta[str(a["name"])] = a.get("content")


def parse(html: str) -> Assets:
    parser = Assets()
    parser.feed(html)
    return parser


def test_page_is_served_with_a_strict_content_security_policy(web_client) -> None:
    r = web_client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    csp = dict(part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'"
    assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]
    assert csp["media-src"] == "'self' blob:"  # recorded clips and fetched sound audio
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    page = parse(r.get_data(as_text=True))
    # no inline script: everything is a module file of the package
    assert page.scripts and all(s.get("type") == "module" and s.get("src") for s in page.scripts)


def test_every_asset_the_page_names_is_served(web_client) -> None:
    page = parse(web_client.get("/").get_data(as_text=True))
    urls = [s["src"] for s in page.scripts] + [link["href"] for link in page.links]
    assert len(urls) >= 3
    for url in urls:
        r = web_client.get(url)
        assert r.status_code == 200, url
        want = {"js": "javascript", "css": "text/css", "svg": "image/svg+xml"}[str(url).rsplit(".", 1)[1]]
        assert want in r.content_type, (url, r.content_type)
        r.close()


def test_module_imports_resolve_and_every_module_is_used() -> None:
    reached, todo = set(), ["app.js"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        source = (STATIC / "js" / name).read_text()
        for target in IMPORT.findall(source):
            path = (STATIC / "js" / target).resolve()
            assert path.is_file(), f"{name} imports missing {target}"
            todo.append(path.name)
    assert reached == {p.name for p in JS}, "modules nothing imports"


def test_nothing_is_loaded_from_another_origin() -> None:
    files = [*JS, *STATIC.glob("css/*.css"), *STATIC.glob("*.svg"), *WEB.glob("templates/**/*.html")]
    for path in files:
        text = path.read_text()
        # the SVG namespace is a name, not a download
        urls = set(re.findall(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"')]*""", text)) - {
            "http://www.w3.org/2000/svg"}
        assert not urls, f"{path.name} refers to {urls}"
        assert "@import" not in text and "cdn" not in text.lower(), path.name


def test_scripts_never_write_html_strings() -> None:
    """Names, file names and API messages reach the page as text nodes only (no markup injection)."""
    for path in JS:
        text = re.sub(r"^\s*//.*$", "", re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S), flags=re.M)
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"


def test_page_works_under_a_url_prefix(web_client) -> None:
    r = web_client.get("/", environ_overrides={"SCRIPT_NAME": "/voice"})
    page = parse(r.get_data(as_text=True))
    assert page.meta["voiceprint-api-base"] == "/voice"
    assert all(str(s["src"]).startswith("/voice/web/static/") for s in page.scripts)
    assert 'href="/voice/docs"' in r.get_data(as_text=True)
    r = web_client.get("/", environ_overrides={"SCRIPT_NAME": ""})
    assert parse(r.get_data(as_text=True)).meta["voiceprint-api-base"] == ""


def test_the_page_is_not_part_of_the_api_description(web_client) -> None:
    spec = web_client.get("/openapi.json").json
    assert "/" not in spec["paths"] and not any(p.startswith("/web") for p in spec["paths"])


def test_every_web_file_ships_in_the_package() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(WEB.parents[1] / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["voiceprint.web"].split(",")]
    files = [p.relative_to(WEB).as_posix() for p in WEB.rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not missing, f"add to setup.cfg [options.package_data]: {missing}"


def test_swagger_ui_files_are_served_from_the_installed_package(web_client) -> None:
    from voiceprint.web import SWAGGER_UI_URL, swagger_ui_dist, swagger_ui_url

    if swagger_ui_dist() is None:
        assert swagger_ui_url("https://cdn.example/") == "https://cdn.example/"
        assert web_client.get("/" + SWAGGER_UI_URL + "swagger-ui-bundle.js").status_code == 404
        pytest.skip("flask-swagger-ui is not installed")
    assert swagger_ui_url("https://cdn.example/") == SWAGGER_UI_URL
    # the three files flask-smorest's docs page loads, and the licence
    for name, kind in [("swagger-ui-bundle.js", "javascript"), ("swagger-ui-standalone-preset.js", "javascript"),
                       ("swagger-ui.css", "text/css"), ("LICENSE", "")]:
        r = web_client.get("/" + SWAGGER_UI_URL + name)
        assert r.status_code == 200 and kind in r.content_type, name
        r.close()
    assert web_client.get("/" + SWAGGER_UI_URL + "../__init__.py").status_code == 404
