"""Enrollment consistency: clips that disagree with the rest are flagged with a reason."""
from __future__ import annotations

import numpy as np
import pytest

from tests.test_calibration_math import clusters
from voiceprint.scoring.cosine import centroid
from voiceprint.scoring.enrollment_consistency import ConsistencyRule, check_clips
from voiceprint.services.calibration import calibrate_embeddings


@pytest.fixture(scope="module")
def world():
    embs = clusters(31, 12, seed=7, spread=0.7)
    names = sorted(embs)
    cal = calibrate_embeddings({n: embs[n] for n in names[:30]}, enroll_clips=3)
    rule = ConsistencyRule.from_samples(cal["none"]["samples"], "calibration 1")
    return embs, names, rule


def test_rule_comes_from_the_genuine_low_tail(world):
    embs, names, rule = world
    assert rule.different_speaker_at_or_below <= rule.inconsistent_below < 1.0
    assert rule.source == "calibration 1"


def test_one_voice_passes(world):
    embs, names, rule = world
    clean = [check_clips(embs[n][:6], rule) for n in names[:30]]
    flagged = sum(not c.consistent for clips in clean for c in clips)
    assert flagged <= 0.05 * 30 * 6  # about 1% by construction of the rule


def test_a_second_speaker_is_reported(world):
    embs, names, rule = world
    clips = np.concatenate([embs[names[30]][:4], embs[names[0]][:1]])  # 4 of one voice, 1 of another
    out = check_clips(clips, rule)
    assert [c.consistent for c in out] == [True, True, True, True, False]
    odd = out[-1]
    assert odd.reason == "different_speaker" and odd.score < rule.different_speaker_at_or_below
    assert f"{odd.score:.3f}" in odd.message


def test_against_the_existing_voiceprint(world):
    embs, names, rule = world
    existing = centroid(embs[names[30]][:5])
    out = check_clips(embs[names[1]][:1], rule, existing=existing, existing_count=5)
    assert len(out) == 1 and not out[0].consistent
    out = check_clips(embs[names[30]][5:6], rule, existing=existing, existing_count=5)
    assert out[0].consistent


def test_two_clips_that_disagree_cannot_say_which(world):
    embs, names, rule = world
    out = check_clips(np.stack([embs[names[2]][0], embs[names[3]][0]]), rule)
    assert [c.reason for c in out] == ["clips_disagree", "clips_disagree"]
    single = check_clips(embs[names[2]][:1], rule)
    assert single[0].consistent and np.isnan(single[0].score)


def test_real_voices_with_the_encoders_measured_default(ge2e, speak):
    """flite's awb enrolls four sentences; one clip by slt slipped in; the ge2e default rule flags it."""
    import io

    import soundfile as sf

    from tests.conftest import SENTENCES
    from voiceprint.audio.resample import resample
    from voiceprint.scoring.defaults import encoder_defaults

    def embed(voice, text):
        x, rate = sf.read(io.BytesIO(speak(text, voice)), dtype="float32")
        return ge2e.embed(resample(x, rate, ge2e.sample_rate))

    defaults = encoder_defaults("ge2e")
    assert defaults is not None, "voiceprint/scoring/encoder_defaults.json lacks ge2e"
    rule = ConsistencyRule.from_samples(defaults["samples"], "built-in default")
    clips = np.stack([embed("flite:awb", t) for t in SENTENCES[:4]] + [embed("flite:slt", SENTENCES[4])])
    out = check_clips(clips, rule)
    assert [c.consistent for c in out] == [True, True, True, True, False], [c.score for c in out]
    assert out[-1].reason in ("different_speaker", "inconsistent_clip")
