"""Similar-sound search in the browser: add files to a library, search by example, play a hit.

The sound encoder is the small random CNN14 of tests/sound_fixtures.py (no
real weights here); a near-duplicate (the same sound 6 dB quieter) still
finds its original first.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests import sound_fixtures as sfx
from tests.browser.conftest import LiveServer


@pytest.fixture(scope="module")
def sound_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[sfx.Sound, Path]]:
    root = tmp_path_factory.mktemp("sounds")
    out = []
    for sound in sfx.library(6, seed=7):
        path = root / sound.filename
        path.write_bytes(sound.encode())
        out.append((sound, path))
    return out


def test_add_search_and_play(with_sound_encoder: LiveServer, browser, page_factory, sound_files,
                             tmp_path: Path) -> None:
    server = with_sound_encoder
    library = f"web-{uuid.uuid4().hex[:6]}"
    page = page_factory(browser(), server).open("sounds")
    page.fill("#upload-library", library)
    page.fill("#upload-tags", "source:web, batch:one")
    page.upload("sound-upload", [p for _, p in sound_files])
    page.css('#sound-upload button[type="submit"]').click()
    status = page.status("#sound-upload")
    page.screenshot("added")
    assert status == f"6 added (library {library}).", status
    for _, path in sound_files:
        clip = page.css(f'[data-picker="sound-upload"] li.clip[data-clip-name="{path.name}"]')
        assert clip.get_attribute("data-outcome") == "accepted" and "Added as sound #" in clip.text

    # a file already in the library is reported as such, not stored twice
    again = sound_files[0][1]
    page.upload("sound-upload", [again])
    page.css('#sound-upload button[type="submit"]').click()
    assert page.status("#sound-upload") == f"0 added, 1 already there (library {library})."
    dup = page.all(f'[data-picker="sound-upload"] li.clip[data-clip-name="{again.name}"]')[-1]
    assert dup.get_attribute("data-outcome") == "info" and "Already in the library as sound #" in dup.text

    # the library shows up in the search form, selected
    page.wait(lambda d: page.css("#sound-library").get_attribute("value") == library)
    assert f"{library} (6 sounds)" in page.text("#sound-library")

    target, _ = sound_files[2]
    query = tmp_path / "quieter.wav"
    query.write_bytes(sfx.encode(sfx.gain(target.samples, -6), target.sample_rate))
    page.upload("sound-query", [query])
    page.css("#sound-search details.options summary").click()
    page.fill("#sound-top-k", "3")
    page.css('#sound-search button[type="submit"]').click()
    assert page.status("#sound-search") == "3 results."
    hits = page.all("#sound-results li.hit")
    assert len(hits) == 3
    assert hits[0].find_element("css selector", ".hit-name").text == target.name
    assert "source: web" in hits[0].text and "batch: one" in hits[0].text

    # play the best hit: its audio is fetched with the page's credentials into a blob: URL
    hits[0].find_element("css selector", ".play-button").click()
    audio = page.wait_css("#sound-results li.hit audio")
    assert audio.get_attribute("src").startswith("blob:")
    page.wait(lambda d: d.execute_script(
        "const a = arguments[0]; return a.readyState >= 2 && (a.currentTime > 0 || a.ended);", audio))
    duration = page.driver.execute_script("return arguments[0].duration", audio)
    assert duration == pytest.approx(target.samples.size / target.sample_rate, abs=0.05)
    page.screenshot("playing")
    assert not page.console_errors()
