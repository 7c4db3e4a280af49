"""A real sound-effects corpus from Debian packages that ship recorded sounds under free licences.

    python -m eval.sound_corpus [--out eval/cache/sound-corpus] [--packages P ...]
        [--min-seconds 0.2] [--max-seconds 20]

Install the packages first (about 580 MB download, nothing of it in git)::

    apt-get install -y --no-install-recommends hedgewars-data wesnoth-1.16-data \\
        lincity-ng-data frozen-bubble-data extremetuxracer-data pingus-data sound-icons

What it does, per installed package of :data:`PACKAGES` (missing ones are
skipped and listed):

* picks the package's audio files (``.wav``/``.ogg``/``.flac``, from
  ``dpkg-query -L``), leaving out music folders, clips outside
  ``[--min-seconds, --max-seconds]`` and byte-identical copies;
* links (or copies) them to ``OUT/<package>/<path below the package's data
  root>``, so ``voiceprint sounds load OUT`` and the evaluation see folders;
* labels a **category** where names or folders give one: hedgewars voice packs
  (``Sounds/voices/<pack>/``) are one category per pack (the same actor); other
  files are grouped by their stem without trailing digits (wesnoth's
  ``bat-hit-1..4``, lincity's ``Farm1..3``); a group of one has no category;
* writes ``OUT/manifest.csv`` (``id, path, package, version, source, category,
  licence, copyright, duration_s, sample_rate, channels, sha256``) and
  ``OUT/ATTRIBUTION.md``. Licence and copyright come from the package's
  ``/usr/share/doc/<pkg>/copyright``: the matching ``Files:`` paragraph of a
  machine-readable (DEP-5) file, otherwise the package-wide statement
  (:data:`PLAIN_LICENCES`, read off the free-text file). CC BY-SA and GFDL
  sounds need that attribution wherever they are redistributed.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

DEFAULT_OUT = Path(__file__).resolve().parent / "cache" / "sound-corpus"
AUDIO_SUFFIXES = (".wav", ".ogg", ".flac")


@dataclass(frozen=True)
class PackageSpec:
    """Where a package keeps its sounds: ``root`` is stripped from the corpus path."""

    name: str
    root: str


#: packages with recorded sound effects, and the folder their sounds live under
PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("hedgewars-data", "/usr/share/games/hedgewars/Data/Sounds"),
    PackageSpec("wesnoth-1.16-data", "/usr/share/games/wesnoth/1.16"),
    PackageSpec("lincity-ng-data", "/usr/share/games/lincity-ng"),
    PackageSpec("frozen-bubble-data", "/usr/share/games/frozen-bubble"),
    PackageSpec("extremetuxracer-data", "/usr/share/games/etr"),
    PackageSpec("pingus-data", "/usr/share/games/pingus/data"),
    PackageSpec("sound-icons", "/usr/share/sounds/sound-icons"),
)

#: licence of packages whose copyright file is free text (not DEP-5), as that file states it
PLAIN_LICENCES = {
    "wesnoth-1.16-data": "GPL-2+",
    "pingus-data": "GPL-2+",
}

#: a path component naming a music folder (left out: songs are not sound effects)
MUSIC = re.compile(r"^music$", re.IGNORECASE)
#: the number (and separator) at the end of a variant's stem: "bat-hit-2", "Farm3", "Ow1"
VARIANT_SUFFIX = re.compile(r"[-_ ]?\d+$")


@dataclass
class Entry:
    id: str
    path: str
    package: str
    version: str
    source: str
    category: str
    licence: str
    copyright: str
    duration_s: float
    sample_rate: int
    channels: int
    sha256: str


# -- package metadata ------------------------------------------------------------------
def installed_version(package: str) -> str | None:
    """Installed version of ``package``, or None."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                             capture_output=True, text=True, check=False)
    except FileNotFoundError:  # not a Debian system
        return None
    status, _, version = out.stdout.partition("\t")
    return version if out.returncode == 0 and status.endswith(" installed") else None


def package_files(package: str) -> list[Path]:
    out = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True)
    return [Path(line) for line in out.stdout.splitlines() if line.startswith("/")]


