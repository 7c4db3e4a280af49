"""Building blocks of `python -m eval.calibration` (the full run is by hand; figures in README "Decisions")."""
from __future__ import annotations

import numpy as np
import pytest

from eval.calibration import observed, split_speakers
from eval.open_set import _max_of_draws, evaluate_open_set, smoothed_bootstrap
from tests.test_calibration_math import clusters
from voiceprint.services.calibration import calibrate_embeddings


def test_split_alternates_within_each_source():
    cal, test = split_speakers(["fsdd-a", "fsdd-b", "fsdd-c", "synth-x", "synth-y"])
    assert cal == ["fsdd-a", "fsdd-c", "synth-x"] and test == ["fsdd-b", "synth-y"]


def test_smoothed_bootstrap_gives_unit_models_near_the_pool():
    rng = np.random.default_rng(0)
    pool = np.stack(list(clusters(12, 1, seed=3).values()))[:, 0]
    synth = smoothed_bootstrap(pool, 500, 0.25, rng)
    assert synth.shape == (500, pool.shape[1]) and np.allclose(np.linalg.norm(synth, axis=1), 1, atol=1e-5)
    nearest = (synth @ pool.T).max(axis=1)
    assert np.median(nearest) > 0.9  # a small bandwidth stays close to real voices


def test_max_of_draws_has_the_max_distribution():
    rng = np.random.default_rng(1)
    pool = np.sort(rng.random(100_000))
    m = _max_of_draws(pool, 10, 20_000, rng)
    assert np.mean(m <= 0.5) == pytest.approx(0.5 ** 10, abs=0.002)


def test_open_set_rows_and_observed_points():
    embs = clusters(24, 8, seed=6)
    cal_names, test_names = split_speakers([f"synth-{n}" for n in embs])
    embs = {f"synth-{n}": v for n, v in embs.items()}
    cal = {n: embs[n] for n in cal_names}
    test = {n: embs[n] for n in test_names}
    calibration = calibrate_embeddings(cal, 3)
    cohort = np.concatenate(list(cal.values()))
    out = evaluate_open_set(calibration, cal, test, 3, "none", cohort, ns=(4, 50), targets=(0.05,))
    kinds = {(r["n_enrolled"], r["gallery"]) for r in out["rows"]}
    assert kinds == {(4, "real"), (50, "embedding"), (50, "score")}
    for r in out["rows"]:
        lo, hi = r["observed_ci_95"]
        assert lo <= r["observed_rate"] <= hi and r["unknown_trials"] > 0
    fixed = [r for r in out["rows"] if r["model"] == "fixed far_1pct"]
    assert all(r["threshold"] == calibration["none"]["points"]["far_1pct"]["threshold"] for r in fixed)
    from voiceprint.scoring.calibration import score_trials, split_models_probes
    _, m, p, o = split_models_probes(test, 3)
    s, lab = score_trials(m, p, o).flat()
    obs = observed(calibration["none"]["points"], s, lab)
    assert set(obs) == set(calibration["none"]["points"])
    assert all(v["observed_far_ci_95"][0] <= v["observed_far"] <= v["observed_far_ci_95"][1]
               for v in obs.values())
