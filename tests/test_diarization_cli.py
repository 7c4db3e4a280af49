"""``voiceprint diarize FILE``: segments and the identification of every voice."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SENTENCES

pytest.importorskip("torch")
pytest.importorskip("librosa")


def test_cli_diarize_names_the_enrolled_voice(runner, speak, tmp_path):
    from eval.diarize_data import Plan, Source, _level, build_conversation, speech_units
    from voiceprint.audio.resample import resample

    clips = {v: [speak(t, f"flite:{v}") for t in SENTENCES] for v in ("slt", "awb")}
    enroll = []
    for i, wav in enumerate(clips["slt"][3:]):
        p = tmp_path / f"slt{i}.wav"
        p.write_bytes(wav)
        enroll.append(str(p))
    assert runner("enroll", "slt", *enroll).exit_code == 0

    def units(wavs: list[bytes]) -> list[np.ndarray]:
        out = []
        for w in wavs:
            x, rate = sf.read(io.BytesIO(w), dtype="float32")
            out += [_level(u) for u in speech_units(resample(x, rate, 16000))]
        return out

    source = Source("flite", {v: units(clips[v][:3]) for v in clips}, {})
    conv = build_conversation(source, ["slt", "awb"], Plan(minutes=0.6), np.random.default_rng(5))
    call = tmp_path / "call.flac"
    sf.write(call, conv.waveform, 16000)

    r = runner("diarize", str(call), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["num_speakers"] == 2
    assert {s["speaker"] for s in out["segments"]} == {"slt", None}
    assert all({"start", "end", "label", "speaker", "overlap"} <= set(s) for s in out["segments"])
    named = [e["identification"]["speaker"]["external_id"] for e in out["labels"].values()
             if e["identification"]["speaker"]]
    assert named == ["slt"]

    r = runner("diarize", str(call), "--speakers", "1")
    assert r.exit_code == 0 and "SPEAKER_00" in r.output and "SPEAKER_01" not in r.output

    r = runner("diarize", str(call), "--claim", "nobody")
    assert r.exit_code == 1 and "nobody" in r.output
