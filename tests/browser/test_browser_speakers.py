"""Speakers in the browser: create, enroll by uploading files and by the microphone, list, delete."""
from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.browser.conftest import LiveServer, Page, api_enroll


def silence(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    sf.write(path, np.zeros(int(seconds * rate), dtype=np.float32), rate, subtype="PCM_16")
    return path


def create_speaker(page: Page, external_id: str, name: str) -> None:
    page.go("speakers")
    page.fill("#new-external-id", external_id)
    page.fill("#new-name", name)
    page.css('#speaker-create button[type="submit"]').click()
    page.wait(lambda d: page.css("#speaker-detail").is_displayed()
              and page.text("#speaker-detail-title") == f"{name} ({external_id})")


def enroll_and_wait(page: Page) -> str:
    page.css('#enroll-form button[type="submit"]').click()
    return page.status("#enroll-form")


def test_enroll_by_upload_shows_each_clips_verdict(live_server: LiveServer, browser, page_factory,
                                                    voice_files, tmp_path: Path) -> None:
    page = page_factory(browser(), live_server).open("speakers")
    external_id = f"alice-{uuid.uuid4().hex[:6]}"
    create_speaker(page, external_id, "Alice")
    assert "6.0 s of speech still needed" in page.text("#speaker-enrollment")
    assert page.css("#speaker-enrollment").get_attribute("data-status") == "enrolling"

    # what the API answers for a silent clip alone (422, nothing stored)
    quiet = silence(tmp_path / "quiet.wav")
    sid = int(page.css("#speaker-detail").get_attribute("data-speaker-id"))
    api = live_server.app.test_client().post(
        f"/speakers/{sid}/enrollments", content_type="multipart/form-data",
        data={"clips": [(io.BytesIO(quiet.read_bytes()), "quiet.wav")]})
    assert api.status_code == 422
    reasons = [r["message"] for r in api.json["errors"]["clips"][0]["reasons"]]

    # the page says the same: the API's message, and the clip's reasons next to it
    page.upload("enroll", [quiet])
    assert enroll_and_wait(page) == api.json["message"]
    rejected = page.css('li.clip[data-clip-name="quiet.wav"]')
    assert rejected.get_attribute("data-outcome") == "rejected"
    assert reasons and all(m in rejected.text for m in reasons)
    page.screenshot("none-accepted")

    speech = [voice_files("flite:slt", i) for i in range(3)]
    page.upload("enroll", speech)
    page.screenshot("clips-chosen")
    status = enroll_and_wait(page)
    page.screenshot("enrolled")
    assert status.startswith("3 clips accepted, 1 rejected"), status
    for p in speech:
        assert page.css(f'li.clip[data-clip-name="{p.name}"]').get_attribute("data-outcome") == "accepted"
    assert rejected.get_attribute("data-outcome") == "rejected"
    assert all(m in rejected.text for m in reasons)

    assert page.css("#speaker-enrollment").get_attribute("data-status") == "enrolled"
    row = page.css(f'#speaker-table tr[data-external-id="{external_id}"]')
    assert "Enrolled" in row.text and "3 recordings" in row.text
    # recordings: listed when the service has GET /speakers/{id}/utterances, else counted
    page.wait(lambda d: "Loading" not in page.text("#speaker-utterances"))
    listed = page.all("#speaker-utterances tbody tr")
    if listed:
        assert sorted(r.find_element("css selector", "td").text for r in listed) == sorted(p.name for p in speech)
    else:
        assert page.text("#speaker-utterances").startswith("3 recordings enrolled")
    assert not page.console_errors()


def test_enroll_by_microphone(live_server: LiveServer, browser, page_factory, voice_files,
                              tmp_path: Path) -> None:
    # Chromium's fake capture device plays this file (in a loop) as the microphone
    parts = [sf.read(voice_files("flite:awb", i), dtype="float32") for i in range(3)]
    rate = parts[0][1]
    mic = tmp_path / "mic.wav"
    sf.write(mic, np.concatenate([x for x, _ in parts]), rate, subtype="PCM_16")

    page = page_factory(browser(fake_audio=mic), live_server).open("speakers")
    external_id = f"bob-{uuid.uuid4().hex[:6]}"
    create_speaker(page, external_id, "Bob")
    clip = page.record("enroll", 9.0)
    assert clip.get_attribute("data-clip-name") == "recording-1.wav"
    status = enroll_and_wait(page)
    page.screenshot("enrolled")
    assert status.startswith("1 clip accepted"), status
    assert clip.get_attribute("data-outcome") == "accepted"
    assert page.css("#speaker-enrollment").get_attribute("data-status") == "enrolled"

    # the service decoded the page's WAV: one utterance holding the recorded speech
    sid = int(page.css("#speaker-detail").get_attribute("data-speaker-id"))
    speaker = live_server.app.test_client().get(f"/speakers/{sid}").json
    assert speaker["enrollment"]["utterances"] == 1
    assert speaker["enrollment"]["speech_seconds"] >= 6.0


def test_search_paging_and_delete(live_server: LiveServer, browser, page_factory, voice_files) -> None:
    client = live_server.app.test_client()
    tag = uuid.uuid4().hex[:6]
    for i in range(23):
        assert client.post("/speakers", json={"external_id": f"p{tag}-{i:02d}"}).status_code == 201
    enrolled = api_enroll(live_server, f"dora-{tag}", [voice_files("flite:rms", i) for i in range(3)], "Dora")
    total = client.get("/speakers").json["total"]

    page = page_factory(browser(), live_server).open("speakers")
    page.wait(lambda d: page.text("#speaker-page").endswith(f"{total} speakers"))
    pages = -(-total // 20)
    assert page.text("#speaker-page").startswith(f"Page 1 of {pages}")
    assert len(page.all("#speaker-table tbody tr")) == 20
    assert not page.css("#speaker-prev").is_enabled()
    page.css("#speaker-next").click()
    page.wait(lambda d: page.text("#speaker-page").startswith("Page 2 of"))
    assert page.css("#speaker-prev").is_enabled()

    page.fill("#speaker-query", f"dora-{tag}")
    page.css('#speaker-search button[type="submit"]').click()
    page.wait(lambda d: page.text("#speaker-page") == "Page 1 of 1 · 1 speaker")
    row = page.css(f'#speaker-table tr[data-speaker-id="{enrolled}"]')
    assert "Dora" in row.text and "Enrolled" in row.text
    page.screenshot("search")

    row.find_element("css selector", "button.danger").click()
    alert = page.wait(lambda d: d.switch_to.alert)
    assert f"Dora (dora-{tag})" in alert.text
    alert.accept()
    page.wait(lambda d: page.text("#speaker-list-status") == f"Deleted Dora (dora-{tag}).")
    assert client.get(f"/speakers/{enrolled}").status_code == 404
    page.wait(lambda d: page.text("#speaker-page") == "Page 1 of 1 · 0 speakers")
