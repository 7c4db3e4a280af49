"""Pure pieces of the diarization pipeline: frames, powerset, clustering, identification."""
from __future__ import annotations

import numpy as np
import pytest

from voiceprint.diarization.clustering import (agglomerative, cluster_local_speakers,
                                               constrained_assignment, fold_small_clusters)
from voiceprint.diarization.frames import fill_gaps, hysteresis, remove_short, runs, select_top
from voiceprint.diarization.identify import Gallery, identify_labels, verify_claim
from voiceprint.diarization.segmentation import (chunk_starts, powerset_classes,
                                                 powerset_to_multilabel, powerset_mapping)


# -- frames -------------------------------------------------------------------
def test_hysteresis_keeps_state_between_thresholds():
    s = np.array([0.1, 0.45, 0.6, 0.45, 0.35, 0.45, 0.7])
    # onset 0.5, offset 0.4: 0.45 before any onset stays off; after 0.6, 0.45 stays on;
    # 0.35 switches off; the next 0.45 stays off
    assert hysteresis(s, 0.5, 0.4).tolist() == [False, False, True, True, False, False, True]
    with pytest.raises(ValueError):
        hysteresis(s, 0.4, 0.5)


def test_runs_gaps_and_short_runs():
    m = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1, 1], dtype=bool)
    assert runs(m) == [(1, 3), (4, 5), (8, 10)]
    assert fill_gaps(m, 1).tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 1, 1]  # leading gap untouched
    assert remove_short(m, 2).tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 1, 1]


def test_select_top_takes_count_best_columns():
    act = np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.7], [0.3, 0.3, 0.3]])
    out = select_top(act, np.array([1, 2, 0]))
    assert out.tolist() == [[False, True, False], [True, False, True], [False, False, False]]


# -- powerset and chunks ------------------------------------------------------
def test_powerset_classes_in_pyannote_order():
    assert powerset_classes(3, 2) == [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]
    logp = np.log(np.array([[0.05, 0.05, 0.05, 0.05, 0.7, 0.05, 0.05]]))
    hard, soft = powerset_to_multilabel(logp, powerset_mapping(3, 2))
    assert hard.tolist() == [[1, 1, 0]]
    # P(speaker 0) = P({0}) + P({0,1}) + P({0,2}) = 0.05 + 0.7 + 0.05
    assert soft[0, 0] == pytest.approx(0.8)


def test_chunk_starts_cover_the_recording():
    assert chunk_starts(5, 10, 3) == [0]
    starts = chunk_starts(25, 10, 4)
    assert starts[0] == 0 and starts[-1] == 15 and all(b - a <= 4 for a, b in zip(starts, starts[1:]))


# -- clustering ---------------------------------------------------------------
def _blobs(rng: np.random.Generator, centres: int, per: int, dim: int = 16, spread: float = 0.15):
    base = rng.standard_normal((centres, dim))
    x = np.concatenate([base[c] + spread * rng.standard_normal((per, dim)) for c in range(centres)])
    return x, np.repeat(np.arange(centres), per)


def test_agglomerative_finds_the_groups_and_honours_a_count():
    x, truth = _blobs(np.random.default_rng(0), 3, 10)
    labels = agglomerative(x, threshold=0.5)
    assert len(set(labels)) == 3
    # same partition up to renaming
    assert len({(a, b) for a, b in zip(labels, truth)}) == 3
    assert len(set(agglomerative(x, threshold=0.5, num_clusters=2))) == 2
    assert len(set(agglomerative(x, threshold=0.5, num_clusters=5))) == 5
    assert len(set(agglomerative(x, threshold=0.5, max_clusters=2))) == 2
    assert len(set(agglomerative(x, threshold=-1.0, min_clusters=3))) == 3


def test_small_clusters_fold_into_the_nearest_large_one():
    x = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0.9, 0.2]], dtype=float)
    labels = np.array([0, 0, 1, 1, 2])
    weights = np.array([5, 5, 5, 5, 1.0])
    out = fold_small_clusters(x, labels, weights, min_weight=3)
    assert out.tolist() == [0, 0, 1, 1, 0]


