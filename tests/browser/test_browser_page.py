"""The page itself: WAV encoding in the browser, a phone-sized window, keyboard use, accessible names."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import soundfile as sf

from tests.browser.conftest import LiveServer, Page

VIEWS = ["identify", "verify", "speakers", "sounds"]
#: roles whose controls must have an accessible name
NAMED_ROLES = {"button", "textbox", "searchbox", "combobox", "spinbutton", "link", "checkbox", "slider",
               "meter", "progressbar", "dialog", "navigation", "img"}

#: an identification answer as the API gives it (cosine scores, uncalibrated)
IDENTIFICATION = {
    "decision": "identified", "margin": 0.31,
    "speaker": {"speaker_id": 1, "external_id": "caller-0042-support-desk", "name": "Maximiliane Oberhuber-Schmidt",
                "score": 0.91, "cosine": 0.91},
    "candidates": [
        {"speaker_id": 1, "external_id": "caller-0042-support-desk", "name": "Maximiliane Oberhuber-Schmidt",
         "score": 0.91, "cosine": 0.91},
        {"speaker_id": 2, "external_id": "b", "name": None, "score": 0.60, "cosine": 0.60},
        {"speaker_id": 3, "external_id": "c", "name": "C", "score": -0.12, "cosine": -0.12}],
    "operating_point": {"name": "default", "threshold": 0.75, "calibrated": False, "normalization": "none",
                        "expected_far": None, "expected_frr": None, "source": "built-in default"},
    "score_scale": "cosine similarity of L2-normalised embeddings, in [-1, 1] (higher = more alike)",
    "query": {"duration_s": 4.0, "speech_seconds": 3.1, "sample_rate": 16000},
}


def test_wav_encoder_round_trip(live_server: LiveServer, browser, page_factory) -> None:
    """The page's own encoder (used for microphone recordings) writes WAV that libsndfile reads back."""
    page = page_factory(browser(), live_server).open("identify")
    rate, seconds = 44100, 0.5
    b64 = page.driver.execute_async_script("""
        const [rate, seconds, done] = arguments;
        import(new URL('web/static/js/wav.js', document.baseURI)).then(async ({encodeWav, joinChunks}) => {
          const n = Math.round(rate * seconds);
          const x = new Float32Array(n);
          for (let i = 0; i < n; i++) x[i] = 1.2 * Math.sin(2 * Math.PI * 440 * i / rate);  // clips at ±1
          const chunks = [x.subarray(0, 1000), x.subarray(1000)];
          const blob = encodeWav(joinChunks(chunks), rate);
          const bytes = new Uint8Array(await blob.arrayBuffer());
          let s = ''; for (const b of bytes) s += String.fromCharCode(b);
          done(btoa(s));
        });
    """, rate, seconds)
    data, got_rate = sf.read(io.BytesIO(base64.b64decode(b64)), dtype="float64")
    info = sf.info(io.BytesIO(base64.b64decode(b64)))
    assert (info.format, info.subtype, info.channels, got_rate) == ("WAV", "PCM_16", 1, rate)
    expected = np.clip(1.2 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate), -1, 1)
    assert data.shape == expected.shape
    assert np.max(np.abs(data - expected)) < 2 / 32768


def test_phone_sized_window_has_no_sideways_scrolling(live_server: LiveServer, browser, page_factory) -> None:
    page = page_factory(browser(width=390, height=844), live_server).open("identify")
    page.wait(lambda d: not page.text("#service-health").startswith("Checking"))
    wide = {}
    for view in VIEWS:
        page.go(view)
        for details in page.all(f'[data-view="{view}"] details'):
            details.find_element("css selector", "summary").click()
        wide[view] = page.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.screenshot(view)
    # a result with a long name and its chart fit too
    page.go("identify")
    page.driver.execute_async_script("""
        const [result, done] = arguments;
        import(new URL('web/static/js/recognition.js', document.baseURI)).then(({renderIdentification}) => {
          renderIdentification(document.getElementById('identify-result'), result);
          done();
        });
    """, IDENTIFICATION)
    wide["identify result"] = page.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    font_px = page.driver.execute_script("""
        const t = document.querySelector('#identify-result .bar-label');
        return t.getBoundingClientRect().height;""")
    page.screenshot("identify-result")
    assert wide == {**{view: 0 for view in VIEWS}, "identify result": 0}, "pixels wider than a 390px window"
    assert font_px >= 10, "chart labels shrink below a readable size"


