"""The ``voiceprint`` command line.

Commands work in-process on the configured stores (same environment
variables as the service). With the embedded Milvus Lite file only one
process may open it: stop ``voiceprint serve`` first, or use the HTTP API,
or a Milvus server.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import click

from voiceprint.cli_sounds import sounds
from voiceprint.config import Config
from voiceprint.errors import VoiceprintError


def _runtime() -> Any:
    from voiceprint.runtime import Runtime
    return Runtime.from_config(Config())


class _Group(click.Group):
    """Turns :class:`VoiceprintError` from any command into a clean one-line error (exit 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VoiceprintError as exc:
            raise click.ClickException(f"{exc.message} [{exc.reason}]") from exc


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


@click.group(cls=_Group)
@click.version_option(package_name="voiceprint")
def main() -> None:
    """voiceprint: speaker enrollment, identification, verification and sound search."""


# -- service ------------------------------------------------------------------
@main.command()
@click.option("--bind", default=lambda: os.environ.get("VOICEPRINT_BIND", "0.0.0.0:8000"),
              show_default="0.0.0.0:8000")
@click.option("--workers", type=int, default=None,
              help="gunicorn worker processes (forced to 1 on Milvus Lite)")
@click.option("--threads", type=int, default=4, show_default=True)
@click.option("--timeout", type=int, default=120, show_default=True)
def serve(bind: str, workers: int | None, threads: int, timeout: int) -> None:
    """Apply migrations, then exec gunicorn with a configuration safe for the stores."""
    from voiceprint.stores import migrate
    from voiceprint.stores.vectors import is_local_uri

    cfg = Config()
    migrate.upgrade(cfg.DATABASE_URL)
    if is_local_uri(cfg.MILVUS_URI):
        if workers and workers > 1:
            click.echo("Milvus Lite allows one process: using 1 worker with "
                       f"{threads} threads (set VOICEPRINT_MILVUS_URI to a server for more)", err=True)
        workers = 1
    workers = workers or 2
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    args = [gunicorn, "--bind", bind, "--workers", str(workers), "--threads", str(threads),
            "--timeout", str(timeout), "--access-logfile", "-", "voiceprint.wsgi:app"]
    click.echo(" ".join(args), err=True)
    os.execv(gunicorn, args)


@main.group()
def db() -> None:
    """Database migrations and consistency checks."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (SQLite, MySQL/MariaDB, PostgreSQL)."""
    from voiceprint.stores import migrate
    url = Config().DATABASE_URL
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current_revision(url)}")


@db.command("current")
def db_current() -> None:
    from voiceprint.stores import migrate
    click.echo(f"{migrate.current_revision(Config().DATABASE_URL)} (head {migrate.head_revision()})")


@db.command("check")
@click.option("--repair", is_flag=True, help="re-insert missing vectors, delete orphans")
def db_check(repair: bool) -> None:
    """Compare Milvus with the database (the source of truth)."""
    from voiceprint.services.consistency import check_speakers
    rt = _runtime()
    from voiceprint.services.sounds import check_sounds
    reports = check_speakers(rt, repair=repair) + check_sounds(rt, repair=repair)
    _echo_json([r.to_dict() for r in reports])
    if not repair and not all(r.ok for r in reports):
        raise SystemExit(1)


# -- speakers -----------------------------------------------------------------
def _speaker_id(rt: Any, ref: str) -> int:
    from voiceprint.services.speakers import SpeakerService
    return int(SpeakerService(rt).find(ref)["id"])


def _uploads(paths: tuple[str, ...]) -> Iterator[Any]:
    from voiceprint.services.intake import Upload
    for p in paths:
        yield Upload(Path(p).read_bytes(), Path(p).name)


@main.command("list")
@click.option("--page", default=1, show_default=True)
@click.option("--page-size", default=50, show_default=True)
def list_speakers(page: int, page_size: int) -> None:
    """List speakers with their enrollment status."""
    from voiceprint.services.speakers import SpeakerService
    result = SpeakerService(_runtime()).list(page, page_size)
    click.echo(f"{'id':>6}  {'external_id':<24} {'status':<10} {'speech_s':>8}  name")
    for s in result.items:
        e = s["enrollment"]
        click.echo(f"{s['id']:>6}  {s['external_id']:<24} {e['status']:<10} "
                   f"{e['speech_seconds']:>8.1f}  {s['name'] or ''}")
    click.echo(f"({result.total} speakers)")


@main.command()
@click.argument("external_id")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="display name when the speaker is created")
def enroll(external_id: str, files: tuple[str, ...], name: str | None) -> None:
    """Enroll FILES for EXTERNAL_ID (the speaker is created if new)."""
    from voiceprint.errors import NotFound
    from voiceprint.services.enrollment import EnrollmentService
    from voiceprint.services.speakers import SpeakerService
    rt = _runtime()
    try:
        sid = _speaker_id(rt, external_id)
    except NotFound:
        sid = SpeakerService(rt).create(external_id, name)["id"]
    result = EnrollmentService(rt).enroll(sid, list(_uploads(files)))
    for c in result.clips:
        verdict = "accepted" if c.accepted else "rejected: " + "; ".join(r["message"] for r in c.reasons)
        click.echo(f"{c.filename}: {verdict}")
    _echo_json(result.enrollment)
    if not result.accepted:
        raise SystemExit(1)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--top-k", default=5, show_default=True)
