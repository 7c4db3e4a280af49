"""``voiceprint calibrate``: measure operating points for the active speaker encoder."""
from __future__ import annotations

import click

from voiceprint.cli import audit_cli, cli_runtime, main, tenant_of, tenant_option


@main.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="labelled folder: <speaker>/<clips> or FSDD-style {digit}_{speaker}_{index}.wav")
@click.option("--enroll-clips", default=3, show_default=True,
              help="clips per speaker that form its model; the rest are probes")
@click.option("--far", "fars", multiple=True, type=float, default=(0.01, 0.001), show_default=True,
              help="target false-accept rates (repeatable)")
@tenant_option
def calibrate(data_dir: str, enroll_clips: int, fars: tuple[float, ...], tenant: str) -> None:
    """Measure operating points for the active speaker encoder and store them.

    Use speakers that are not enrolled in the service. Prints EER, minDCF and
    the thresholds at each target FAR, for raw cosine and AS-norm scores.
    """
    from tqdm import tqdm

    from voiceprint.services.calibration import run_calibration
    from voiceprint.stores import migrate
    from voiceprint.config import Config
    migrate.upgrade(Config().DATABASE_URL)  # a fresh data dir has no tables yet
    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    with tqdm(desc="embedding", unit="clip") as bar:
        result = run_calibration(rt, data_dir, enroll_clips, fars, progress=bar.update,
                                 tenant_id=tid)
    audit_cli(rt, tid, "calibrate", "ok", details={"calibration": result["id"]})
    click.echo(f"calibration {result['id']} for {result['encoder']}: {result['n_speakers']} speakers, "
               f"{result['n_probes']} probes, {len(result['failed_clips'])} unreadable clips")
    click.echo(f"{'scores':<8} {'point':<12} {'threshold':>10} {'FAR':>8} {'FRR':>8}")
    for norm in ("none", "asnorm"):
        r = result[norm]
        for name, p in r["points"].items():
            click.echo(f"{norm:<8} {name:<12} {p['threshold']:>10.4f} {p['far']:>8.3%} {p['frr']:>8.3%}")
        click.echo(f"{norm:<8} EER {r['eer']:.3%}  minDCF(0.01) {r['min_dcf']:.4f}  "
                   f"({r['n_genuine']} genuine / {r['n_impostor']} impostor trials)")


