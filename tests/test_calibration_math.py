"""Calibration, AS-norm and trust as pure functions, on embeddings with a known structure."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from voiceprint.scoring.calibration import (between_scores, calibrate_scores, point_from_results,
                                            score_trials, split_models_probes)
from voiceprint.scoring.intervals import (clopper_pearson, impostor_trials, min_trials,
                                          probes_needed, speakers_needed)
from voiceprint.scoring.normalization import as_norm, top_n_stats
from voiceprint.scoring.points import far_point_name, parse_far_name, validate_point_name
from voiceprint.scoring.samples import ScoreSample
from voiceprint.services.calibration import calibrate_embeddings


def clusters(n_speakers: int, clips: int, dim: int = 32, spread: float = 0.6, seed: int = 0):
    """Speakers as noisy clusters around random unit centres (L2-normalised rows)."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(n_speakers):
        centre = rng.standard_normal(dim)
        x = centre / np.linalg.norm(centre) + spread * rng.standard_normal((clips, dim)) / np.sqrt(dim)
        out[f"s{s:02d}"] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def test_point_names():
    assert far_point_name(0.01) == "far_1pct" and far_point_name(0.001) == "far_0.1pct"
    assert parse_far_name("far_0.1pct") == pytest.approx(0.001)
    assert parse_far_name("far_100pct") is None and parse_far_name("far_xpct") is None
    assert validate_point_name("far_1.0pct") == "far_1pct"
    for ok in ("default", "eer", "min_dcf", "far_5pct"):
        assert validate_point_name(ok) == ok
    from voiceprint.errors import VoiceprintError
    for bad in ("bogus", "far_0pct", "FAR_1PCT", "", "far_1pct "):
        with pytest.raises(VoiceprintError) as exc:
            validate_point_name(bad)
        assert exc.value.status == 422 and exc.value.reason == "unknown_operating_point"


def test_clopper_pearson_matches_the_binomial():
    lo, hi = clopper_pearson(0, 84)
    assert lo == 0.0 and hi == pytest.approx(0.0430, abs=5e-4)  # one-sided 2.5% => rule of ~3.7/n
    assert binom.cdf(0, 84, hi) == pytest.approx(0.025, rel=1e-6)
    lo, hi = clopper_pearson(7, 700)
    assert lo < 0.01 < hi
    assert binom.sf(6, 700, lo) == pytest.approx(0.025, rel=1e-6)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_trial_arithmetic():
    assert min_trials(0.01) == 300 and min_trials(0.001) == 3000
    assert impostor_trials(10, 5) == 450
    s = speakers_needed(0.001, 5)
    assert impostor_trials(s, 5) >= 3000 > impostor_trials(s - 1, 5)
    p = probes_needed(0.01, 4)
    assert 4 * 3 * p >= 300 > 4 * 3 * (p - 1)


def test_score_sample_counts_exactly_and_compressed():
    rng = np.random.default_rng(0)
    small = rng.normal(size=500)
    s = ScoreSample.of(small)
    for t in (-1.0, 0.0, 0.5, 2.0):
        assert s.count_at_or_above(t) == np.sum(small >= t)
    big = rng.normal(size=60_000)
    c = ScoreSample.from_json(ScoreSample.of(big).to_json())
    assert not c.exact and c.n == big.size
    for t in (-0.5, 0.0, 1.0):  # interpolated in the middle: within a grid step
        assert abs(c.count_at_or_above(t) - np.sum(big >= t)) < big.size / 400
    top = np.sort(big)[-20]
    assert c.count_at_or_above(top) == pytest.approx(np.sum(big >= top), abs=1)  # exact in the tail


def test_split_and_trial_labels():
    embs = clusters(4, 6)
    names, models, probes, owner = split_models_probes(embs, 2)
    assert names == sorted(embs) and models.shape == (4, 32) and probes.shape == (16, 32)
    assert np.allclose(np.linalg.norm(models, axis=1), 1)
    t = score_trials(models, probes, owner)
    assert t.labels.sum() == 16 and t.labels.shape == (16, 4)
    assert np.allclose(t.scores, probes @ models.T)


def test_thresholds_meet_their_far_on_the_data_they_came_from():
    embs = clusters(30, 12, seed=1)
    r = calibrate_embeddings(embs, enroll_clips=3, fars=(0.01, 0.001))
    for norm in ("none", "asnorm"):
        pts = r[norm]["points"]
        assert pts["far_1pct"]["far"] <= 0.01 and pts["far_0.1pct"]["far"] <= 0.001
        assert pts["far_0.1pct"]["threshold"] >= pts["far_1pct"]["threshold"]
        assert pts["far_1pct"]["frr"] >= pts["eer"]["frr"] - 1e-9
        assert 0 <= r[norm]["eer"] < 0.2
        for p in pts.values():  # every point states its counts and its interval holds the estimate
            t = p["trials"]
            assert t["impostor"] == 30 * 29 * 9 and t["genuine"] == 30 * 9
            assert p["far"] == pytest.approx(t["false_accepts"] / t["impostor"])
            assert p["far_ci_95"][0] <= p["far"] <= p["far_ci_95"][1]
    assert r["n_speakers"] == 30 and r["none"]["n_genuine"] == 30 * 9
    far1 = r["none"]["points"]["far_1pct"]
    assert far1["resolvable"] == bool(far1["trials"]["impostor_effective"] >= 300)
    assert far1["trials"]["impostor_effective"] <= far1["trials"]["impostor"]
    assert r["none"]["points"]["far_0.01pct"]["resolvable"] is False  # 7830 < 30000


