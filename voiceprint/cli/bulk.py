"""``voiceprint bulk enroll``: enroll a corpus, embedding on a pool of workers (local or Ray).

The engine options are shared with ``voiceprint sounds load``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from voiceprint.cli.base import cli_runtime, main, tenant_of, tenant_option

EXIT_SOME_FAILED = 1
#: problem files listed on the terminal (all of them go to --report)
SHOWN_PROBLEMS = 25


def engine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine``, ``--address``, ``--workers``, ``--cpus-per-worker``."""
    for option in reversed((
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, help="where clips are embedded: in this process, or on "
                     "Ray workers (writes always happen here, through the services)"),
        click.option("--address", default="auto", show_default=True,
                     help="with --engine ray: a Ray cluster (host:6379 or ray://head:10001), or "
                     "'auto' for a local Ray instance started for this run"),
        click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 4096),
                     help="with --engine ray: worker actors, each loading the encoder once"),
        click.option("--cpus-per-worker", default=1.0, show_default=True,
                     type=click.FloatRange(0.1, 256),
                     help="with --engine ray: CPUs each worker reserves (its model threads)"),
    )):
        func = option(func)
    return func


def build_engine(rt: Any, encoder: str, kind: str, engine: str, address: str, workers: int,
                 cpus_per_worker: float) -> Any:
    from voiceprint.bulk.engines import make_engine
    from voiceprint.bulk.worker import EncoderSpec
    # remote workers read the same settings as this process (some encoders read variables)
    env = {k: v for k, v in os.environ.items() if k.startswith("VOICEPRINT_") or
           k in ("PPSPEECH_HOME", "XDG_CACHE_HOME")}
    return make_engine(engine, EncoderSpec.from_config(rt.config, encoder), rt.config, kind,
                       address=address, workers=workers, cpus_per_worker=cpus_per_worker,
                       worker_env=env if address != "auto" else None)


def write_report(path: str | None, rows: list[Any]) -> None:
    if path:
        with open(path, "w") as fh:
            for row in rows:
                fh.write(json.dumps(row.__dict__, default=str) + "\n")


@main.group()
def bulk() -> None:
    """Bulk ingestion: embed on a pool of workers (local or a Ray cluster), write here."""


@bulk.command("enroll")
@click.argument("source", type=click.Path(exists=True))
@engine_options
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1, 256),
              help="clips per worker call")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="progress bar on stderr (only on a terminal)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, writable=True),
              default=None, help="write every file's outcome as JSON lines")
@click.option("--repair", is_flag=True,
              help="first remove leftovers of a killed run (vectors and files without rows), "
                   "as `voiceprint db check --repair` does; only while nothing else writes")
@tenant_option
def enroll(source: str, engine: str, address: str, workers: int, cpus_per_worker: float,
           batch_size: int, progress: bool, report_file: str | None, repair: bool,
           tenant: str) -> None:
    """Enroll SOURCE: a folder tree SOURCE/<speaker external id>/<clips>, or a manifest CSV
    with columns speaker,file[,name][,metadata].

    Speakers are created when new; each speaker's clips go to the enrollment
    service in calls of at most VOICEPRINT_MAX_CLIPS_PER_REQUEST, so a new
    speaker's first call enrolls them and later clips must match
    (voice_mismatch). Running the same command again resumes: clips already
    enrolled are skipped without being embedded (after a kill -9, --repair
    also removes what the killed write left). Exit status: 0 when every
    clip was enrolled or skipped, 1 when some were rejected or failed.
    """
    from tqdm import tqdm

    from voiceprint.bulk.enroll import BulkEnroller
    from voiceprint.bulk.plan import plan_from_folder, plan_from_manifest

    plan = plan_from_folder(source) if Path(source).is_dir() else plan_from_manifest(source)
    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    workers_engine = build_engine(rt, rt.config.SPEAKER_ENCODER, "speaker", engine, address,
                                  workers, cpus_per_worker)
    bar = tqdm(total=plan.total, unit="clip", file=sys.stderr, disable=None if progress else True,
               desc=f"enrolling {len(plan.speakers)} speakers")

    def done(f: Any) -> None:
        bar.update(1)
        if f.status in ("rejected", "failed"):
            bar.write(f"{f.status}: {f.path}: [{f.reason}] {f.message}", file=sys.stderr)

    try:
        report = BulkEnroller(rt, tid, workers_engine, batch_size=batch_size, repair=repair,
                              on_file=done).run(plan)
    finally:
        bar.close()
        workers_engine.close()
    write_report(report_file, report.files)
    fixed = {k: v for k, v in report.repaired.items() if v}
    if fixed:
        click.echo("removed leftovers of an interrupted run: "
                   + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in fixed.items()))
    enrolled = sum(1 for s in report.speakers.values() if s.get("status") == "enrolled")
    rate = report.pipeline.sent / report.elapsed_s if report.elapsed_s > 0 else 0.0
    where = report.engine.get("engine", engine)
    if where == "ray":
        where += f" ({report.engine['workers']} workers, {report.engine['worker_deaths']} died)"
    click.echo(f"{report.total} clips of {len(plan.speakers)} speakers: enrolled "
               f"{report.count('enrolled')}, skipped {report.count('skipped')} (already "
               f"enrolled), rejected {report.count('rejected')}, failed {report.count('failed')}; "
               f"{report.ignored} other files ignored")
    click.echo(f"{enrolled} of {len(report.speakers)} speakers enrolled; "
               f"{report.pipeline.sent} clips embedded on {where} in {report.elapsed_s:.1f} s "
               f"({rate:.1f} clips/s)")
    if report.problems:
        click.echo("rejected or failed:")
        for f in report.problems[:SHOWN_PROBLEMS]:
            click.echo(f"  {f.path}: {f.status} [{f.reason}] {f.message}")
        if len(report.problems) > SHOWN_PROBLEMS:
            click.echo(f"  ... {len(report.problems) - SHOWN_PROBLEMS} more"
                       + (f" in {report_file}" if report_file else " (use --report FILE)"))
        raise SystemExit(EXIT_SOME_FAILED)
