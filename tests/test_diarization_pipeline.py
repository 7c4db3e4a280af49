"""The diarization pipeline on synthesized conversations (flite's recorded voices, GE2E)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SENTENCES

pytest.importorskip("torch")
pytest.importorskip("librosa")

SR = 16_000


@pytest.fixture(scope="module")
def segmentation() -> Any:
    from voiceprint.diarization.segmentation import SegmentationModel, default_checkpoint
    from voiceprint.errors import EncoderUnavailable
    try:
        default_checkpoint()
    except EncoderUnavailable as exc:
        pytest.skip(str(exc))
    return SegmentationModel.load(num_threads=1)


def _samples(wav: bytes) -> np.ndarray:
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    from voiceprint.audio.resample import resample
    return resample(x, rate, SR)


@pytest.fixture(scope="module")
def voices(speak: Callable[..., bytes]) -> Any:
    """Source of three flite voices: conversation units and separate enrollment sentences."""
    from eval.diarize_data import Source, _level, speech_units

    units, enroll = {}, {}
    for v in ("slt", "awb", "kal16"):
        clips = [_samples(speak(s, f"flite:{v}")) for s in SENTENCES]
        units[v] = [_level(u) for c in clips[:4] for u in speech_units(c)]
        enroll[v] = clips[4:]
    return Source("flite", units, enroll)


@pytest.fixture(scope="module")
def call(voices: Any) -> Any:
    """About 40 s of slt and awb taking turns, no overlap."""
    from eval.diarize_data import Plan, build_conversation
    return build_conversation(voices, ["slt", "awb"], Plan(minutes=0.7),
                              np.random.default_rng(7))


@pytest.fixture(scope="module")
def diarizer(segmentation: Any, ge2e: Any) -> Any:
    from voiceprint.diarization.pipeline import Diarizer
    return Diarizer(segmentation, ge2e)


@pytest.fixture(scope="module")
def analysis(diarizer: Any, call: Any) -> Any:
    return diarizer.analyse(call.waveform)


def test_model_loads_from_the_wheel_and_finds_speech(segmentation: Any, speak: Callable[..., bytes]):
    assert segmentation.frames_per_chunk == 589
    assert segmentation.frame_step == pytest.approx(0.016875)
    speech = _samples(speak(SENTENCES[0], "flite:slt"))
    silence = np.zeros(3 * SR, np.float32)
    x = np.concatenate([silence, speech, silence])[: segmentation.chunk_samples]
    x = x + np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * 1e-3
    out = segmentation.segment(np.pad(x, (0, segmentation.chunk_samples - len(x)))[None])
    p = out.speech[0]
    t = (np.arange(len(p)) + 0.5) * segmentation.frame_step
    loud = np.abs(speech) > 0.05 * np.abs(speech).max()
    first, last = 3 + np.argmax(loud) / SR, 3 + (len(loud) - np.argmax(loud[::-1])) / SR
    assert p[t < first - 0.3].mean() < 0.2          # leading silence
    assert p[(t > first + 0.3) & (t < last - 0.3)].mean() > 0.8
    assert p[(t > last + 0.3) & (t < 9.9)].mean() < 0.2  # trailing silence
    assert out.hard.max(axis=2)[0][(t > last + 0.5) & (t < 9.9)].sum() == 0


def test_missing_or_bad_checkpoint_is_a_clear_503(tmp_path: Path):
    from voiceprint.diarization.segmentation import SegmentationModel
    from voiceprint.errors import EncoderUnavailable
    with pytest.raises(EncoderUnavailable) as err:
        SegmentationModel.load(tmp_path / "missing.pt")
    assert err.value.status == 503 and err.value.reason == "segmentation_unavailable"
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderUnavailable):
        SegmentationModel.load(bogus)


def test_two_speaker_call_gives_two_labels_and_low_der(diarizer: Any, call: Any, analysis: Any):
    from voiceprint.scoring.der import der_components
    result = diarizer.cluster(analysis)
    assert sorted(result.labels) == ["SPEAKER_00", "SPEAKER_01"]
    d = der_components(call.reference, [(s.start, s.end, s.label) for s in result.segments])
    assert d.der < 0.10, d
    # each label's speech time is about one reference speaker's
    ref_time = sorted(sum(b - a for a, b, s in call.reference if s == spk) for spk in ("slt", "awb"))
    got = sorted(v.speech_seconds for v in result.labels.values())
    assert np.allclose(got, ref_time, rtol=0.15)
    assert all(0 <= s.start < s.end <= result.duration_seconds for s in result.segments)
    assert not any(s.overlap for s in result.segments)


def test_speaker_count_hint_is_honoured(diarizer: Any, analysis: Any):
    assert len(diarizer.cluster(analysis, num_speakers=1).labels) == 1
    assert len(diarizer.cluster(analysis, num_speakers=2).labels) == 2
    assert len(diarizer.cluster(analysis, max_speakers=1).labels) == 1


def test_enrolled_participant_named_and_stranger_unknown(diarizer: Any, call: Any, analysis: Any,
                                                         voices: Any, ge2e: Any):
    from eval.diarize_data import enrollment_utterances
    from voiceprint.diarization.identify import Gallery, identify_labels
    from voiceprint.scoring.der import der_components
    from voiceprint.services.decisions import DEFAULT_THRESHOLDS

    result = diarizer.cluster(analysis)
    prints = {}
    for spk in ("slt", "kal16"):  # awb takes part but is never enrolled; kal16 is not in the call
        e = ge2e.embed_batch(enrollment_utterances(voices, spk, n=2)).mean(axis=0)
        prints[spk] = e / np.linalg.norm(e)
    gallery = Gallery(list(prints), np.stack(list(prints.values())), DEFAULT_THRESHOLDS["ge2e"])
    ids = identify_labels(result.centroids(), gallery)
    mapping = der_components(call.reference,
                             [(s.start, s.end, s.label) for s in result.segments]).mapping
    by_ref = {ref: ids[label] for label, ref in mapping.items()}
    assert by_ref["slt"].speaker_id == "slt"
    assert by_ref["awb"].decision == "unknown"


def test_overlap_is_marked_with_both_labels(segmentation: Any, ge2e: Any, voices: Any):
    from eval.diarize_data import Plan, build_conversation
    from voiceprint.diarization.pipeline import Diarizer
    conv = build_conversation(voices, ["slt", "awb"],
                              Plan(minutes=0.6, overlap_prob=1.0, overlap=(1.0, 1.5)),
                              np.random.default_rng(3))
    result = Diarizer(segmentation, ge2e).run(conv.waveform, num_speakers=2)
    flagged = [s for s in result.segments if s.overlap]
    assert flagged, "no overlapped speech found"
    assert {s.label for s in flagged} == set(result.labels)
    assert 0.3 * conv.overlap_seconds <= result.overlap_seconds <= 2.0 * conv.overlap_seconds
    for s in flagged:  # an overlap segment has a partner with another label at the same time
        mid = (s.start + s.end) / 2
        assert any(o.label != s.label and o.start <= mid <= o.end for o in flagged)


def test_progress_reports_and_bad_input(diarizer: Any):
    from voiceprint.errors import AudioError
    marks: list[float] = []
    x = np.random.default_rng(0).standard_normal(25 * SR).astype(np.float32) * 0.01
    diarizer.run(x, progress=marks.append)
    assert marks[-1] == 1.0 and marks == sorted(marks) and len(marks) >= 2
    for bad in (np.zeros(0, np.float32), np.zeros((SR, 2), np.float32),
                np.full(SR, np.nan, np.float32)):
        with pytest.raises(AudioError):
            diarizer.run(bad)