@dataclass(frozen=True)
class Licence:
    licence: str
    copyright: str


class CopyrightFile:
    """Licence lookup for installed files from ``/usr/share/doc/<pkg>/copyright``."""

    def __init__(self, package: str, doc_root: Path = Path("/usr/share/doc")) -> None:
        self.package = package
        self.path = doc_root / package / "copyright"
        self.paragraphs: list[tuple[tuple[str, ...], Licence]] = []
        self.plain: Licence | None = None
        text = self.path.read_text(errors="replace") if self.path.is_file() else ""
        try:
            from debian.copyright import Copyright, NotMachineReadableError
        except ImportError:  # python-debian not installed: package-wide statement only
            Copyright, NotMachineReadableError = None, Exception  # type: ignore[assignment,misc]
        if Copyright is not None and text:
            try:
                parsed = Copyright(text.splitlines(keepends=True), strict=False)
                for para in parsed.all_files_paragraphs():
                    lic = para.license.synopsis if para.license else ""
                    holder = " / ".join(re.sub(r"\s+", " ", line.strip()) for line in (para.copyright or "").splitlines()
                                        if line.strip())
                    self.paragraphs.append((tuple(para.files), Licence(lic, holder)))
            except (NotMachineReadableError, ValueError):
                self.paragraphs = []
        if not self.paragraphs:
            holders = re.findall(r"Copyright \(C\)\s*([^\n]+)", text, flags=re.IGNORECASE)
            self.plain = Licence(PLAIN_LICENCES.get(package, f"see {self.path}"),
                                 " / ".join(h.strip() for h in holders[:4])
                                 + (" and others" if len(holders) > 4 else ""))

    @staticmethod
    def _match_depth(pattern: str, installed: str) -> int:
        """How well a DEP-5 ``Files:`` pattern (source-relative) matches an installed path:
        the number of components of the longest pattern tail (keeping at least one
        folder) that matches a tail of the path; 1 for ``*``; 0 for no match.

        Installed paths differ from source paths in their leading folders
        (``share/hedgewars/...`` is installed as ``/usr/share/games/hedgewars/...``),
        so tails are compared; the deepest match is the most specific paragraph.
        """
        if pattern == "*":
            return 1
        parts = pattern.strip("/").split("/")
        for k in range(len(parts)):
            tail = parts[k:]
            if len(tail) < 2:
                break
            if fnmatch.fnmatchcase(installed, "*/" + "/".join(tail)):
                return len(tail)
        return 0

    def lookup(self, installed: Path) -> Licence:
        """The most specific matching paragraph (ties: the later one, as in DEP-5)."""
        if not self.paragraphs:
            assert self.plain is not None
            return self.plain
        found, best = Licence("", ""), 0
        for patterns, lic in self.paragraphs:
            depth = max(self._match_depth(p, str(installed)) for p in patterns)
            if depth and depth >= best:
                found, best = lic, depth
        return found


# -- picking files -------------------------------------------------------------------------
def category_of(package: str, rel: PurePosixPath) -> str:
    """Candidate label (kept only when two or more files share it, see :func:`build`)."""
    parts = rel.parts
    short = package.split("-")[0]
    if package == "hedgewars-data" and len(parts) >= 3 and parts[0] == "voices":
        return f"{short}:voice:{parts[1].lower()}"
    stem = VARIANT_SUFFIX.sub("", rel.stem).lower()
    return f"{short}:{stem}" if stem else ""


