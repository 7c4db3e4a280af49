"""``python -m eval.diarize`` runs end to end on a tiny synthesized corpus and prints its tables."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("librosa")


def test_eval_diarize_smoke(tmp_path, capsys):
    if not (shutil.which("flite") and shutil.which("espeak-ng")):
        pytest.skip("flite and espeak-ng are needed")
    from eval.diarize import main
    from eval.synth_voices import synthesize_corpus
    synthesize_corpus(tmp_path / "voices", clips_per_speaker=6, seconds_per_clip=3,
                      patterns=("flite-*",), jobs=1)
    assert main(["--sources", "synth", "--synth", str(tmp_path / "voices"), "--calls", "1",
                 "--minutes", "0.4", "--save", str(tmp_path / "raw.json")]) == 0
    out = capsys.readouterr().out
    assert "| synth | 2 spk, no overlap | 1 |" in out and "baseline" in out
    assert "CPU s per minute of audio" in out and (tmp_path / "raw.json").stat().st_size > 100