def test_keyboard_reaches_every_view_and_form(live_server: LiveServer, browser, page_factory) -> None:
    page = page_factory(browser(), live_server).open("identify")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    seen: list[str] = []
    for _ in range(40):  # Tab through the page from the top
        ActionChains(page.driver).send_keys(Keys.TAB).perform()
        active = page.driver.switch_to.active_element
        seen.append(active.get_attribute("data-view-link") or active.get_attribute("id") or active.tag_name)
    assert {"identify", "verify", "speakers", "sounds"} <= set(seen)
    assert any(s.endswith("-file") for s in seen), "the file input is not reachable by Tab"

    # Enter on a nav link switches the view and moves focus to its heading
    link = page.css('a[data-view-link="speakers"]')
    link.send_keys(Keys.ENTER)
    page.wait(lambda d: page.css("#view-speakers").is_displayed())
    page.wait(lambda d: d.switch_to.active_element.get_attribute("id") == "speakers-title")
    assert link.get_attribute("aria-current") == "page"


def unnamed_controls(page: Page) -> list[str]:
    tree = page.driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    bad = []
    for node in tree:
        if node.get("ignored"):
            continue
        role = node.get("role", {}).get("value")
        name = (node.get("name") or {}).get("value", "")
        if role in NAMED_ROLES and not str(name).strip():
            bad.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return bad


def test_every_control_has_an_accessible_name(live_server: LiveServer, browser, page_factory) -> None:
    page = page_factory(browser(), live_server).open("identify")
    page.wait(lambda d: not page.text("#service-health").startswith("Checking"))
    for view in VIEWS:
        page.go(view)
        for details in page.all(f'[data-view="{view}"] details'):
            details.find_element("css selector", "summary").click()
        assert unnamed_controls(page) == [], view
        assert page.all(f'[data-view="{view}"] [aria-live]'), f"no live region in {view}"


def test_far_bound_and_as_norm_scale_are_rendered_when_the_api_sends_them(live_server: LiveServer, browser,
                                                                         page_factory) -> None:
    """An upper confidence bound on the FAR (``far_upper_95``) and AS-norm scores (not cosine)."""
    page = page_factory(browser(), live_server).open("identify")
    result = {**IDENTIFICATION,
        "decision": "identified", "margin": 1.9,
        "speaker": {"speaker_id": 1, "external_id": "ann", "name": "Ann", "score": 4.2, "cosine": 0.8},
        "candidates": [{"speaker_id": 1, "external_id": "ann", "name": "Ann", "score": 4.2, "cosine": 0.8},
                       {"speaker_id": 2, "external_id": "ben", "name": None, "score": 2.3, "cosine": 0.5}],
        "operating_point": {"name": "far_1pct", "threshold": 3.1, "calibrated": True, "normalization": "asnorm",
                            "expected_far": 0.0098, "far_upper_95": 0.023, "expected_frr": 0.04,
                            "source": "calibration 7"},
        "score_scale": "AS-norm score", "query": {"duration_s": 3.0, "speech_seconds": 2.5, "sample_rate": 16000},
    }
    text = page.driver.execute_async_script("""
        const [result, done] = arguments;
        import(new URL('web/static/js/recognition.js', document.baseURI)).then(({renderIdentification}) => {
          const box = document.getElementById('identify-result');
          renderIdentification(box, result);
          done(box.innerText);
        });
    """, result)
    assert "Identified: Ann (ann)" in text
    assert "0.98% (at most 2.3% with 95% confidence)" in text
    assert "far_1pct — calibrated" in text and "Expected false rejects\n4.0%" in text
    assert "AS-norm score" in text
    # the axis fits AS-norm scores instead of stopping at a cosine's 1.0
    ticks = [float(t.text) for t in page.all("#identify-result .axis text")]
    assert max(ticks) >= 4.0
    assert page.text("#identify-result .threshold text") == "threshold 3.100"