def candidate_files(spec: PackageSpec) -> Iterable[tuple[Path, PurePosixPath]]:
    root = Path(spec.root)
    for path in sorted(package_files(spec.name)):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        try:
            rel = PurePosixPath(path.relative_to(root).as_posix())
        except ValueError:
            continue
        if any(MUSIC.match(part) for part in rel.parts[:-1]):
            continue
        yield path, rel


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build(out: Path, packages: Sequence[PackageSpec] = PACKAGES, *, min_seconds: float = 0.2,
          max_seconds: float = 20.0, log: bool = True) -> tuple[list[Entry], list[str]]:
    """Build the corpus under ``out``; returns (entries, packages not installed)."""
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    missing: list[str] = []
    seen: set[str] = set()
    for spec in packages:
        version = installed_version(spec.name)
        if version is None:
            missing.append(spec.name)
            continue
        licences = CopyrightFile(spec.name)
        kept = 0
        for path, rel in candidate_files(spec):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            try:
                info = sf.info(str(path))
            except (RuntimeError, sf.LibsndfileError):
                continue
            if not min_seconds <= info.duration <= max_seconds:
                continue
            seen.add(digest)
            target = PurePosixPath(spec.name) / rel
            _place(path, out / target)
            lic = licences.lookup(path)
            entries.append(Entry(
                id=f"{len(entries):05d}", path=target.as_posix(), package=spec.name,
                version=version, source=str(path), category=category_of(spec.name, rel),
                licence=lic.licence, copyright=lic.copyright,
                duration_s=round(float(info.duration), 3), sample_rate=int(info.samplerate),
                channels=int(info.channels), sha256=digest))
            kept += 1
        if log:
            print(f"{spec.name} {version}: {kept} sounds", file=sys.stderr)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.category] = counts.get(e.category, 0) + 1
    for e in entries:  # a category of one labels nothing
        if e.category and counts[e.category] < 2:
            e.category = ""
    write_manifest(out, entries)
    write_attribution(out, entries)
    return entries, missing


# -- outputs ----------------------------------------------------------------------------------
def write_manifest(out: Path, entries: Sequence[Entry]) -> Path:
    path = out / "manifest.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[f.name for f in fields(Entry)])
        w.writeheader()
        for e in entries:
            w.writerow(asdict(e))
    return path


def read_manifest(root: Path) -> list[Entry]:
    """Entries of a built corpus (``root/manifest.csv``); paths stay relative to ``root``."""
    with (root / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [Entry(**{**r, "duration_s": float(r["duration_s"]), "sample_rate": int(r["sample_rate"]),
                     "channels": int(r["channels"])}) for r in rows]


def attribution_groups(entries: Sequence[Entry]) -> list[dict[str, object]]:
    """Sounds grouped by (package, licence, copyright), largest first."""
    groups: dict[tuple[str, str, str], int] = {}
    for e in entries:
        key = (e.package, e.licence, e.copyright)
        groups[key] = groups.get(key, 0) + 1
    return [{"package": p, "licence": lic, "copyright": c, "sounds": n}
            for (p, lic, c), n in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[1]))]


def write_attribution(out: Path, entries: Sequence[Entry]) -> Path:
    lines = ["# Sound corpus: sources and licences", "",
             "Sounds taken from installed Debian packages; each package's "
             "`/usr/share/doc/<package>/copyright` is the authority.", "",
             "| package | sounds | licence | copyright |", "|---|---|---|---|"]
    for g in attribution_groups(entries):
        lines.append(f"| {g['package']} | {g['sounds']} | {g['licence']} | {g['copyright']} |")
    path = out / "ATTRIBUTION.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def summary(entries: Sequence[Entry], missing: Sequence[str]) -> dict[str, object]:
    cats: dict[str, int] = {}
    for e in entries:
        if e.category:
            cats[e.category] = cats.get(e.category, 0) + 1
    durations = sorted(e.duration_s for e in entries)
    return {
        "sounds": len(entries),
        "packages": sorted({e.package for e in entries}),
        "missing_packages": list(missing),
        "labelled": sum(cats.values()),
        "categories": len(cats),
        "median_seconds": durations[len(durations) // 2] if durations else None,
        "total_minutes": round(sum(durations) / 60, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--packages", nargs="*", help="subset of: " + " ".join(p.name for p in PACKAGES))
    ap.add_argument("--min-seconds", type=float, default=0.2)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    specs = [p for p in PACKAGES if not args.packages or p.name in args.packages]
    entries, missing = build(args.out, specs, min_seconds=args.min_seconds,
                             max_seconds=args.max_seconds)
    print(json.dumps(summary(entries, missing), indent=2))
    if missing:
        print("not installed (apt-get install -y --no-install-recommends "
              + " ".join(missing) + ")", file=sys.stderr)
    return 0 if entries else 1


if __name__ == "__main__":
    raise SystemExit(main())
