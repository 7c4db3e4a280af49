"""Open-set identification thresholds sized to the gallery (pure functions)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.test_calibration_math import clusters
from voiceprint.scoring.open_set import open_set_point, open_set_rate, per_comparison_far
from voiceprint.scoring.samples import ScoreSample
from voiceprint.scoring.tail import ImpostorModel
from voiceprint.services.calibration import calibrate_embeddings


def test_per_comparison_far_inverts_the_independent_rate():
    assert per_comparison_far(0.01, 1) == pytest.approx(0.01)
    p = per_comparison_far(0.01, 100)
    assert p == pytest.approx(1 - 0.99 ** (1 / 100)) and p < 0.01 / 100 * 1.01
    assert open_set_rate(p, 100) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        per_comparison_far(0.0, 10)


@pytest.fixture(scope="module")
def calibration():
    return calibrate_embeddings(clusters(30, 10, seed=2), enroll_clips=3)


def test_open_set_threshold_grows_with_the_gallery(calibration):
    points = [open_set_point(calibration["none"], n, 0.01) for n in (1, 10, 100, 1000)]
    thresholds = [p.threshold for p in points]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == 4
    fars = [p.expected_far for p in points]
    assert fars == sorted(fars, reverse=True)
    for p, n in zip(points, (1, 10, 100, 1000)):
        assert p.name == "open_set" and p.calibrated
        assert p.open_set["n_enrolled"] == n and p.open_set["target_rate"] == 0.01
        assert p.open_set["predicted_rate"] == pytest.approx(0.01, rel=0.02)
        assert p.open_set["rate_upper_95"] >= p.open_set["predicted_rate"] * 0.5
        assert p.far_upper_95 >= p.expected_far > 0
    # 30 speakers x 29 x 7 probes = 6090 impostor trials cannot resolve 1e-5 per comparison
    assert points[0].resolvable and not points[-1].resolvable
    assert points[-1].open_set["extrapolated"]


def _caller_offsets(n_callers: int, n_models: int, rng: np.random.Generator) -> np.ndarray:
    """Impostor scores with a per-caller offset (some voices resemble many others)."""
    offset = rng.normal(0.0, 0.06, size=(n_callers, 1))
    return 0.55 + offset + rng.normal(0.0, 0.07, size=(n_callers, n_models))


def test_the_caller_model_predicts_new_unknown_callers():
    rng = np.random.default_rng(0)
    cal = _caller_offsets(600, 40, rng)
    model = ImpostorModel.fit(cal, np.zeros_like(cal, dtype=np.int8))
    n, target = 100, 0.05
    t_caller = model.open_set_threshold(n, target, "caller")
    t_indep = model.open_set_threshold(n, target, "independent")
    new = _caller_offsets(4000, n, rng)
    observed = float(np.mean(new.max(axis=1) >= t_caller))
    assert observed == pytest.approx(target, abs=0.02)
    # independence ignores the shared offset: its threshold is off for these callers
    assert abs(np.mean(new.max(axis=1) >= t_indep) - target) > abs(observed - target)


def test_calibrated_open_set_point_uses_stored_samples(calibration):
    p = open_set_point(calibration["none"], 50, 0.01, normalization="none", source="calibration 7")
    assert p.source == "calibration 7" and p.normalization == "none"
    genuine = ScoreSample.from_json(calibration["none"]["samples"]["genuine"])
    assert p.expected_frr == pytest.approx(genuine.count_below(p.threshold) / genuine.n)
