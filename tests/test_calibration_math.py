"""Calibration and AS-norm as pure functions, on embeddings with a known structure."""
from __future__ import annotations

import numpy as np
import pytest

from voiceprint.scoring.normalization import as_norm, top_n_stats
from voiceprint.services.calibration import (calibrate_embeddings, far_point_name, score_trials,
                                             split_models_probes)


def clusters(n_speakers: int, clips: int, dim: int = 32, spread: float = 0.6, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(n_speakers):
        centre = rng.standard_normal(dim)
        x = centre / np.linalg.norm(centre) + spread * rng.standard_normal((clips, dim)) / np.sqrt(dim)
        out[f"s{s:02d}"] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def test_point_names():
    assert far_point_name(0.01) == "far_1pct" and far_point_name(0.001) == "far_0.1pct"


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
    assert r["n_speakers"] == 30 and r["none"]["n_genuine"] == 30 * 9


def test_thresholds_sit_between_observed_scores():
    from voiceprint.services.calibration import between_scores, operating_points
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    pts = operating_points(scores, labels, fars=(0.01,))["points"]
    # perfectly separated: every point lies half-way between the best impostor and worst genuine
    assert all(p["threshold"] == pytest.approx(0.5) for p in pts.values())
    assert all(p["far"] == 0 and p["frr"] == 0 for p in pts.values())
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
