"""Where the recordings that are kept out of the repo live (one place for eval/ and tests/).

FSDD (Free Spoken Digit Dataset: 6 speakers, 8 kHz) is looked up as
``$VOICEPRINT_FSDD`` (its ``recordings`` folder), else as
``shared/data/fsdd/recordings`` in the nearest folder above the repository
(this workplace keeps it at ``../shared/data/fsdd``). Nothing here is copied
into the repo.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fsdd_dir() -> Path:
    """The FSDD ``recordings`` folder; it may not exist (callers skip or explain)."""
    if os.environ.get("VOICEPRINT_FSDD"):
        return Path(os.environ["VOICEPRINT_FSDD"])
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "fsdd" / "recordings"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "data" / "fsdd" / "recordings"
