"""The voiceprint CLI: enroll, list, identify, verify, db upgrade/check."""
from __future__ import annotations

import json

from tests.conftest import SENTENCES


def test_cli_enroll_identify_verify(runner, speak, tmp_path):
    files = []
    for i, (text, voice) in enumerate(zip(SENTENCES, ["flite:awb"] * 3 + ["flite:slt"] * 3)):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(speak(text, voice))
        files.append(str(p))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")

    r = runner("enroll", "bob", *files[:3], str(bad), "--name", "Bob")
    assert r.exit_code == 0, r.output
    assert "bad.wav: rejected" in r.output and '"status": "enrolled"' in r.output
    assert runner("enroll", "eve", *files[3:5]).exit_code == 0
    r = runner("enroll", "mallory", str(bad))
    assert r.exit_code == 1 and "rejected" in r.output

    r = runner("list")
    assert r.exit_code == 0 and "bob" in r.output and "enrolled" in r.output and "(3 speakers)" in r.output

    r = runner("identify", files[5])
    assert r.exit_code == 0
    out = json.loads(r.output)
    assert out["candidates"][0]["external_id"] == "eve"

    assert runner("verify", "eve", files[5]).exit_code == 0
    r = runner("verify", "bob", files[5])
    assert r.exit_code == 3 and json.loads(r.output)["accepted"] is False
    r = runner("verify", "nobody", files[5])
    assert r.exit_code == 1 and "no speaker" in r.output

    r = runner("db", "check")
    assert r.exit_code == 0 and all(c["ok"] for c in json.loads(r.output))
    assert runner("db", "upgrade").exit_code == 0
