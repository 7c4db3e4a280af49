"""``voiceprint list|enroll|identify|verify|calibrate``: speakers from the shell."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import click

from voiceprint.cli.base import (EXIT_REJECTED, audit_cli, cli_runtime, echo_json, main,
                            tenant_of, tenant_option)


def _uploads(paths: tuple[str, ...]) -> Iterator[Any]:
    from voiceprint.services.intake import Upload
    for p in paths:
        yield Upload(Path(p).read_bytes(), Path(p).name)


@main.command("list")
@tenant_option
@click.option("--page", default=1, show_default=True)
@click.option("--page-size", default=50, show_default=True)
def list_speakers(tenant: str, page: int, page_size: int) -> None:
    """List speakers with their enrollment status."""
    from voiceprint.services.speakers import SpeakerService
    rt = cli_runtime()
    result = SpeakerService(rt, tenant_of(rt, tenant)).list(page, page_size)
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
@click.option("--replace", is_flag=True, help="start the voiceprint anew from FILES")
@tenant_option
def enroll(external_id: str, files: tuple[str, ...], name: str | None, replace: bool,
           tenant: str) -> None:
    """Enroll FILES for EXTERNAL_ID (the speaker is created if new)."""
    from voiceprint.errors import NotFound
    from voiceprint.services.enrollment import EnrollmentService
    from voiceprint.services.speakers import SpeakerService
    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    speakers = SpeakerService(rt, tid)
    try:
        sid = speakers.find(external_id)["id"]
    except NotFound:
        sid = speakers.create(external_id, name)["id"]
    result = EnrollmentService(rt, tid).enroll(sid, list(_uploads(files)), replace=replace)
    audit_cli(rt, tid, "enroll", "ok" if result.accepted else "rejected", target_type="speaker",
              target_id=sid, details={"accepted": len(result.accepted), "replace": replace})
    for c in result.clips:
        verdict = "accepted" if c.accepted else "rejected: " + "; ".join(r["message"] for r in c.reasons)
        click.echo(f"{c.filename}: {verdict}")
    echo_json(result.enrollment)
    if not result.accepted:
        raise SystemExit(1)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--top-k", default=5, show_default=True)
@tenant_option
def identify(file: str, top_k: int, tenant: str) -> None:
    """Who speaks in FILE? Prints the ranked candidates and the decision."""
    from voiceprint.api.schemas import IdentificationSchema
    from voiceprint.services.recognition import RecognitionService
    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    result = RecognitionService(rt, tid).identify(next(_uploads((file,))), top_k)
    audit_cli(rt, tid, "identify", result.decision, target_type="speaker",
              target_id=result.speaker.speaker_id if result.speaker else None)
    echo_json(IdentificationSchema().dump(result))


@main.command()
@click.argument("external_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@tenant_option
def verify(external_id: str, file: str, tenant: str) -> None:
    """Is FILE spoken by EXTERNAL_ID? Exit status 0 accepted, 3 rejected (1 on errors)."""
    from voiceprint.api.schemas import VerificationSchema
    from voiceprint.services.recognition import RecognitionService
    from voiceprint.services.speakers import SpeakerService
    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    sid = SpeakerService(rt, tid).find(external_id)["id"]
    result = RecognitionService(rt, tid).verify(sid, next(_uploads((file,))))
    audit_cli(rt, tid, "verify", "accepted" if result.accepted else "rejected",
              target_type="speaker", target_id=sid, score=result.score)
    echo_json(VerificationSchema().dump(result))
    raise SystemExit(0 if result.accepted else EXIT_REJECTED)