def identify(file: str, top_k: int) -> None:
    """Who speaks in FILE? Prints the ranked candidates and the decision."""
    from voiceprint.api.schemas import IdentificationSchema
    from voiceprint.services.recognition import RecognitionService
    result = RecognitionService(_runtime()).identify(next(_uploads((file,))), top_k)
    _echo_json(IdentificationSchema().dump(result))


@main.command()
@click.argument("external_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def verify(external_id: str, file: str) -> None:
    """Is FILE spoken by EXTERNAL_ID? Exit status 0 accept, 2 reject."""
    from voiceprint.api.schemas import VerificationSchema
    from voiceprint.services.recognition import RecognitionService
    rt = _runtime()
    result = RecognitionService(rt).verify(_speaker_id(rt, external_id), next(_uploads((file,))))
    _echo_json(VerificationSchema().dump(result))
    raise SystemExit(0 if result.accepted else 2)


@main.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="labelled folder: <speaker>/<clips> or FSDD-style {digit}_{speaker}_{index}.wav")
@click.option("--enroll-clips", default=3, show_default=True,
              help="clips per speaker that form its model; the rest are probes")
@click.option("--far", "fars", multiple=True, type=float, default=(0.01, 0.001), show_default=True,
              help="target false-accept rates (repeatable); 1%, 0.1% and 0.01% are always measured")
def calibrate(data_dir: str, enroll_clips: int, fars: tuple[float, ...]) -> None:
    """Measure operating points for the active speaker encoder and store them.

    Use speakers that are not enrolled in the service. Migrates the database
    first. Prints, per normalisation, every point's threshold, FAR and FRR
    with trial counts and 95% upper bounds, which normalisation decisions
    will use and why, whether the data can be trusted, and how many more
    speakers or clips each unresolved target FAR needs.
    """
    from tqdm import tqdm

    from voiceprint.services.calibration import run_calibration
    from voiceprint.stores import migrate

    migrate.upgrade(Config().DATABASE_URL)
    rt = _runtime()
    try:
        with tqdm(desc="embedding", unit="clip") as bar:
            result = run_calibration(rt, data_dir, enroll_clips, fars, progress=bar.update)
    finally:
        rt.close()
    _print_calibration(result)


def _print_calibration(result: dict[str, Any]) -> None:
    click.echo(f"calibration {result['id']} for {result['encoder']}: {result['n_speakers']} speakers, "
               f"{result['n_probes']} probes, {len(result['failed_clips'])} unreadable clips")
    click.echo(f"{'scores':<7} {'point':<12} {'threshold':>9} {'FAR':>8} {'FAR<=(95%)':>10} "
               f"{'FRR':>7} {'FRR<=(95%)':>10}  {'false acc./impostor':>19}  note")
    for norm in ("none", "asnorm"):
        r = result[norm]
        for name, p in r["points"].items():
            t = p["trials"]
            note = "" if p["resolvable"] else "NOT RESOLVABLE (too few effective impostor trials)"
            if p.get("extrapolated"):
                note += ("; " if note else "") + "FAR estimated from the impostor tail"
            click.echo(f"{norm:<7} {name:<12} {p['threshold']:>9.4f} {p['expected_far']:>8.3%} "
                       f"{p['far_ci_95'][1]:>10.3%} {p['frr']:>7.2%} {p['frr_ci_95'][1]:>10.2%}  "
                       f"{t['false_accepts']:>8}/{t['impostor']:<10}  {note}")
        few = "" if result["trusted"] else " - too few trials to mean much"
        click.echo(f"{norm:<7} EER {r['eer']:.3%}  minDCF(0.01) {r['min_dcf']:.4f}  "
                   f"({r['n_genuine']} genuine / {r['n_impostor']} impostor trials{few})")
    choice = result["normalization"]
    click.echo(f"normalisation in use (VOICEPRINT_SCORE_NORMALIZATION=auto): {choice['active']} - "
               f"{choice['reason']}")
    for f in choice["folds"]:
        click.echo(f"  fold of {f['speakers']} speakers: minDCF cosine {f['none']['min_dcf']:.4f} / "
                   f"AS-norm {f['asnorm']['min_dcf']:.4f}; actual DCF {f['none']['actual_dcf']:.4f} / "
                   f"{f['asnorm']['actual_dcf']:.4f}; AS-norm {'wins' if f['asnorm_wins'] else 'loses'}")
    click.echo(f"  rule: {choice['rule']}")
    for u in result["unresolved"]:
        click.echo(f"more data: {u['advice']}")
    if result["trusted"]:
        click.echo("trust: enough speakers and trials for the 1% point (rule: >= 10 speakers, "
                   ">= 30 genuine and >= 300 effective impostor trials)")
    else:
        for w in result["warnings"]:
            click.echo(f"WARNING: {w}", err=True)
        click.echo("WARNING: too few data to trust this calibration (rule: >= 10 speakers, >= 30 "
                   "genuine and >= 300 effective impostor trials). It is stored and used; its "
                   "decisions report resolvable=false and their upper bounds. Calibrate on more "
                   "speakers.", err=True)


main.add_command(sounds)

if __name__ == "__main__":  # pragma: no cover
    main()
