"""``voiceprint calibrate``: measure operating points for the active speaker encoder."""
from __future__ import annotations

from typing import Any

import click

from voiceprint.cli.base import audit_cli, cli_runtime, main, tenant_of, tenant_option
from voiceprint.config import Config


@main.command()
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="labelled folder: <speaker>/<clips> or FSDD-style {digit}_{speaker}_{index}.wav")
@click.option("--enroll-clips", default=3, show_default=True,
              help="clips per speaker that form its model; the rest are probes")
@click.option("--far", "fars", multiple=True, type=float, default=(0.01, 0.001), show_default=True,
              help="target false-accept rates (repeatable); 1%, 0.1% and 0.01% are always measured")
@tenant_option
def calibrate(data_dir: str, enroll_clips: int, fars: tuple[float, ...], tenant: str) -> None:
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

    migrate.upgrade(Config().DATABASE_URL)  # a fresh data dir has no tables yet
    rt = cli_runtime()
    tid = tenant_of(rt, tenant)
    with tqdm(desc="embedding", unit="clip") as bar:
        result = run_calibration(rt, data_dir, enroll_clips, fars, progress=bar.update,
                                 tenant_id=tid)
    audit_cli(rt, tid, "calibrate", "trusted" if result["trusted"] else "untrusted",
              details={"calibration": result["id"]})
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
