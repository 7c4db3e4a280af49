"""Labelled folders of speech: ``<speaker>/<clip>`` or FSDD's ``{digit}_{speaker}_{index}.wav``."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def labelled_clips(root: str | Path) -> dict[str, list[Path]]:
    """Speaker -> sorted clip paths.

    A folder whose sub-folders hold audio is read as ``<speaker>/<clips>``
    (recursively below each speaker folder); a flat folder of FSDD-style
    names ``{digit}_{speaker}_{index}.wav`` is grouped by the name's speaker.
    Raises ``ValueError`` when nothing usable is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    out: dict[str, list[Path]] = defaultdict(list)
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        clips = sorted(p for p in sub.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if clips:
            out[sub.name] = clips
    if not out:
        for p in sorted(root.iterdir()):
            m = FSDD_NAME.match(p.stem)
            if m and p.suffix.lower() in AUDIO_SUFFIXES:
                out[m.group(2)].append(p)
    if not out:
        raise ValueError(f"no labelled audio under {root}: expected <speaker>/<clips> "
                         "or {digit}_{speaker}_{index}.wav files")
    return dict(out)
