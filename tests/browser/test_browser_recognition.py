"""Identify and verify in the browser: decisions read from the DOM, the score chart, API errors."""
from __future__ import annotations

import io
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.browser.conftest import LiveServer, Page, api_enroll

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "identify.png"


@pytest.fixture(scope="module")
def enrolled(live_server: LiveServer, voice_files: Any) -> dict[str, dict[str, Any]]:
    """Two speakers enrolled through the API: Alice (flite slt) and Kal (flite kal16)."""
    out = {}
    for key, name, voice in [("alice", "Alice", "flite:slt"), ("kal", "Kal", "flite:kal16")]:
        external_id = f"{key}-{uuid.uuid4().hex[:6]}"
        sid = api_enroll(live_server, external_id, [voice_files(voice, i) for i in range(3)], name)
        out[key] = {"id": sid, "external_id": external_id, "name": name, "voice": voice}
    return out


def choose_and_submit(page: Page, view: str, clip: Path) -> None:
    page.go(view)
    page.upload(view, [clip])
    page.css(f'#{view}-form button[type="submit"]').click()


def test_identify_names_the_speaker_and_draws_the_threshold(live_server, enrolled, browser, page_factory,
                                                           voice_files) -> None:
    page = page_factory(browser(width=1100, height=900), live_server).open("identify")
    alice, kal = enrolled["alice"], enrolled["kal"]
    clip = voice_files("flite:slt", 4)  # a sentence Alice did not enroll
    choose_and_submit(page, "identify", clip)
    decision = page.wait_css("#identify-result .decision")
    assert page.status("#identify-form") == "Done."
    page.screenshot("identified")

    api = live_server.app.test_client().post("/identify", content_type="multipart/form-data",
                                              data={"clip": (io.BytesIO(clip.read_bytes()), clip.name)}).json
    assert api["decision"] == "identified" and api["speaker"]["external_id"] == alice["external_id"]
    assert decision.get_attribute("data-decision") == "identified"
    assert decision.get_attribute("data-speaker") == alice["external_id"]
    assert page.text("#identify-result .headline") == f"Identified: Alice ({alice['external_id']})"

    # one bar per candidate, best first, the best above the threshold line and coloured so
    rows = page.all("#identify-result svg.score-chart .bar-row")
    scores = [float(r.get_attribute("data-score")) for r in rows]
    assert scores == pytest.approx([c["score"] for c in api["candidates"]], abs=1e-9)
    labels = [r.find_element("css selector", ".bar-label title").get_attribute("textContent") for r in rows]
    assert labels[0] == f"Alice ({alice['external_id']})" and f"Kal ({kal['external_id']})" in labels
    threshold = api["operating_point"]["threshold"]
    assert page.text("#identify-result .threshold text") == f"threshold {threshold:.3f}"
    assert "above" in rows[0].get_attribute("class")
    line_x = float(page.css("#identify-result .threshold line").get_attribute("x1"))
    bar = rows[0].find_element("css selector", "rect")
    assert float(bar.get_attribute("x")) + float(bar.get_attribute("width")) > line_x
    below = [r for r, s in zip(rows, scores) if s < threshold]
    for r in below:
        rect = r.find_element("css selector", "rect")
        assert float(rect.get_attribute("x")) + float(rect.get_attribute("width")) < line_x
        assert "below" in r.get_attribute("class")

    facts = page.text("#identify-result dl.facts")
    assert f"{api['margin']:.3f}" in facts
    assert "not calibrated (built-in default)" in facts
    assert "not measured (no calibration yet)" in facts
    assert not page.console_errors()


def test_verify_rejects_an_impostor_and_accepts_the_speaker(live_server, enrolled, browser, page_factory,
                                                           voice_files) -> None:
    page = page_factory(browser(), live_server).open("verify")
    alice = enrolled["alice"]
    page.fill("#verify-speaker", alice["external_id"])
    choose_and_submit(page, "verify", voice_files("flite:rms", 4))  # someone else claims to be Alice
    page.wait(lambda d: page.css("#verify-result .decision").get_attribute("data-decision") is not None)
    page.screenshot("impostor")
    decision = page.css("#verify-result .decision")
    assert decision.get_attribute("data-decision") == "rejected"
    assert page.text("#verify-result .headline") == f"Rejected: not Alice ({alice['external_id']})"
    assert "below" in page.css("#verify-result .bar-row").get_attribute("class")

    page.upload("verify", [voice_files("flite:slt", 5)])  # the real Alice
    page.css('#verify-form button[type="submit"]').click()
    page.wait(lambda d: page.all("#verify-result .decision.accepted"))
    page.screenshot("genuine")
    assert page.text("#verify-result .headline") == f"Accepted: this is Alice ({alice['external_id']})"


