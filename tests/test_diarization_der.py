"""DER on hand-made cases (each figure worked out by hand in the comment next to it)."""
from __future__ import annotations

import pytest

from voiceprint.scoring.der import (DerComponents, der_components, diarization_error_rate,
                                    merge_turns, scored_regions)


def test_perfect_hypothesis_with_other_label_names():
    ref = [(0, 10, "A"), (10, 20, "B")]
    hyp = [(0, 10, "x"), (10, 20, "y")]
    d = der_components(ref, hyp, collar=0)
    assert d.der == 0.0 and d.total == 20.0
    assert d.mapping == {"x": "A", "y": "B"}


def test_missed_speech():
    # reference 10 s, hypothesis covers 6 s: 4 s missed
    d = der_components([(0, 10, "A")], [(0, 6, "x")], collar=0)
    assert (d.total, d.missed, d.false_alarm, d.confusion) == (10.0, 4.0, 0.0, 0.0)
    assert d.der == pytest.approx(0.4)


def test_false_alarm_outside_reference_speech():
    # scoring region defaults to the extent of both: 0-14; 2 s of speech nobody said
    d = der_components([(0, 10, "A")], [(0, 10, "x"), (12, 14, "x")], collar=0)
    assert (d.missed, d.false_alarm, d.confusion) == (0.0, 2.0, 0.0)
    assert d.der == pytest.approx(0.2)


def test_confusion_uses_the_best_one_to_one_mapping():
    # co-occurrence: x-A 10 s, x-B 5 s, y-B 5 s -> best mapping x->A, y->B (15 s);
    # 10-15 s is B's speech labelled x (mapped to A): 5 s confusion of 20 s
    d = der_components([(0, 10, "A"), (10, 20, "B")], [(0, 15, "x"), (15, 20, "y")], collar=0)
    assert d.mapping == {"x": "A", "y": "B"}
    assert (d.missed, d.false_alarm, d.confusion) == (0.0, 0.0, 5.0)
    assert d.der == pytest.approx(0.25)


def test_one_speaker_split_in_two_is_confusion():
    # one of x / y maps to A, the other 5 s are confused
    d = der_components([(0, 10, "A")], [(0, 5, "x"), (5, 10, "y")], collar=0)
    assert d.confusion == 5.0 and d.der == pytest.approx(0.5)


def test_overlap_is_scored_and_can_be_skipped():
    # A 0-10, B 5-15: 20 s of reference speech; the hypothesis has one voice 0-15.
    # 5-10: two reference speakers, one hypothesis speaker -> 5 s missed;
    # x maps to A or B (10 s either way), the other's 5 s alone are confusion.
    ref = [(0, 10, "A"), (5, 15, "B")]
    d = der_components(ref, [(0, 15, "x")], collar=0)
    assert (d.total, d.missed, d.false_alarm, d.confusion) == (20.0, 5.0, 0.0, 5.0)
    # skipping overlap leaves 0-5 (A) and 10-15 (B): 10 s, 5 s of them confused
    s = der_components(ref, [(0, 15, "x")], collar=0, skip_overlap=True)
    assert (s.total, s.missed, s.confusion) == (10.0, 0.0, 5.0)


def test_hypothesis_overlap_where_the_reference_has_one_speaker_is_false_alarm():
    # x 0-10 = A, y 8-10 extra: 2 s of false alarm on 10 s
    d = der_components([(0, 10, "A")], [(0, 10, "x"), (8, 10, "y")], collar=0)
    assert (d.missed, d.false_alarm, d.confusion) == (0.0, 2.0, 0.0)


def test_collar_forgives_boundary_errors_within_a_quarter_second():
    ref = [(0, 10, "A"), (10, 20, "B")]
    hyp = [(0.2, 10.2, "x"), (10.2, 20, "y")]
    assert diarization_error_rate(ref, hyp, collar=0.25) == 0.0
    # without collar: 0-0.2 missed (0.2 s) + 10-10.2 confused (0.2 s) over 20 s
    assert diarization_error_rate(ref, hyp, collar=0.0) == pytest.approx(0.4 / 20)


def test_collar_removes_a_band_on_both_sides_of_each_reference_edge():
    # A 0-10, B 10-20 -> edges 0, 10, 20; scored: 0.25-9.75 and 10.25-19.75 = 19 s
    d = der_components([(0, 10, "A"), (10, 20, "B")], [(0, 20, "x")], collar=0.25)
    assert d.total == pytest.approx(19.0)
    assert d.confusion == pytest.approx(9.5)


def test_errors_beyond_the_collar_count():
    # hypothesis ends 1 s early: 10.25 .. 9 -> 0.75 s missed of 9.5 s scored (0.25-9.75)
    d = der_components([(0, 10, "A")], [(0, 9, "x")], collar=0.25)
    assert d.total == pytest.approx(9.5)
    assert d.missed == pytest.approx(0.75)


def test_touching_turns_of_one_speaker_get_no_inner_collar():
    # A 0-5 + A 5-10 is one stretch of speech: scored 0.25-9.75 (9.5 s)
    d = der_components([(0, 5, "A"), (5, 10, "A")], [(0, 10, "x")], collar=0.25)
    assert d.total == pytest.approx(9.5) and d.der == 0.0


def test_empty_hypothesis_misses_everything_and_empty_reference_is_all_false_alarm():
    assert diarization_error_rate([(0, 4, "A")], [], collar=0) == 1.0
    d = der_components([], [(0, 3, "x")], collar=0)
    assert d.total == 0.0 and d.false_alarm == 3.0


def test_uem_limits_scoring():
    d = der_components([(0, 10, "A")], [(0, 5, "x")], collar=0, uem=(0, 5))
    assert d.total == 5.0 and d.der == 0.0


def test_pooling_sums_seconds():
    a = DerComponents(10.0, 1.0, 0.0, 0.0)
    b = DerComponents(30.0, 0.0, 2.0, 1.0)
    assert (a + b).der == pytest.approx(4.0 / 40.0)


def test_merge_and_validation():
    m = merge_turns([(5, 6, "A"), (0, 2, "A"), (1, 3, "A")])
    assert m["A"].tolist() == [[0.0, 3.0], [5.0, 6.0]]
    with pytest.raises(ValueError):
        merge_turns([(3, 2, "A")])
    regions = scored_regions(merge_turns([(1, 2, "A")]), (0.0, 3.0), 0.25)
    assert regions.tolist() == [[0.0, 0.75], [1.25, 1.75], [2.25, 3.0]]
