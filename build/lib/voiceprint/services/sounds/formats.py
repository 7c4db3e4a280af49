"""Sound-library vocabulary: library names, tags, audio formats, levels (pure functions)."""
from __future__ import annotations

import math
import re
from pathlib import PurePath
from typing import Any, Iterable

import numpy as np

from voiceprint.errors import VoiceprintError

DEFAULT_LIBRARY = "default"
LIBRARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_TAGS = 32
#: bounds of ``top_k`` for sound search
TOP_K_MAX = 100
#: peak level (dBFS) below which a clip counts as digital silence
SILENT_PEAK_DBFS = -80.0
COSINE = ("cosine similarity of the L2-normalised embeddings of the library's sound encoder, "
          "in [-1, 1] (1 = same embedding)")

#: libsndfile format -> (content type, file suffix) of the stored original
FORMATS: dict[str, tuple[str, str]] = {
    "WAV": ("audio/wav", ".wav"), "WAVEX": ("audio/wav", ".wav"), "RF64": ("audio/wav", ".wav"),
    "FLAC": ("audio/flac", ".flac"), "OGG": ("audio/ogg", ".ogg"), "MP3": ("audio/mpeg", ".mp3"),
    "AIFF": ("audio/aiff", ".aiff"), "AU": ("audio/basic", ".au"), "CAF": ("audio/x-caf", ".caf"),
    "W64": ("application/octet-stream", ".w64"),
}
#: file name suffixes the bulk loader tries to decode; anything else is ignored unread
AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif",
                            ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"})


def _bad(message: str, reason: str = "bad_tags") -> VoiceprintError:
    return VoiceprintError(message, reason=reason, status=422)


def check_library_name(name: str) -> str:
    if not isinstance(name, str) or not LIBRARY_NAME.match(name):
        raise _bad(f"library name {name!r} is invalid: use 1-64 letters, digits, '_', '-' or "
                   "'.', starting with a letter or digit", "bad_library_name")
    return name


def check_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    """Validated tags: at most 32, keys ``[A-Za-z0-9_.:-]{1,64}``, values strings <= 255 chars."""
    tags = dict(tags or {})
    if len(tags) > MAX_TAGS:
        raise _bad(f"at most {MAX_TAGS} tags per sound; got {len(tags)}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not TAG_KEY.match(key):
            raise _bad(f"tag key {key!r} is invalid: 1-64 letters, digits or _ . : -")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _bad(f"tag {key!r}: values are strings (got {type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(f"tag {key!r}: numbers must be finite")
        value = str(value)
        if len(value) > 255 or any(ord(ch) < 32 for ch in value):
            raise _bad(f"tag {key!r}: values are at most 255 printable characters")
        out[key] = value
    return out


def parse_tag_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["genre:foley", "source:x"]`` -> ``{"genre": "foley", "source": "x"}`` (split at the first ':')."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition(":")
        if not sep or not key:
            raise _bad(f"tag {pair!r} must look like key:value")
        if out.get(key, value) != value:
            raise _bad(f"tag key {key!r} given twice with different values (a sound has one "
                       "value per key)")
        out[key] = value
    return check_tags(out)


def content_type(fmt: str) -> str:
    return FORMATS.get(fmt.upper(), ("application/octet-stream", ""))[0]


def stored_suffix(fmt: str, filename: str | None) -> str:
    """The suffix of a stored original: from its format, else its name, else ``.bin``."""
    known = FORMATS.get(fmt.upper())
    if known:
        return known[1]
    suffix = PurePath(filename or "").suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ".bin"


def peak_dbfs(samples: np.ndarray) -> float:
    """Peak level in dBFS (full scale 1.0); minus infinity for digital silence."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf
