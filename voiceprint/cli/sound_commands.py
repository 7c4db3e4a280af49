"""``voiceprint sounds ...``: bulk load, search and manage sound libraries from the shell.

Runs in-process on the configured stores, like the rest of the CLI (with
the embedded Milvus Lite file, stop ``voiceprint serve`` first).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from voiceprint.cli.base import audit_cli, cli_runtime, tenant_of, tenant_option
from voiceprint.services.sounds.formats import DEFAULT_LIBRARY, TOP_K_MAX

EXIT_SOME_FAILED = 1


def _service(tenant: str) -> Any:
    from voiceprint.services.sounds import SoundService
    rt = cli_runtime()
    return SoundService(rt, tenant_of(rt, tenant))


def _tags(pairs: tuple[str, ...]) -> dict[str, str]:
    from voiceprint.services.sounds.formats import parse_tag_pairs
    return parse_tag_pairs(pairs)


def _fmt_tags(tags: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


library_option = click.option("--library", "-l", default=DEFAULT_LIBRARY, show_default=True,
                              help="named sound library")
tag_option = click.option("--tag", "tags", multiple=True, metavar="KEY:VALUE",
                          help="tag (repeatable)")


@click.group()
def sounds() -> None:
    """Similar-sound search: load, search, count, delete and drop sound libraries."""


@sounds.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@library_option
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1, 256),
              help="files embedded and committed together (a kill loses at most one batch)")
@tag_option
@click.option("--folder-tag", default=None, metavar="KEY",
              help="also tag each sound KEY=<its folder relative to PATH>")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="progress bar on stderr (only on a terminal)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, writable=True),
              default=None, help="write every file's outcome as JSON lines")
@tenant_option
def load(paths: tuple[str, ...], library: str, batch_size: int, tags: tuple[str, ...],
         folder_tag: str | None, progress: bool, report_file: str | None, tenant: str) -> None:
    """Load every audio file below PATHS (recursive) into a library.

    Files whose bytes are already in the library are skipped, so running the
    same command again resumes an interrupted load. Unreadable files are
    listed with the reason and do not stop the others. Exit status: 0 when
    no file failed, 1 when some did (or the load stopped on an error).
    """
    from tqdm import tqdm

    from voiceprint.services.sounds import load_paths

    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    bar = tqdm(total=0, unit="file", file=sys.stderr, disable=None if progress else True,
               desc=f"loading into {library}")

    def started(total: int) -> None:
        bar.reset(total=total)

    def done(outcome: Any) -> None:
        bar.update(1)
        if outcome.status == "failed":
            bar.write(f"failed: {outcome.path}: {outcome.message}", file=sys.stderr)

    try:
        report = load_paths(rt, tid, list(paths), library, batch_size=batch_size,
                            tags=_tags(tags), folder_tag=folder_tag, on_file=done,
                            on_start=started)
    finally:
        bar.close()
    audit_cli(rt, tid, "sound_insert", "ok" if not report.failed else "some_failed",
              target_type="library", details={"library": library, "loaded": report.loaded,
                                              "failed": len(report.failed)})
    if report_file:
        with open(report_file, "w") as fh:
            for o in report.outcomes:
                fh.write(json.dumps(o.__dict__) + "\n")
    rate = report.total / report.elapsed_s if report.elapsed_s > 0 else 0.0
    fixed = {k: v for k, v in report.repaired.items() if v}
    if fixed:
        click.echo("removed leftovers of an interrupted load: "
                   + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in fixed.items()))
    click.echo(f"library {report.library!r}: loaded {report.loaded}, skipped {report.skipped} "
               f"(already in the library), failed {len(report.failed)}; {report.ignored} "
               f"non-audio files ignored; {report.total} audio files in {report.elapsed_s:.1f} s "
               f"({rate:.1f} files/s)")
    if report.failed:
        click.echo("failed files:")
        for o in report.failed:
            click.echo(f"  {o.path}: [{o.reason}] {o.message}")
        raise SystemExit(EXIT_SOME_FAILED)


@sounds.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@library_option
@click.option("--top-k", "-k", default=10, show_default=True, type=click.IntRange(1, TOP_K_MAX))
@tag_option
@click.option("--json", "as_json", is_flag=True, help="print the full result as JSON")
@tenant_option
def search(file: str, library: str, top_k: int, tags: tuple[str, ...], as_json: bool,
           tenant: str) -> None:
    """Sounds most like FILE: rank, id, score (cosine, -1..1), name, duration, tags."""
    from voiceprint.services.intake import Upload

    p = Path(file)
    result = _service(tenant).search(Upload(p.read_bytes(), p.name), library, top_k,
                                             _tags(tags))
    if as_json:
        click.echo(json.dumps(result.__dict__, indent=2, default=str))
        return
    click.echo(f"{'rank':>4}  {'id':>8}  {'score':>7}  {'name':<28} {'dur_s':>6}  tags")
    for rank, r in enumerate(result.results, start=1):
        click.echo(f"{rank:>4}  {r['id']:>8}  {r['score']:>7.4f}  {r['name'][:28]:<28} "
                   f"{r['duration_s']:>6.2f}  {_fmt_tags(r['tags'])}")
    dup = result.query["duplicate_of"]
    click.echo(f"({len(result.results)} results from library {result.library!r}; score = cosine "
               f"similarity in [-1, 1]{'; the file itself is sound %d' % dup if dup else ''})")


@sounds.command()
@library_option
@tenant_option
def count(library: str, tenant: str) -> None:
    """Sounds in a library (database rows and Milvus vectors)."""
    c = _service(tenant).count(library)
    click.echo(f"{c['library']}: {c['sounds']} sounds, {c['vectors']} vectors")


@sounds.command()
@tenant_option
def libraries(tenant: str) -> None:
    """List sound libraries."""
    libs = _service(tenant).catalog.libraries()
    click.echo(f"{'id':>4}  {'name':<24} {'sounds':>8}  encoder")
    for lib in libs:
        click.echo(f"{lib['id']:>4}  {lib['name']:<24} {lib['sounds']:>8}  {lib['encoder']}")


@sounds.command()
@click.argument("sound_id", type=int)
@tenant_option
def delete(sound_id: int, tenant: str) -> None:
    """Delete one sound (row, vector and audio file)."""
    svc = _service(tenant)
    svc.delete(sound_id)
    audit_cli(svc.rt, svc.tenant_id, "sound_delete", "ok", target_type="sound", target_id=sound_id)
    click.echo(f"deleted sound {sound_id}")


@sounds.command()
@click.argument("library")
@click.option("--confirm", default=None, metavar="LIBRARY",
              help="repeat the library's name (else you are asked)")
@tenant_option
def drop(library: str, confirm: str | None, tenant: str) -> None:
    """Delete a whole LIBRARY: every sound, its vectors and audio."""
    if confirm is None:
        confirm = click.prompt(f"This deletes every sound in {library!r}. Type its name to confirm",
                               default="", show_default=False)
    svc = _service(tenant)
    res = svc.catalog.drop(library, confirm)
    audit_cli(svc.rt, svc.tenant_id, "library_drop", "ok", target_type="library",
              details={"library": library, "sounds": res["sounds"]})
    click.echo(f"dropped library {res['library']!r} ({res['sounds']} sounds)")


@sounds.command()
@click.option("--library", "-l", default=None, help="only this library")
@tenant_option
def loads(library: str | None, tenant: str) -> None:
    """Progress of recent bulk loads (also at GET /sounds/loads)."""
    for d in _service(tenant).catalog.loads(library):
        click.echo(f"#{d['id']} {d['library']} {d['status']}: {d['processed']}/{d['total']} "
                   f"({d['percent']}%) loaded {d['loaded']} skipped {d['skipped']} failed "
                   f"{d['failed']}")
