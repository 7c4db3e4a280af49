"""The Debian sound corpus builder and the near-duplicate perturbations of ``eval``."""
from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from eval import sound_corpus as corpus
from eval.sound_perturb import PERTURBATIONS, change_speed, excerpt
from voiceprint.audio import decode_bytes


def test_categories_come_from_voice_packs_and_variant_numbers():
    assert corpus.category_of("hedgewars-data", PurePosixPath("voices/Pirate/Ouch.ogg")) \
        == "hedgewars:voice:pirate"
    assert corpus.category_of("wesnoth-1.16-data", PurePosixPath("data/core/sounds/bat-hit-3.ogg")) \
        == "wesnoth:bat-hit"
    assert corpus.category_of("lincity-ng-data", PurePosixPath("sounds/Farm2.wav")) == "lincity:farm"


def test_dep5_lookup_prefers_the_most_specific_paragraph(tmp_path):
    doc = tmp_path / "pkg"
    doc.mkdir()
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: 2004 A\nLicense: GPL-2\n\n"
        "Files: share/game/Data/Sounds/*\nCopyright: 2005 B\nLicense: GFDL-1.3\n\n"
        "Files: share/game/Data/Sounds/Drop*.ogg\nCopyright: C (freesound)\nLicense: CC-BY-SA-3.0\n\n"
        "Files: game/*\nCopyright: 2006 D\nLicense: MIT\n")
    pytest.importorskip("debian.copyright")
    cf = corpus.CopyrightFile("pkg", doc_root=tmp_path)
    base = "/usr/share/games/game/Data/Sounds"
    assert cf.lookup(Path(f"{base}/boom.ogg")).licence == "GFDL-1.3"
    assert cf.lookup(Path(f"{base}/Drop1.ogg")) == corpus.Licence("CC-BY-SA-3.0", "C (freesound)")
    assert cf.lookup(Path("/usr/share/doc/pkg/README")).licence == "GPL-2"


@pytest.mark.skipif(shutil.which("dpkg-query") is None or corpus.installed_version("sound-icons") is None,
                    reason="Debian package sound-icons not installed")
def test_builds_a_corpus_with_manifest_and_attribution(tmp_path):
    specs = [p for p in corpus.PACKAGES if p.name == "sound-icons"]
    entries, missing = corpus.build(tmp_path, specs, log=False)
    assert not missing and len(entries) >= 10
    assert {e.licence for e in entries} == {"GPL-2+"}
    assert all((tmp_path / e.path).is_file() for e in entries)
    assert len({e.sha256 for e in entries}) == len(entries)  # byte-identical copies dropped
    again = corpus.read_manifest(tmp_path)
    assert [e.path for e in again] == [e.path for e in entries]
    assert "sound-icons" in (tmp_path / "ATTRIBUTION.md").read_text()
    labelled = [e.category for e in entries if e.category]
    assert labelled and all(labelled.count(c) >= 2 for c in labelled)


def test_perturbations_produce_decodable_uploads():
    sr = 22050
    t = np.arange(int(1.5 * sr)) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-t)).astype(np.float32)
    for name, make in PERTURBATIONS.items():
        data = make(x, sr, np.random.default_rng(0))
        assert data is not None, name
        a = decode_bytes(data)
        assert a.samples.size > 0, name
    short = x[: sr // 2]
    assert PERTURBATIONS["cut_0.5s"](short, sr, np.random.default_rng(0)) is None
    assert abs(change_speed(x, sr, 1.1).size - x.size / 1.1) <= 2
    assert excerpt(np.zeros(1000, np.float32), 100, np.random.default_rng(0)) is None
