"""Every setting is read in one place, validated at start, and documented in the README."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from voiceprint.config import SETTINGS, Config
from voiceprint.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("env,variable", [
    ({"VOICEPRINT_SCORE_NORMALIZATION": "asnrom"}, "VOICEPRINT_SCORE_NORMALIZATION"),
    ({"VOICEPRINT_SPEAKER_MODEL": "centriod"}, "VOICEPRINT_SPEAKER_MODEL"),
    ({"VOICEPRINT_MAX_CLIP_SECONDS": "ten"}, "VOICEPRINT_MAX_CLIP_SECONDS"),
    ({"VOICEPRINT_KEEP_AUDIO": "maybe"}, "VOICEPRINT_KEEP_AUDIO"),
    ({"VOICEPRINT_MAX_CHANNELS": "0"}, "VOICEPRINT_MAX_CHANNELS"),
    ({"VOICEPRINT_AUTH": "none"}, "VOICEPRINT_AUTH"),
])
def test_a_bad_value_is_an_error_naming_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Config(env)


def test_create_app_validates_overrides(app_config):
    from voiceprint import create_app
    with pytest.raises(ConfigError, match="VOICEPRINT_SPEAKER_MODEL"):
        create_app({**app_config, "SPEAKER_MODEL": "nope"})


def test_no_voiceprint_variable_is_read_outside_config():
    root = Path(__file__).resolve().parents[1] / "voiceprint"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if p.name != "config.py"
                 and re.search(r"environ(\.get)?\(?\[?[\"']VOICEPRINT_", p.read_text())]
    assert offenders == []


def test_the_readme_documents_every_setting():
    text = README.read_text()
    missing = [s.variable for s in SETTINGS if f"`{s.variable}`" not in text]
    assert missing == []