def test_a_small_calibration_is_never_presented_as_exact():
    """The outside tester's case: 4 voices, FAR 0.000% stored and served as expected_far 0.0."""
    r = calibrate_embeddings(clusters(4, 5, seed=3, spread=0.3), enroll_clips=2)
    assert r["trusted"] is False and any("4 speakers" in w for w in r["warnings"])
    assert {u["far"] for u in r["unresolved"]} == {0.01, 0.001, 0.0001}
    for norm in ("none", "asnorm"):
        for name, p in r[norm]["points"].items():
            assert p["expected_far"] > 0, name
            assert p["far_ci_95"][1] >= clopper_pearson(0, 36)[1] - 1e-12
            if p["target_far"] is not None:
                assert p["resolvable"] is False, name
    advice = r["unresolved"][0]
    assert advice["impostor_trials"] == 4 * 3 * 3
    d = advice["design_effect"]
    assert impostor_trials(advice["speakers_needed"], 3) / d >= 300
    assert impostor_trials(advice["speakers_needed"] - 1, 3) / d < 300
    assert "more clips of the same speakers barely help" in advice["advice"]


def test_unresolvable_thresholds_are_not_below_the_measured_ones():
    embs = clusters(6, 6, seed=4)
    names, models, probes, owner = split_models_probes(embs, 2)
    trials = score_trials(models, probes, owner)
    r = calibrate_scores(trials, fars=(0.01, 0.001))
    imp = trials.scores[trials.labels == 0]
    for name in ("far_1pct", "far_0.1pct"):
        p = r["points"][name]
        assert p["threshold"] > imp.max() and p["far"] == 0 and not p["resolvable"]


def test_points_not_stored_are_derived_from_the_samples():
    r = calibrate_embeddings(clusters(25, 10, seed=5), enroll_clips=3)
    none = r["none"]
    derived = point_from_results(none, "far_2pct")
    assert derived is not None and derived["target_far"] == pytest.approx(0.02)
    assert derived["far"] <= 0.02 and derived["resolvable"]
    # a derived point at a stored FAR agrees with the stored one
    again = point_from_results({**none, "points": {}}, "far_1pct")
    assert again["trials"] == none["points"]["far_1pct"]["trials"]
    assert point_from_results(none, "eer") == none["points"]["eer"]


def test_thresholds_sit_between_observed_scores():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert between_scores(scores, 0.7) == pytest.approx(0.5)
    assert between_scores(scores, 0.1) == 0.1


def test_too_few_speakers_is_an_error():
    from voiceprint.errors import VoiceprintError
    with pytest.raises(VoiceprintError, match="at least 2 speakers"):
        calibrate_embeddings(clusters(1, 5), enroll_clips=3)


def test_as_norm_by_hand():
    cohort = np.eye(4, dtype=np.float32)
    e = np.array([[1, 0, 0, 0]], np.float32)
    mean, std = top_n_stats(e, cohort, top_n=2)  # top-2 of [1, 0, 0, 0] -> 1, 0
    assert mean[0] == pytest.approx(0.5) and std[0] == pytest.approx(0.5)
    assert as_norm(np.array(0.9), 0.5, 0.5, 0.1, 0.4) == pytest.approx(0.5 * (0.8 + 2.0))


def test_as_norm_excludes_own_speaker_from_cohort():
    cohort = np.eye(3, dtype=np.float32)
    excl = np.array([[True, False, False]])
    mean, _ = top_n_stats(np.array([[1, 0, 0]], np.float32), cohort, top_n=1, exclude=excl)
    assert mean[0] == pytest.approx(0.0)


def test_calibration_as_norm_leaves_both_trial_speakers_out_of_the_cohort():
    """In service neither the caller nor the enrolled speaker is in the cohort; in
    calibration both are, so each trial must drop both (checked against brute force)."""
    embs = clusters(6, 5, seed=1)
    names, models, probes, owner = split_models_probes(embs, 2)
    cohort = np.concatenate([embs[n] for n in names])
    cohort_owner = np.concatenate([[i] * len(embs[n]) for i, n in enumerate(names)])
    t = score_trials(models, probes, owner, cohort, cohort_owner, top_n=5)
    raw = probes @ models.T
    for p in (0, 7, 17):
        for b in range(len(models)):
            keep = (cohort_owner != owner[p]) & (cohort_owner != b)
            mm, ms = top_n_stats(models[b:b + 1], cohort[keep], 5)
            pm, ps = top_n_stats(probes[p:p + 1], cohort[keep], 5)
            assert t.scores[p, b] == pytest.approx(as_norm(raw[p, b], mm[0], ms[0], pm[0], ps[0]),
                                                   abs=1e-4)
