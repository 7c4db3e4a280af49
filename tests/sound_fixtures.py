"""pytest fixtures for sound search: the small calibrated CNN14 (see eval/sound_fixtures.py).

The generators, perturbations and checkpoint writer live in
:mod:`eval.sound_fixtures` (``eval.bench_sounds`` uses them too); this module
re-exports them, so tests keep ``from tests import sound_fixtures as sfx``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.sound_fixtures import *  # noqa: F401,F403  (re-exported for the tests)
from eval.sound_fixtures import load_small_cnn14, write_small_cnn14



@pytest.fixture(scope="session")
def panns_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the small calibrated CNN14 checkpoint (PaddleSpeech layout)."""
    pytest.importorskip("paddle")
    pytest.importorskip("paddlespeech")
    pytest.importorskip("yaml")
    return write_small_cnn14(tmp_path_factory.mktemp("panns_small") / "model")


@pytest.fixture(scope="session")
def paddle_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("paddle_cache")


@pytest.fixture(scope="session")
def panns_small(panns_dir: Path, paddle_cache: Path) -> Any:
    """The small CNN14 loaded through the real loader (exports cached in a temp dir)."""
    return load_small_cnn14(panns_dir, cache_dir=paddle_cache)
