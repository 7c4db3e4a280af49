"""Operating points: uncalibrated defaults, calibrated thresholds, AS-norm, open-set decisions."""
from __future__ import annotations

import json

import pytest

from tests.conftest import SENTENCES, multipart
from voiceprint.services.calibration import run_calibration

CAL_VOICES = ["flite:kal16", "flite:rms", "en-us+f3", "en-us+m7"]


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory, speak):
    """4 speakers x 5 clips that are never enrolled: <speaker>/<clip>.wav."""
    root = tmp_path_factory.mktemp("calibration")
    for voice in CAL_VOICES:
        d = root / voice.replace(":", "_").replace("+", "_")
        d.mkdir()
        for i, text in enumerate(SENTENCES[:5]):
            (d / f"{i}.wav").write_bytes(speak(text, voice))
    return root


@pytest.fixture(scope="module")
def voices(speak):
    return {v: [speak(t, v) for t in SENTENCES] for v in ("flite:awb", "flite:slt")}


def enroll_awb(client, voices):
    sid = client.post("/speakers", json={"external_id": "awb"}).json["id"]
    r = client.post(f"/speakers/{sid}/enrollments", data=multipart(clips=voices["flite:awb"][:3]),
                    content_type="multipart/form-data")
    assert r.json["enrollment"]["status"] == "enrolled"
    return sid


def identify(client, clip, **form):
    r = client.post("/identify", data=multipart(clip=clip, **form), content_type="multipart/form-data")
    return r


def test_uncalibrated_install_says_so(client, voices):
    enroll_awb(client, voices)
    r = identify(client, voices["flite:awb"][4]).json
    assert r["operating_point"]["calibrated"] is False
    assert r["operating_point"]["source"] == "built-in default"
    assert client.get("/calibrations/active").json["calibrated"] is False


def test_calibrated_points_drive_decisions(client, rt, voices, calibration_dir):
    rt.config.SCORE_NORMALIZATION = "none"
    enroll_awb(client, voices)
    result = run_calibration(rt, calibration_dir, enroll_clips=2)
    assert result["n_speakers"] == 4 and result["none"]["n_genuine"] == 4 * 3
    points = result["none"]["points"]

    r = identify(client, voices["flite:awb"][4]).json
    op = r["operating_point"]
    assert op["calibrated"] is True and op["name"] == "far_1pct"
    assert op["threshold"] == pytest.approx(points["far_1pct"]["threshold"])
    assert op["expected_far"] == pytest.approx(points["far_1pct"]["far"])
    assert op["source"] == f"calibration {result['id']}"
    assert r["decision"] == "identified" and r["speaker"]["external_id"] == "awb"

    # a never-enrolled voice is "unknown" at the calibrated point, with no speaker
    r = identify(client, voices["flite:slt"][0]).json
    assert r["decision"] == "unknown" and r["speaker"] is None
    assert r["candidates"][0]["score"] < op["threshold"]

    r = identify(client, voices["flite:awb"][4], operating_point="eer").json
    assert r["operating_point"]["threshold"] == pytest.approx(points["eer"]["threshold"])
    r = identify(client, voices["flite:awb"][4], operating_point="far_5pct")
    assert r.status_code == 422 and r.json["errors"]["reason"] == "unknown_operating_point"

    listed = client.get("/calibrations").json
    assert listed[0]["id"] == result["id"] and "cohort" not in listed[0]


def test_as_norm_scores_are_judged_against_as_norm_thresholds(client, app, rt, voices, calibration_dir):
    sid = enroll_awb(client, voices)
    result = run_calibration(rt, calibration_dir, enroll_clips=2)
    rt.config.SCORE_NORMALIZATION = "asnorm"
    r = client.post("/verify", data=multipart(clip=voices["flite:awb"][4], speaker_id=str(sid)),
                    content_type="multipart/form-data").json
    assert r["operating_point"]["normalization"] == "asnorm"
    assert r["threshold"] == pytest.approx(result["asnorm"]["points"]["far_1pct"]["threshold"])
    assert "AS-norm" in r["score_scale"]
    assert r["score"] != pytest.approx(r["speaker"]["cosine"])
    assert r["accepted"] is True
    r = client.post("/verify", data=multipart(clip=voices["flite:slt"][0], speaker_id=str(sid)),
                    content_type="multipart/form-data").json
    assert r["accepted"] is False and r["score"] < r["threshold"]


def test_calibrate_cli(runner, calibration_dir):
    r = runner("calibrate", "--data", str(calibration_dir), "--enroll-clips", "2")
    assert r.exit_code == 0, r.output
    assert "far_1pct" in r.output and "asnorm" in r.output and "4 speakers" in r.output
    r = runner("calibrate", "--data", str(calibration_dir / "flite_rms"))
    assert r.exit_code == 1 and "no labelled audio" in r.output and "bad_calibration_data" in r.output
