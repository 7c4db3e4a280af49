"""Uncalibrated defaults per speaker encoder, measured on the data this project has.

``encoder_defaults.json`` (next to this module, written by
``python -m eval.calibration --write-defaults``) holds per encoder: the
cosine threshold at a conservative FAR (0.1 %) on all speakers measured
(real FSDD recordings + synthesised voices), its measured rates and bounds,
the data it came from, and the raw-cosine score samples, so that open-set
sizing and enrollment consistency work before a site calibrates.
Decisions made with these say ``calibrated: false``: they were not measured
on the site's voices. README "Decisions" has the table.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["encoder_defaults", "measured_default_thresholds", "DEFAULTS_FILE"]

DEFAULTS_FILE = "encoder_defaults.json"


@lru_cache(maxsize=1)
def _all() -> dict[str, Any]:
    try:
        text = resources.files("voiceprint.scoring").joinpath(DEFAULTS_FILE).read_text("utf-8")
    except (FileNotFoundError, OSError):
        return {}
    return json.loads(text)


def encoder_defaults(encoder: str) -> dict[str, Any] | None:
    """The measured defaults of ``encoder`` (keys: threshold, target_far, point, data,
    samples), or None when it has none (e.g. ecapa_tdnn without real weights here)."""
    return _all().get(encoder)


def measured_default_thresholds() -> dict[str, float]:
    """Encoder name -> measured uncalibrated cosine threshold, for every encoder measured."""
    return {name: float(d["threshold"]) for name, d in _all().items()}
