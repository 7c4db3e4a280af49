"""``voiceprint diarize FILE``: who spoke when in a recording, and who they are.

Runs in this process (no job row, nothing stored): decodes FILE block by
block to 16 kHz, diarizes it with the configured speaker encoder and names
each voice among the tenant's enrolled speakers exactly as ``GET
/recordings/{id}`` reports it. Audited as ``diarize`` with actor ``cli``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from voiceprint.cli.base import audit_cli, cli_runtime, echo_json, main, tenant_of, tenant_option


def _table(result: dict[str, Any]) -> None:
    click.echo(f"{'start':>9} {'end':>9}  {'label':<11} {'speaker':<24} overlap")
    for s in result["segments"]:
        click.echo(f"{s['start']:>9.2f} {s['end']:>9.2f}  {s['label']:<11} "
                   f"{s['speaker'] or '-':<24} {'yes' if s['overlap'] else ''}")
    click.echo("")
    for label, e in result["labels"].items():
        ident = e["identification"]
        who = ident["speaker"]["external_id"] if ident["speaker"] else ident["decision"]
        best = ident["candidates"][0]["score"] if ident["candidates"] else None
        line = (f"{label}: {e['speech_seconds']:.1f} s of speech, {who}"
                + (f" (score {best:.3f})" if best is not None else ""))
        if e["verification"] is not None:
            v = e["verification"]
            line += f"; claim {'accepted' if v['accepted'] else 'rejected'} ({v['score']:.3f})"
        click.echo(line)
    click.echo(f"(scores: {result['score_scale']}; threshold "
               f"{result['operating_point']['threshold']:.4f})")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--speakers", "num_speakers", type=click.IntRange(1, 64), default=None,
              help="how many people speak, if known (else estimated)")
@click.option("--claim", "claimed_external_id", default=None,
              help="external id of the speaker one voice should be; each voice is verified")
@click.option("--json", "as_json", is_flag=True, help="print the whole result as JSON")
@tenant_option
def diarize(file: str, num_speakers: int | None, claimed_external_id: str | None,
            as_json: bool, tenant: str) -> None:
    """Who spoke when in FILE, and which voices are enrolled speakers."""
    from voiceprint.audio.decode import AudioLimits
    from voiceprint.diarization.longaudio import decode_to_file
    from voiceprint.services.recordings.analysis import analyse
    from voiceprint.services.recordings.jobs import build_diarizer
    from voiceprint.services.recordings.settings import RecordingSettings
    from voiceprint.services.speakers import SpeakerService

    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    settings = RecordingSettings.from_config(rt.config)
    claimed = (int(SpeakerService(rt, tid).find(claimed_external_id)["id"])
               if claimed_external_id else None)
    limits = AudioLimits(max_bytes=2**62, max_seconds=settings.max_seconds,
                         max_channels=rt.config.MAX_CHANNELS)
    with tempfile.TemporaryDirectory(prefix="voiceprint-diarize-") as tmp:
        audio = decode_to_file(file, Path(tmp) / "audio.f32", limits)
        result = analyse(rt, tid, build_diarizer(rt, settings), audio.open(),
                         num_speakers=num_speakers, claimed_speaker_id=claimed,
                         top_k=settings.top_k)
    audit_cli(rt, tid, "diarize", "done", target_type="recording",
              details={"labels": result["num_speakers"], "file": Path(file).name[:128]})
    if as_json:
        echo_json(result)
    else:
        _table(result)