def test_identify_by_microphone(live_server, enrolled, browser, page_factory, voice_files, tmp_path) -> None:
    mic = tmp_path / "mic.wav"
    x, rate = sf.read(voice_files("flite:kal16", 5), dtype="float32")
    sf.write(mic, x, rate, subtype="PCM_16")
    page = page_factory(browser(fake_audio=mic), live_server).open("identify")
    clip = page.record("identify", 4.0)
    assert clip.get_attribute("data-clip-name") == "recording-1.wav"
    page.css('#identify-form button[type="submit"]').click()
    decision = page.wait_css("#identify-result .decision")
    page.screenshot("identified")
    assert decision.get_attribute("data-decision") == "identified"
    assert decision.get_attribute("data-speaker") == enrolled["kal"]["external_id"]


def test_api_errors_are_shown_as_the_api_words_them(live_server, enrolled, browser, page_factory,
                                                    tmp_path) -> None:
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(32000, dtype=np.float32), 16000, subtype="PCM_16")
    api = live_server.app.test_client().post("/identify", content_type="multipart/form-data",
                                              data={"clip": (io.BytesIO(quiet.read_bytes()), "quiet.wav")})
    assert api.status_code == 422

    page = page_factory(browser(), live_server).open("identify")
    choose_and_submit(page, "identify", quiet)
    assert page.status("#identify-form") == api.json["message"]
    assert page.css("#identify-form .form-status").get_attribute("data-kind") == "error"
    page.screenshot("silent-clip")

    page.go("verify")
    page.fill("#verify-speaker", f"nobody-{uuid.uuid4().hex[:6]}")
    page.upload("verify", [quiet])
    page.css('#verify-form button[type="submit"]').click()
    message = page.status("#verify-form")
    assert message == live_server.app.test_client().post(
        "/verify", content_type="multipart/form-data",
        data={"clip": (io.BytesIO(quiet.read_bytes()), "quiet.wav"),
              "external_id": page.css("#verify-speaker").get_attribute("value")}).json["message"]


def percent(rate: float) -> str:
    """As the page writes a rate (format.js percent)."""
    p = rate * 100
    if p == 0:
        return "0%"
    return f"{p:.{0 if p >= 10 else 1 if p >= 1 else 2 if p >= 0.1 else 3}f}%"


CALIBRATION_VOICES = ["flite:awb", "flite:rms", "en-us+f3", "en-us+m7"]


def test_calibrated_operating_point_is_shown_with_its_expected_far(live_server, enrolled, browser, page_factory,
                                                                  voice_files, tmp_path) -> None:
    """Runs last in this module: it calibrates the shared service (speakers never enrolled here)."""
    from voiceprint.services.calibration import run_calibration

    for voice in CALIBRATION_VOICES:
        folder = tmp_path / "calibration" / voice.replace(":", "_").replace("+", "_")
        folder.mkdir(parents=True)
        for i in range(5):
            shutil.copyfile(voice_files(voice, i), folder / f"{i}.wav")
    run_calibration(live_server.rt, tmp_path / "calibration", enroll_clips=2)

    clip = voice_files("flite:slt", 5)
    api = live_server.app.test_client().post("/identify", content_type="multipart/form-data",
                                              data={"clip": (io.BytesIO(clip.read_bytes()), clip.name)}).json
    op = api["operating_point"]
    assert op["calibrated"] is True

    page = page_factory(browser(width=1000, height=900), live_server).open("identify")
    choose_and_submit(page, "identify", clip)
    decision = page.wait_css("#identify-result .decision")
    assert decision.get_attribute("data-decision") == api["decision"]
    facts = page.text("#identify-result dl.facts")
    assert f"{op['name']} — calibrated" in facts
    assert f"Expected false accepts\n{percent(op['expected_far'])}" in facts
    assert page.text("#identify-result .threshold text") == f"threshold {op['threshold']:.3f}"
    page.screenshot("calibrated")
    if os.environ.get("VOICEPRINT_WRITE_DOCS_SCREENSHOT"):
        shutil.copyfile(page.screenshot("docs"), DOCS_SCREENSHOT)
