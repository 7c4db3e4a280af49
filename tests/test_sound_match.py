"""Pure scoring of sounds from block vectors and landmark fingerprints (no model needed)."""
from __future__ import annotations

import numpy as np
import pytest

from tests import sound_fixtures as sfx
from voiceprint.audio.landmarks import (LandmarkIndex, aligned_matches, best_offset_count,
                                        landmarks)
from voiceprint.scoring.sound_match import (block_max_scores, block_mean_max_scores, file_scores,
                                            fused_order, group_starts, is_near_duplicate, rank_of)


def unit(*rows: list[float]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_group_starts_and_validation():
    np.testing.assert_array_equal(group_starts([2, 1, 3]), [0, 2, 3])
    with pytest.raises(ValueError):
        group_starts([1, 0])
    with pytest.raises(ValueError):
        block_max_scores(unit([1, 0]), unit([1, 0], [0, 1]), np.array([1]))


def test_block_scores_by_hand():
    # sound 0: blocks e1, e2; sound 1: block e3
    blocks = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    starts = np.array([0, 2])
    query = unit([1, 0, 0], [0, 0, 1])
    np.testing.assert_allclose(block_max_scores(query, blocks, starts), [1.0, 1.0])
    # each query block's best in sound 0: 1 and 0 -> 0.5; in sound 1: 0 and 1 -> 0.5
    np.testing.assert_allclose(block_mean_max_scores(query, blocks, starts), [0.5, 0.5])
    part = unit([0, 1, 0])  # a fragment: matches the second block of sound 0 only
    np.testing.assert_allclose(block_max_scores(part, blocks, starts), [1.0, 0.0])
    np.testing.assert_allclose(file_scores(unit([1, 0, 0])[0], unit([1, 0, 0], [0, 1, 0])), [1.0, 0.0])


def test_rank_counts_ties_against_the_target():
    assert rank_of(np.array([0.9, 0.5, 0.9]), 0) == 2
    assert rank_of(np.array([0.1, 0.5, 0.9]), 2) == 1


def test_fused_order_puts_landmark_matches_first():
    cos = np.array([0.99, 0.90, 0.95, 0.80])
    counts = np.array([2, 40, 0, 12])
    # 1 and 3 pass 8 landmarks (by count), then the rest by cosine
    np.testing.assert_array_equal(fused_order(cos, counts, 8), [1, 3, 0, 2])
    np.testing.assert_array_equal(fused_order(cos, np.zeros(4, int), 8), [0, 2, 1, 3])
    assert is_near_duplicate(0.99, 0, min_cosine=0.98, min_landmarks=10)
    assert is_near_duplicate(0.5, 10, min_cosine=0.98, min_landmarks=10)
    assert not is_near_duplicate(0.97, 9, min_cosine=0.98, min_landmarks=10)


def test_best_offset_count_allows_one_frame_of_jitter():
    assert best_offset_count(np.array([], dtype=np.int64)) == 0
    assert best_offset_count(np.array([5, 5, 6, 4, 20, 21])) == 4  # 4..6 within +-1 of 5


@pytest.fixture(scope="module")
def sounds() -> list[sfx.Sound]:
    return sfx.library(12, seed=7)


def test_landmarks_find_a_noisy_excerpt_in_its_original(sounds):
    """Melodies and noise bursts (many transient peaks); steady tones have no landmarks by
    design (no peak stands above its bin's median) and are left to the embedding."""
    index = LandmarkIndex()
    for i, s in enumerate(sounds):
        index.add(i, landmarks(s.samples, s.sample_rate))
    for i, s in enumerate(sounds):
        if s.family not in ("melody", "noise"):
            continue
        x, sr = s.samples, s.sample_rate
        part = sfx.white_noise(x[int(0.3 * sr):int(1.3 * sr)], 15, seed=i)
        got = index.match(landmarks(part, sr))
        assert got, s.name
        best = max(got, key=got.get)
        assert best == i, (s.name, got)


def test_landmarks_survive_resampling_and_gain(sounds):
    from voiceprint.audio.resample import resample

    s = sounds[5]  # a melody
    mine = landmarks(s.samples, s.sample_rate)
    assert len(mine) > 20
    other = landmarks(resample(s.samples * 0.3, s.sample_rate, 16000), 16000)
    assert aligned_matches(other, mine.hashes, mine.frames) >= 0.5 * len(mine)
    unrelated = landmarks(sounds[2].samples, sounds[2].sample_rate)
    assert aligned_matches(unrelated, mine.hashes, mine.frames) < 0.1 * len(mine)


def test_silence_and_tiny_clips_have_no_landmarks():
    assert len(landmarks(np.zeros(8000, np.float32), 8000)) == 0
    assert len(landmarks(np.ones(100, np.float32) * 0.1, 8000)) == 0
