"""Markdown tables for ``python -m eval.calibration`` results."""
from __future__ import annotations

from typing import Any


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _ci(ci: list[float], digits: int = 2) -> str:
    return f"[{_pct(ci[0], digits)}, {_pct(ci[1], digits)}]"


def encoder_section(r: dict[str, Any]) -> list[str]:
    c, norm = r["calibration"], r["normalization"]
    lines = [f"## {r['encoder']} ({r['enroll_clips']} enrollment clips)", "",
             f"Calibration half: {c['n_speakers']} speakers, {c['n_probes']} probes "
             f"(trusted: {c['trusted']}); held-out half: {len(r['test_speakers'])} speakers.",
             f"Normalisation activated by calibration: **{norm['active']}** ({norm['reason']}); "
             f"on the held-out half minDCF {norm['held_out_check']['active_min_dcf']:.4f} vs "
             f"{norm['held_out_check']['other_min_dcf']:.4f} for the other "
             f"({'held' if norm['held_out_check']['active_is_better_or_equal'] else 'did not hold'}).",
             "", "| scores | EER held-out | minDCF 0.01 held-out | EER calibration | trials genuine / impostor (held-out) |",
             "|---|---|---|---|---|"]
    for n in ("none", "asnorm"):
        t = r["test"][n]
        lines.append(f"| {n} | {_pct(t['eer'])} | {t['min_dcf']:.4f} | {_pct(t['calibration_eer'])} | "
                     f"{t['n_genuine']} / {t['n_impostor']} |")
    lines += ["", "| scores | point | threshold | FAR calibrated [95% CI] (impostor trials) | resolvable | "
              "FAR held-out [95% CI] | FRR held-out | inside CI |", "|---|---|---|---|---|---|---|---|"]
    for n in ("none", "asnorm"):
        for name, p in r["test"][n]["points"].items():
            lines.append(
                f"| {n} | {name} | {p['threshold']:.4f} | {_pct(p['calibrated_far'], 3)} "
                f"{_ci(p['calibrated_far_ci_95'], 3)} ({p['calibrated_trials']}) | {p['resolvable']} | "
                f"{_pct(p['observed_far'], 3)} {_ci(p['observed_far_ci_95'], 3)} | "
                f"{_pct(p['observed_frr'])} | {p['far_within_calibrated_ci']} |")
    o = r["open_set"]
    g = o["synthetic_gallery"]
    lines += ["", f"Open set ({o['normalization']} scores, {o['held_out_speakers']} held-out speakers, "
              f"half enrolled / half unknown callers, roles swapped). Galleries up to "
              f"{o['real_gallery_max']} are real; larger ones synthetic: 'embedding' (smoothed bootstrap, "
              f"bandwidth {g['bandwidth']}; optimistic) and 'score' (independent draws from held-out "
              f"impostor scores; pessimistic). Calibration speakers, upper quantiles {g['quantiles']} of "
              f"impostor scores: real {[round(x, 3) for x in g['real']['tail']]}, synthetic "
              f"{[round(x, 3) for x in g['synthetic'][str(g['bandwidth'])]['tail']]}; nearest-model "
              f"cosine (quantiles {g['nearest_quantiles']}): new real speaker "
              f"{[round(x, 3) for x in g['real']['nearest']]}, synthetic "
              f"{[round(x, 3) for x in g['synthetic'][str(g['bandwidth'])]['nearest']]}.",
              "", "| N enrolled | gallery | target | model | threshold | per-comparison FAR | predicted | "
              "observed [95% CI, clustered by caller] |", "|---|---|---|---|---|---|---|---|"]
    for row in o["rows"]:
        obs = f"{_pct(row['observed_rate'])} {_ci(row['observed_ci_95'])}"
        if row["target_rate"] is None:
            lines.append(f"| {row['n_enrolled']} | {row['gallery']} | - | {row['model']} | "
                         f"{row['threshold']:.4f} | - | - | {obs} |")
        else:
            lines.append(
                f"| {row['n_enrolled']} | {row['gallery']} | {_pct(row['target_rate'], 0)} | {row['model']} | "
                f"{row['threshold']:.4f} | {row['per_comparison_far']:.2e}"
                f"{'' if row['resolvable'] else ' (extrapolated)'} | {_pct(row['predicted_rate'])} | {obs} |")
    if "default" in r:
        d = r["default"]
        p = d["point"]
        lines += ["", f"Uncalibrated default (all {d['data']['speakers']} speakers, raw cosine): "
                  f"threshold {d['threshold']:.4f} at FAR {_pct(p['far'], 3)} {_ci(p['far_ci_95'], 3)} "
                  f"({p['trials']['impostor']} impostor trials), FRR {_pct(p['frr'])}, EER {_pct(d['eer'])}."]
        for src, s in d["data"]["per_source"].items():
            q = s["far_0.1pct"]
            lines.append(f"- {src} only ({s['speakers']} speakers): EER {_pct(s['eer'])}, threshold at "
                         f"FAR 0.1% {q['threshold']:.4f} (FAR {_pct(q['far'], 3)} {_ci(q['far_ci_95'], 3)}, "
                         f"resolvable {q['resolvable']}, FRR {_pct(q['frr'])})")
    return lines + [""]


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["# Calibration transfer to held-out speakers", ""]
    for r in results:
        lines += encoder_section(r)
    return "\n".join(lines) + "\n"
