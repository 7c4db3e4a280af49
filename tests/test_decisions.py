"""Operating points over HTTP and the CLI: defaults, calibration, validation, normalisation."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SENTENCES, multipart
from voiceprint.services.calibration import run_calibration
from voiceprint.services.decisions import decision_basis, open_set_basis

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
    return client.post("/identify", data=multipart(clip=clip, **form),
                       content_type="multipart/form-data")


def verify(client, clip, sid, **form):
    return client.post("/verify", data=multipart(clip=clip, speaker_id=str(sid), **form),
                       content_type="multipart/form-data")


def test_uncalibrated_install_says_so(client, voices):
    enroll_awb(client, voices)
    r = identify(client, voices["flite:awb"][4]).json
    assert r["operating_point"]["calibrated"] is False
    assert r["operating_point"]["source"] == "built-in default"
    active = client.get("/calibrations/active").json
    assert active["calibrated"] is False and active["verify"]["calibrated"] is False
    assert active["normalization"] == "none" and active["calibration_id"] is None


def test_operating_point_names_are_validated_the_same_before_and_after_calibrating(
        client, rt, voices, calibration_dir):
    sid = enroll_awb(client, voices)
    clip = voices["flite:awb"][4]

    def answers():
        out = {}
        for name in ("bogus", "far_0pct", "default", "eer", "far_1pct", "far_0.5pct"):
            r = identify(client, clip, operating_point=name)
            v = verify(client, clip, sid, operating_point=name)
            assert r.status_code == v.status_code, name
            out[name] = (r.status_code, r.json)
        return out

    before = answers()
    run_calibration(rt, calibration_dir, enroll_clips=2)
    after = answers()
    for name in before:
        assert before[name][0] == after[name][0], name
    for bad in ("bogus", "far_0pct"):
        assert after[bad][0] == 422 and after[bad][1]["errors"]["reason"] == "unknown_operating_point"
    # uncalibrated every valid name answers the default; calibrated only `default` does
    assert all(before[n][1]["operating_point"]["calibrated"] is False
               for n in ("default", "eer", "far_1pct", "far_0.5pct"))
    assert after["default"][1]["operating_point"]["calibrated"] is False
    for name in ("eer", "far_1pct", "far_0.5pct"):  # far_0.5pct was not stored: derived
        op = after[name][1]["operating_point"]
        assert op["calibrated"] is True and op["name"] == name


def test_calibrated_points_drive_decisions(client, rt, voices, calibration_dir):
    rt.config.SCORE_NORMALIZATION = "none"
    rt.config.OPEN_SET_FALSE_ID_RATE = None  # identify judges by the configured point
    enroll_awb(client, voices)
    result = run_calibration(rt, calibration_dir, enroll_clips=2)
    assert result["n_speakers"] == 4 and result["none"]["n_genuine"] == 4 * 3
    points = result["none"]["points"]

    r = identify(client, voices["flite:awb"][4]).json
    op = r["operating_point"]
    assert op["calibrated"] is True and op["name"] == "far_1pct"
    assert op["threshold"] == pytest.approx(points["far_1pct"]["threshold"])
    assert op["expected_far"] == pytest.approx(points["far_1pct"]["expected_far"]) and op["expected_far"] > 0
    assert op["source"] == f"calibration {result['id']}"
    assert r["decision"] == "identified" and r["speaker"]["external_id"] == "awb"

    # a never-enrolled voice is "unknown" at the calibrated point, with no speaker
    r = identify(client, voices["flite:slt"][0]).json
    assert r["decision"] == "unknown" and r["speaker"] is None
    assert r["candidates"][0]["score"] < op["threshold"]

    r = identify(client, voices["flite:awb"][4], operating_point="eer").json
    assert r["operating_point"]["threshold"] == pytest.approx(points["eer"]["threshold"])

    listed = client.get("/calibrations").json
    assert listed[0]["id"] == result["id"] and "cohort" not in listed[0]
    assert "samples" not in listed[0]["results"]["none"]
    assert listed[0]["results"]["trusted"] is False


def test_small_calibration_points_are_bounded_and_flagged(rt, calibration_dir):
    result = run_calibration(rt, calibration_dir, enroll_clips=2)
    with rt.engine.connect() as conn:
        for name in ("far_1pct", "far_0.1pct", "eer"):
            p = decision_basis(conn, "ge2e", name, "auto", tenant_id=1).point
            assert p.calibrated and p.expected_far > 0
            assert p.far_upper_95 >= 0.05  # 0 of 36 impostor trials allows up to 9.7%
            assert p.trials["impostor"] == 4 * 3 * 3 and p.trials["genuine"] == 4 * 3
            if name != "eer":
                assert p.resolvable is False
    assert result["normalization"]["active"] == "none"


def test_auto_normalisation_follows_the_calibration(client, rt, voices, calibration_dir):
    sid = enroll_awb(client, voices)
    result = run_calibration(rt, calibration_dir, enroll_clips=2)
    with rt.engine.connect() as conn:
        auto = decision_basis(conn, "ge2e", "far_1pct", "auto", tenant_id=1)
        forced = decision_basis(conn, "ge2e", "far_1pct", "asnorm", tenant_id=1)
    # a 4-speaker cohort is too small: auto keeps raw cosine, and says why
    assert auto.normalization == "none" and "cohort too small" in auto.normalization_reason
    assert forced.normalization == "asnorm" and "forced" in forced.normalization_reason
    rt.config.SCORE_NORMALIZATION = "auto"
    active = client.get("/calibrations/active").json
    assert active["normalization"] == active["verify"]["normalization"] == "none"
    assert active["calibration_id"] == result["id"] and active["trusted"] is False
    assert active["warnings"] and active["normalization_setting"] == "auto"

    rt.config.SCORE_NORMALIZATION = "asnorm"
    r = verify(client, voices["flite:awb"][4], sid).json
    assert r["operating_point"]["normalization"] == "asnorm"
    assert r["threshold"] == pytest.approx(result["asnorm"]["points"]["far_1pct"]["threshold"])
    assert "AS-norm" in r["score_scale"]
    assert r["score"] != pytest.approx(r["speaker"]["cosine"])
    active = client.get("/calibrations/active").json
    assert active["normalization"] == active["verify"]["normalization"] == "asnorm"


def test_open_set_basis_grows_with_the_gallery(rt, calibration_dir):
    with rt.engine.connect() as conn:
        uncal = [open_set_basis(conn, "ge2e", n, 0.01, tenant_id=1).point for n in (10, 1000)]
    assert all(not p.calibrated for p in uncal) and uncal[0].threshold < uncal[1].threshold
    run_calibration(rt, calibration_dir, enroll_clips=2)
    with rt.engine.connect() as conn:
        cal = [open_set_basis(conn, "ge2e", n, 0.01, tenant_id=1).point for n in (10, 100)]
    assert all(p.calibrated and p.open_set["target_rate"] == 0.01 for p in cal)
    assert cal[0].threshold < cal[1].threshold and not cal[1].resolvable


def test_identify_sizes_its_threshold_to_the_tenants_gallery(client, rt, voices):
    """By default identify judges an unknown caller at OPEN_SET_FALSE_ID_RATE for N enrolled."""
    enroll_awb(client, voices)
    r = identify(client, voices["flite:slt"][0])
    stages = {part.split(";")[0].strip() for part in r.headers["Server-Timing"].split(",")}
    assert {"decode", "vad", "resample", "embed", "search", "db", "total"} <= stages
    op = r.json["operating_point"]
    assert op["name"] == "open_set" and op["open_set"]["n_enrolled"] == 1
    assert op["open_set"]["target_rate"] == rt.config.OPEN_SET_FALSE_ID_RATE
    sid = client.post("/speakers", json={"external_id": "slt"}).json["id"]
    r = client.post(f"/speakers/{sid}/enrollments", data=multipart(clips=voices["flite:slt"][:3]),
                    content_type="multipart/form-data")
    assert r.status_code == 201
    op2 = identify(client, voices["flite:slt"][4]).json["operating_point"]
    assert op2["open_set"]["n_enrolled"] == 2 and op2["threshold"] > op["threshold"]
    # a named point still answers as asked
    named = identify(client, voices["flite:slt"][4], operating_point="far_1pct").json
    assert named["operating_point"]["name"] == "default"  # uncalibrated: the default answers


def test_calibrate_cli_on_a_fresh_data_dir(runner, app_config, calibration_dir):
    # nothing migrated yet: the CLI must create the schema before embedding
    Path(app_config["DATABASE_URL"].removeprefix("sqlite:///")).unlink()
    r = runner("calibrate", "--data", str(calibration_dir), "--enroll-clips", "2")
    assert r.exit_code == 0, r.output
    assert "far_1pct" in r.output and "asnorm" in r.output and "4 speakers" in r.output
    assert "NOT RESOLVABLE" in r.output and "WARNING: too few data" in r.output
    assert "normalisation in use" in r.output and "cohort too small" in r.output
    assert "more data: far_1pct needs >= 300 effective impostor trials" in r.output
    rows = [line.split() for line in r.output.splitlines()
            if line.split()[:1] in (["none"], ["asnorm"]) and line.split()[1] != "EER"]
    assert len(rows) == 2 * 5  # eer, min_dcf, far_1pct, far_0.1pct, far_0.01pct
    assert all(row[3] != "0.000%" and row[4] != "0.000%" for row in rows)  # FAR and its bound
    r = runner("calibrate", "--data", str(calibration_dir / "flite_rms"))
    assert r.exit_code == 1 and "no labelled audio" in r.output and "bad_calibration_data" in r.output
