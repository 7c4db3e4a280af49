"""What a bulk enrollment enrolls: speakers and their files, in a fixed order.

Two sources:

* a folder tree ``DIR/<speaker external id>/<clips>`` - every audio file
  below a speaker's folder (recursively: ``id00012/<session>/<n>.wav`` is
  fine); files directly in ``DIR``, hidden entries and non-audio files are
  ignored (and counted);
* a manifest CSV with a header naming the columns ``speaker`` (external id)
  and ``file`` (absolute, or relative to the manifest's folder), optionally
  ``name`` and ``metadata`` (a JSON object). A speaker's name and metadata
  are taken from its first row that has them; they apply when the speaker
  is created (an existing speaker's record is not changed).

Speakers come in order of external id, files in path order (the manifest's
own order for a manifest), so two runs over the same source walk it the
same way.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voiceprint.errors import VoiceprintError
from voiceprint.services.sounds.formats import AUDIO_SUFFIXES

MANIFEST_COLUMNS = ("speaker", "file", "name", "metadata")


@dataclass
class SpeakerPlan:
    external_id: str
    files: list[Path] = field(default_factory=list)
    name: str | None = None
    metadata: dict[str, Any] | None = None
    #: a problem with the speaker's own record (bad metadata...), reported for each file
    problem: tuple[str, str] | None = None


@dataclass
class Plan:
    speakers: list[SpeakerPlan]
    #: files that are not enrolled: not audio, hidden, or outside a speaker folder
    ignored: int
    #: where it came from (for messages and the audit log)
    source: str
    root: Path

    @property
    def total(self) -> int:
        return sum(len(s.files) for s in self.speakers)

    def display(self, path: Path) -> str:
        """``path`` relative to the source's folder (as reports and stored file names show it)."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.name


def _bad(message: str) -> VoiceprintError:
    return VoiceprintError(message, reason="bad_manifest", status=422)


def plan_from_folder(root: str | os.PathLike[str]) -> Plan:
    """``root/<speaker>/...`` -> one :class:`SpeakerPlan` per speaker folder."""
    base = Path(root).resolve()
    if not base.is_dir():
        raise VoiceprintError(f"{Path(root).name!r} is not a folder", reason="bad_source",
                              status=422)
    speakers: list[SpeakerPlan] = []
    ignored = sum(1 for p in base.iterdir() if p.is_file())
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        plan = SpeakerPlan(folder.name)
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name.startswith(".") or path.suffix.lower() not in AUDIO_SUFFIXES:
                    ignored += 1
                else:
                    plan.files.append(path)
        if plan.files:
            speakers.append(plan)
    return Plan(speakers, ignored, str(base), base)


def plan_from_manifest(manifest: str | os.PathLike[str]) -> Plan:
    """A CSV with columns ``speaker,file[,name][,metadata]`` (header required)."""
    path = Path(manifest).resolve()
    base = path.parent
    by_id: dict[str, SpeakerPlan] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "speaker" not in columns or "file" not in columns:
            raise _bad("the manifest needs a header row naming the columns 'speaker' and 'file' "
                       "(optional: 'name', 'metadata')")
        unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
        if unknown:
            raise _bad(f"unknown manifest column(s) {', '.join(unknown)}; the columns are "
                       f"{', '.join(MANIFEST_COLUMNS)}")
        reader.fieldnames = columns
        for line, row in enumerate(reader, start=2):
            speaker = (row.get("speaker") or "").strip()
            file = (row.get("file") or "").strip()
            if not speaker or not file:
                raise _bad(f"manifest line {line}: 'speaker' and 'file' must not be empty")
            plan = by_id.setdefault(speaker, SpeakerPlan(speaker))
            target = Path(file)
            plan.files.append(target if target.is_absolute() else base / target)
            if plan.name is None and (row.get("name") or "").strip():
                plan.name = row["name"].strip()
            meta = (row.get("metadata") or "").strip()
            if meta and plan.metadata is None and plan.problem is None:
                try:
                    plan.metadata = json.loads(meta)
                except ValueError:
                    plan.problem = ("bad_metadata", f"manifest line {line}: metadata is not "
                                    "valid JSON")
    return Plan([by_id[k] for k in sorted(by_id)], 0, str(path), base)
