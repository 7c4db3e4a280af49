"""voiceprint.scoring.metrics against hand-worked cases and sklearn."""
from __future__ import annotations

import numpy as np
import pytest

from voiceprint.scoring.metrics import (compute_eer, compute_min_dcf, det_curve, detection_cost,
                                        rates_at_threshold, recall_at_k, threshold_at_far)

# targets 0.4 0.6 0.8 interleaved with non-targets 0.2 0.5 0.7
INTERLEAVED = (np.array([0.4, 0.6, 0.8, 0.2, 0.5, 0.7]), np.array([1, 1, 1, 0, 0, 0]))


def test_det_curve_interleaved_by_hand() -> None:
    fpr, fnr, thr = det_curve(*INTERLEAVED)
    np.testing.assert_allclose(thr[:-1], [0.2, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert thr[-1] > 0.8 and thr[-1] == np.nextafter(0.8, 1.0)
    np.testing.assert_allclose(fpr, [1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(fnr, [0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])


def test_det_curve_groups_tied_scores() -> None:
    # a target and a non-target tied at 0.5 are accepted or rejected together
    fpr, fnr, thr = det_curve([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0])
    np.testing.assert_allclose(thr[:-1], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(fpr, [1, 0.5, 0, 0])
    np.testing.assert_allclose(fnr, [0, 0, 0.5, 1])


def test_eer_at_an_operating_point() -> None:
    eer, thr = compute_eer(*INTERLEAVED)
    assert eer == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.6)
    assert rates_at_threshold(*INTERLEAVED, thr) == pytest.approx((1 / 3, 1 / 3))


def test_eer_interpolated_between_operating_points() -> None:
    # fnr stays 2/3 while fpr drops 1 -> 1/2: the polyline crosses at 2/3,
    # nearer the operating point at threshold 0.6
    eer, thr = compute_eer([0.2, 0.3, 0.9, 0.5, 0.6], [1, 1, 1, 0, 0])
    assert eer == pytest.approx(2 / 3)
    assert thr == pytest.approx(0.6)


def test_eer_with_ties_matches_roc_chord() -> None:
    # ROC points (0,0) (0,.5) (.5,1) (1,1); tpr = 1 - fpr meets the chord at .25
    eer, thr = compute_eer([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0])
    assert eer == pytest.approx(0.25)
    assert thr == pytest.approx(0.5)


def test_perfect_separation() -> None:
    scores, labels = [0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]
    assert compute_eer(scores, labels) == pytest.approx((0.0, 0.8))
    assert compute_min_dcf(scores, labels) == pytest.approx((0.0, 0.8))
    assert threshold_at_far(scores, labels, 0.0) == pytest.approx(0.8)


def test_perfectly_wrong_scores() -> None:
    eer, _ = compute_eer([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    assert eer == pytest.approx(1.0)


def test_all_scores_equal() -> None:
    scores, labels = np.full(10, 0.3), np.array([1] * 4 + [0] * 6)
    eer, thr = compute_eer(scores, labels)
    assert eer == pytest.approx(0.5)
    assert thr == pytest.approx(0.3)
    # best is to reject everything: cost p_target * 1, normalised to 1
    dcf, dcf_thr = compute_min_dcf(scores, labels, p_target=0.01)
    assert dcf == pytest.approx(1.0)
    assert dcf_thr > 0.3
    assert rates_at_threshold(scores, labels, dcf_thr) == (0.0, 1.0)


def test_min_dcf_by_hand() -> None:
    # p_target=0.5: DCF = (fnr + fpr) / 2, minimum 1/3 first at threshold 0.4
    assert compute_min_dcf(*INTERLEAVED, p_target=0.5) == pytest.approx((2 / 3, 0.4))
    # p_target=0.01: best point fpr 0, fnr 2/3 -> 0.01 * 2/3 / 0.01
    assert compute_min_dcf(*INTERLEAVED, p_target=0.01) == pytest.approx((2 / 3, 0.8))


def test_min_dcf_costs() -> None:
    # c_fa=10 at p_target=0.5: DCF = .5 fnr + 5 fpr, min at fpr 0 fnr 2/3 -> 1/3; c_def 0.5
    dcf, thr = compute_min_dcf(*INTERLEAVED, p_target=0.5, c_miss=1, c_fa=10)
    assert dcf == pytest.approx((1 / 3) / 0.5)
    assert thr == pytest.approx(0.8)


def test_threshold_at_far() -> None:
    assert threshold_at_far(*INTERLEAVED, 0.0) == pytest.approx(0.8)
    assert threshold_at_far(*INTERLEAVED, 1 / 3) == pytest.approx(0.6)
    assert threshold_at_far(*INTERLEAVED, 0.5) == pytest.approx(0.6)
    assert threshold_at_far(*INTERLEAVED, 1.0) == pytest.approx(0.2)


def test_threshold_at_far_moves_above_a_tied_group() -> None:
    scores, labels = [0.5, 0.9, 0.5, 0.5], [1, 1, 0, 0]
    thr = threshold_at_far(scores, labels, 0.5)  # 0.5 would accept both non-targets
    assert thr == pytest.approx(0.9)
    assert rates_at_threshold(scores, labels, thr) == (0.0, 0.5)


def test_threshold_at_far_when_top_score_is_an_impostor() -> None:
    scores, labels = [0.5, 0.9], [1, 0]
    thr = threshold_at_far(scores, labels, 0.0)
    assert thr > 0.9
    assert rates_at_threshold(scores, labels, thr) == (0.0, 1.0)


def test_rates_at_threshold_accepts_equal_scores() -> None:
    assert rates_at_threshold(*INTERLEAVED, 0.5) == pytest.approx((2 / 3, 1 / 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_matches_sklearn_roc(seed: int) -> None:
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 3000)
    scores = rng.normal(size=3000) + 1.5 * labels
    if seed == 2:
        scores = np.round(scores, 1)  # many ties
    fpr, tpr, _ = roc_curve(labels, scores)
    expected = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    eer, thr = compute_eer(scores, labels)
    assert eer == pytest.approx(expected, abs=1e-9)
    far, frr = rates_at_threshold(scores, labels, thr)
    assert abs(far - eer) < 0.02 and abs(frr - eer) < 0.02


def test_det_curve_matches_sklearn_roc_points() -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(size=500) + labels, 2)
    fpr, fnr, thr = det_curve(scores, labels)
    sk_fpr, sk_tpr, sk_thr = roc_curve(labels, scores, drop_intermediate=False)
    # sklearn: thresholds decreasing, first is +inf (reject all)
    np.testing.assert_allclose(fpr[::-1], sk_fpr)
    np.testing.assert_allclose(1 - fnr[::-1], sk_tpr)
    np.testing.assert_allclose(thr[-2::-1], sk_thr[1:])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        compute_eer([0.1, 0.2], [1, 1])  # no non-targets
    with pytest.raises(ValueError):
        compute_eer([0.1, np.nan], [1, 0])
    with pytest.raises(ValueError):
        compute_eer([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError):
        compute_eer([0.1, 0.2], [1, 2])


def test_recall_at_k_by_hand() -> None:
    found = np.array([[1, 2, 3], [4, 5, 6]])
    true = np.array([[1, 3, 9], [7, 8, 9]])
    assert recall_at_k(found, true, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_at_k(found, true, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert recall_at_k(true, true, 3) == 1.0


def test_recall_at_k_order_does_not_matter() -> None:
    assert recall_at_k([[3, 2, 1]], [[1, 2, 3]], 3) == 1.0


def test_recall_at_k_missing_and_duplicate_results() -> None:
    assert recall_at_k([[1, -1]], [[1, 2, 3]], 3) == pytest.approx(1 / 3)  # padded, short
    assert recall_at_k([[1, 1, 1]], [[1, 2, 3]], 3) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        recall_at_k([[1, 2]], [[1, 2]], 3)  # truth shorter than k


def test_actual_dcf_at_the_min_dcf_threshold_is_the_min_dcf() -> None:
    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(1.0, 1.0, 300), rng.normal(-1.0, 1.0, 3000)]
    labels = np.r_[np.ones(300), np.zeros(3000)]
    min_dcf, thr = compute_min_dcf(scores, labels, p_target=0.01)
    assert detection_cost(scores, labels, thr, p_target=0.01) == pytest.approx(min_dcf)
    # any other threshold costs at least as much; rejecting everything costs exactly 1
    for t in (thr - 0.5, thr + 0.5, scores.min()):
        assert detection_cost(scores, labels, t, p_target=0.01) >= min_dcf - 1e-12
    assert detection_cost(scores, labels, scores.max() + 1, p_target=0.01) == pytest.approx(1.0)
