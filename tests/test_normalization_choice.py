"""AS-norm is activated only with a big enough cohort and when it wins on held-out folds."""
from __future__ import annotations

import numpy as np
import pytest

from tests.test_calibration_math import clusters
from voiceprint.scoring import selection
from voiceprint.scoring.selection import choose_normalization


def hub_speakers(n: int, clips: int, dim: int = 32, seed: int = 0, spread: float = 0.8):
    """Speakers pulled by varying amounts towards one shared direction: their impostor
    scores differ per speaker, which is what AS-norm corrects."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(dim)
    g /= np.linalg.norm(g)
    out = {}
    for s in range(n):
        a = rng.uniform(0, 0.9)
        r = rng.standard_normal(dim)
        c = a * g + (1 - a) * r / np.linalg.norm(r)
        x = c / np.linalg.norm(c) + spread * rng.standard_normal((clips, dim)) / np.sqrt(dim)
        out[f"s{s:02d}"] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def test_asnorm_is_chosen_where_it_wins_on_held_out_speakers():
    r = choose_normalization(hub_speakers(40, 10), enroll_clips=3)
    assert r["cohort"]["large_enough"] and len(r["folds"]) == 4
    assert r["active"] == "asnorm" and r["asnorm_wins"] >= 3
    assert all(set(f) >= {"none", "asnorm", "asnorm_wins"} for f in r["folds"])


def test_a_small_cohort_keeps_raw_cosine_even_if_asnorm_wins():
    r = choose_normalization(hub_speakers(12, 10), enroll_clips=3)
    assert not r["cohort"]["large_enough"] and r["active"] == "none"
    assert "cohort too small" in r["reason"]


def test_asnorm_is_not_activated_when_it_loses_on_held_out_folds(monkeypatch):
    real = selection._fold_scores

    def asnorm_transfers_badly(train, test, enroll_clips, norm, top_n):
        out = real(train, test, enroll_clips, norm, top_n)
        if norm == "asnorm":  # separates better but its threshold does not carry over
            out["min_dcf"] *= 0.5
            out["actual_dcf"] = 100.0  # normalised DCF; always-reject costs 1
        return out

    monkeypatch.setattr(selection, "_fold_scores", asnorm_transfers_badly)
    r = choose_normalization(hub_speakers(40, 10), enroll_clips=3)
    assert r["asnorm_wins"] == 0 and r["active"] == "none"
    assert "won 0 of 4" in r["reason"]


def test_folds_never_put_a_speaker_in_its_own_cohort(monkeypatch):
    seen = []
    real = selection._fold_scores

    def spy(train, test, enroll_clips, norm, top_n):
        seen.append((set(train), set(test)))
        return real(train, test, enroll_clips, norm, top_n)

    monkeypatch.setattr(selection, "_fold_scores", spy)
    embs = clusters(24, 6, seed=1)
    choose_normalization(embs, enroll_clips=2)
    assert seen and all(not (tr & te) for tr, te in seen)
    tested = set().union(*(te for _, te in seen))
    assert tested == set(embs)


@pytest.mark.parametrize("n", [2, 3])
def test_too_few_speakers_for_folds(n):
    r = choose_normalization(clusters(n, 6), enroll_clips=2)
    assert r["active"] == "none" and r["folds"] == []