def test_constrained_assignment_keeps_local_speakers_of_a_chunk_apart():
    sim = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]])
    chunks = np.array([0, 0, 1])
    # unconstrained both rows of chunk 0 would pick cluster 0
    assert constrained_assignment(sim, chunks).tolist() == [1, 0, 1]


def test_cluster_local_speakers_with_hint():
    x, truth = _blobs(np.random.default_rng(1), 2, 12)
    chunks = np.arange(len(x)) // 2
    secs = np.full(len(x), 3.0)
    free = cluster_local_speakers(x, chunks, secs, threshold=0.5, min_train_seconds=2,
                                  min_cluster_seconds=5)
    assert len(free.centroids) == 2
    assert np.allclose(np.linalg.norm(free.centroids, axis=1), 1.0, atol=1e-5)
    forced = cluster_local_speakers(x, chunks, secs, threshold=0.5, min_train_seconds=2,
                                    min_cluster_seconds=5, num_speakers=3)
    assert len(forced.centroids) == 3


# -- identification -----------------------------------------------------------
def test_identify_labels_open_set_with_margin():
    prints = np.eye(3, dtype=np.float32)
    gallery = Gallery(["ann", "bob", "cy"], prints, threshold=0.6)
    cents = {"S0": np.array([0.9, 0.3, 0.0]), "S1": np.array([0.3, 0.3, 0.3])}
    out = identify_labels(cents, gallery)
    s0 = out["S0"]
    assert s0.decision == "identified" and s0.speaker_id == "ann"
    # cosine with ann 0.9/sqrt(0.9) = 0.9487, with bob 0.3162: margin 0.6325
    assert s0.score == pytest.approx(0.948683, abs=1e-5)
    assert s0.margin == pytest.approx(0.632456, abs=1e-5)
    s1 = out["S1"]  # 0.577 to everyone: below 0.6
    assert s1.decision == "unknown" and s1.speaker_id is None and s1.best_speaker_id == "ann"
    empty = identify_labels(cents, Gallery([], np.zeros((0, 3)), 0.6))
    assert empty["S0"].decision == "no_speakers"


def test_gallery_validation_and_custom_scorer():
    with pytest.raises(ValueError):
        Gallery(["a"], np.zeros((2, 3)), 0.5)
    # a scorer on another scale (e.g. AS-norm) decides with its own threshold
    gallery = Gallery(["a", "b"], np.eye(2), threshold=2.0,
                      scorer=lambda q, m: 10 * (q @ m.T))
    out = identify_labels({"S0": np.array([0.3, 0.0])}, gallery)
    assert out["S0"].score == pytest.approx(3.0) and out["S0"].speaker_id == "a"


def test_verify_claim_per_label():
    out = verify_claim({"S0": np.array([1.0, 0.0]), "S1": np.array([0.0, 1.0])},
                       np.array([1.0, 0.0]), threshold=0.5)
    assert out["S0"].accepted and not out["S1"].accepted
    assert out["S1"].score == pytest.approx(0.0)


def test_refine_moves_a_misplaced_member_and_keeps_the_count():
    from voiceprint.diarization.clustering import refine
    x = np.array([[1, 0], [0.95, 0.1], [0, 1], [0.1, 0.95], [0.9, 0.05]], dtype=float)
    labels = np.array([0, 0, 1, 1, 1])  # the last row belongs with the first two
    assert refine(x, labels, np.ones(5)).tolist() == [0, 0, 1, 1, 0]


def test_clustering_caps_the_training_set_and_still_assigns_everyone():
    x, truth = _blobs(np.random.default_rng(0), 2, 60)
    chunks = np.arange(len(x))
    out = cluster_local_speakers(x, chunks, np.full(len(x), 3.0), threshold=0.5,
                                 min_train_seconds=2, min_cluster_seconds=5, max_train=20)
    assert len(out.assignment) == len(x) and len(out.centroids) == 2
    # the assignment recovers the two groups (up to renaming)
    assert len({(a, b) for a, b in zip(out.assignment, truth)}) == 2
