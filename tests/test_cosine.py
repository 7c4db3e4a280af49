"""voiceprint.scoring.cosine: the one place cosine similarity is defined."""
from __future__ import annotations

import numpy as np
import pytest

from voiceprint.scoring.cosine import (centroid, cosine_matrix, cosine_to_l2, cosine_to_squared_l2,
                                       l2_normalize, l2_to_cosine, squared_l2_to_cosine)


def test_normalised_rows_and_zero_rows():
    x = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert x.dtype == np.float32
    assert np.allclose(x[0], [0.6, 0.8]) and np.all(x[1] == 0)


def test_cosine_matrix_matches_the_definition():
    rng = np.random.default_rng(0)
    a, b = l2_normalize(rng.normal(size=(4, 8))), l2_normalize(rng.normal(size=(3, 8)))
    c = cosine_matrix(a, b)
    assert c.shape == (4, 3)
    ref = [[float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)) for v in b] for u in a]
    assert np.allclose(c, ref, atol=1e-6)
    assert cosine_matrix(a[0], b).shape == (1, 3)
    with pytest.raises(ValueError, match="sizes differ"):
        cosine_matrix(a, b[:, :4])


def test_distance_conversions_round_trip():
    rng = np.random.default_rng(1)
    u, v = l2_normalize(rng.normal(size=(2, 16)))
    cos = float(u @ v)
    sq = float(np.sum((u - v) ** 2))
    assert squared_l2_to_cosine(sq) == pytest.approx(cos, abs=1e-6)
    assert cosine_to_squared_l2(cos) == pytest.approx(sq, abs=1e-6)
    assert l2_to_cosine(np.sqrt(sq)) == pytest.approx(cos, abs=1e-6)
    assert cosine_to_l2(cos) == pytest.approx(np.sqrt(sq), abs=1e-6)
    arr = np.array([0.0, 2.0, 4.0])
    assert np.allclose(squared_l2_to_cosine(arr), [1.0, 0.0, -1.0])


def test_centroid_is_the_normalised_mean_of_normalised_rows():
    e = np.array([[2.0, 0.0], [0.0, 1.0]])  # rows renormalised first: (1, 0) and (0, 1)
    assert np.allclose(centroid(e), [np.sqrt(0.5), np.sqrt(0.5)])
    with pytest.raises(ValueError):
        centroid(np.zeros((0, 2)))
