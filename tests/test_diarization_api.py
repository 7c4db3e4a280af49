"""/recordings over HTTP: a two-speaker call with one enrolled speaker, bad input, restarts."""
from __future__ import annotations

import datetime as dt
import io
import os
import socket
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa

from tests.conftest import SENTENCES, multipart, wav_bytes

pytest.importorskip("torch")
pytest.importorskip("librosa")

SR = 16_000


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def flite(speak: Callable[..., bytes]) -> dict[str, list[bytes]]:
    return {v: [speak(t, f"flite:{v}") for t in SENTENCES] for v in ("slt", "awb")}


@pytest.fixture(scope="module")
def call_wav(flite: dict[str, list[bytes]]) -> tuple[bytes, list[tuple[float, float, str]]]:
    """About 40 s of slt and awb taking turns (sentences 0-2), and the reference turns."""
    from eval.diarize_data import Plan, Source, _level, build_conversation, speech_units
    from voiceprint.audio.resample import resample

    def units(wavs: list[bytes]) -> list[np.ndarray]:
        out = []
        for w in wavs:
            x, rate = sf.read(io.BytesIO(w), dtype="float32")
            out += [_level(u) for u in speech_units(resample(x, rate, SR))]
        return out

    source = Source("flite", {v: units(flite[v][:3]) for v in flite}, {})
    conv = build_conversation(source, ["slt", "awb"], Plan(minutes=0.7), np.random.default_rng(7))
    return wav_bytes(conv.waveform, SR), conv.reference


@pytest.fixture
def key(rt: Any) -> str:
    from voiceprint.services.access import AccessService
    return AccessService(rt).create_key("default", "diarize", ["all"])[1]


def _wait(client: Any, rid: int, headers: dict[str, str], timeout: float = 240.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = client.get(f"/recordings/{rid}", headers=headers).json
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"recording {rid} still {body['status']} after {timeout} s")


def test_two_speaker_call_names_the_enrolled_voice_and_not_the_stranger(client, key, flite,
                                                                         call_wav):
    from voiceprint.scoring.der import der_components
    h = _bearer(key)
    sid = client.post("/speakers", json={"external_id": "slt"}, headers=h).json["id"]
    r = client.post(f"/speakers/{sid}/enrollments", data=multipart(clips=flite["slt"][3:]),
                    content_type="multipart/form-data", headers=h)
    assert r.status_code == 201 and r.json["enrollment"]["status"] == "enrolled", r.json
    wav, reference = call_wav
    r = client.post("/recordings", data=multipart(recording=wav, claimed_external_id="slt"),
                    content_type="multipart/form-data", headers=h)
    assert r.status_code == 202, r.json
    assert r.json["status"] in ("queued", "running") and r.headers["Location"].endswith(
        f"/recordings/{r.json['id']}")
    body = _wait(client, r.json["id"], h)
    assert body["status"] == "done", body
    assert body["progress"] == 1.0 and body["error"] is None
    res = body["result"]
    assert res["num_speakers"] == 2 and sorted(res["labels"]) == ["SPEAKER_00", "SPEAKER_01"]
    hyp = [(s["start"], s["end"], s["label"]) for s in res["segments"]]
    mapping = der_components(reference, hyp).mapping
    assert der_components(reference, hyp).der < 0.10
    by_ref = {ref: res["labels"][label] for label, ref in mapping.items()}
    slt, awb = by_ref["slt"], by_ref["awb"]
    assert slt["identification"]["decision"] == "identified"
    assert slt["identification"]["speaker"]["external_id"] == "slt"
    assert awb["identification"]["decision"] == "unknown" and awb["identification"]["speaker"] is None
    # the claim: slt's voice is accepted, awb's is not
    assert slt["verification"]["accepted"] and not awb["verification"]["accepted"]
    assert res["claim"]["best_label"] == [lab for lab, ref in mapping.items() if ref == "slt"][0]
    # segments name the identified speaker; the operating point is stated as identify's
    assert {s["speaker"] for s in res["segments"]} == {"slt", None}
    assert res["operating_point"]["threshold"] > 0 and "cosine" in res["score_scale"]
    assert sum(e["speech_seconds"] for e in res["labels"].values()) > 25
    listed = client.get("/recordings", headers=h).json
    assert listed["total"] == 1 and listed["items"][0]["status"] == "done"
    assert "result" not in listed["items"][0] and listed["items"][0]["num_speakers"] == 2
    # audited; then deleted
    audit = client.get("/audit?action=diarize", headers=h).json
    assert {"queued", "done"} <= {e["outcome"] for e in audit["items"]}
    assert client.delete(f"/recordings/{body['id']}", headers=h).status_code == 204
    assert client.get(f"/recordings/{body['id']}", headers=h).status_code == 404


@pytest.fixture
def small_limits(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config.update(RECORDING_MAX_BYTES=400_000, RECORDING_MAX_SECONDS=10.0)
    return app_config


def test_bad_and_oversized_uploads_are_refused_at_once(small_limits, client, key):
    h = _bearer(key)
    tone = (0.1 * np.sin(np.arange(12 * SR) / SR * 2 * np.pi * 220)).astype(np.float32)

    def post(**fields: Any) -> Any:
        return client.post("/recordings", data=multipart(**fields),
                           content_type="multipart/form-data", headers=h)

    r = post(recording=b"this is not audio at all" * 50)
    assert r.status_code == 422 and r.json["errors"]["reason"] == "unreadable"
    r = post(recording=wav_bytes(tone[: SR // 4], SR))
    assert r.status_code == 422 and r.json["errors"]["reason"] == "too_short"
    r = post(recording=wav_bytes(tone, SR))  # 12 s > 10 s
    assert r.status_code == 413 and r.json["errors"]["reason"] == "too_long"
    r = post(recording=wav_bytes(np.concatenate([tone, tone]), 48_000))  # > 400 kB
    assert r.status_code == 413 and r.json["errors"]["reason"] == "too_large"
    assert post().status_code == 422  # no file
    r = post(recording=wav_bytes(tone[:5 * SR], SR), num_speakers="0")
    assert r.status_code == 422
    r = post(recording=wav_bytes(tone[:5 * SR], SR), claimed_external_id="nobody")
    assert r.status_code == 404
    assert client.get("/recordings", headers=h).json["total"] == 0  # nothing was stored


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_job_interrupted_by_a_restart_ends_failed(app_config, ge2e, key, client, rt):
    """A job whose process died (restart, kill -9) is failed as 'interrupted', not left hanging."""
    from voiceprint import create_app
    from voiceprint.stores.records import recordings
    h = _bearer(key)
    jobs = client.application.extensions["voiceprint_recordings"]
    jobs.submit = lambda rid: None  # accepted, never run: the process "dies" before the worker
    tone = (0.1 * np.sin(np.arange(5 * SR) / SR * 2 * np.pi * 220)).astype(np.float32)
    r = client.post("/recordings", data=multipart(recording=wav_bytes(tone, SR)),
                    content_type="multipart/form-data", headers=h)
    assert r.status_code == 202
    rid = r.json["id"]
    key_of = jobs.files.path
    with rt.engine.begin() as conn:  # it was running in a process that is gone now
        audio_key = conn.execute(sa.select(recordings.c.audio_key)
                                 .where(recordings.c.id == rid)).scalar_one()
        conn.execute(recordings.update().where(recordings.c.id == rid).values(
            status="running", worker=f"{socket.gethostname()[:40]}:{_dead_pid()}:dead0000"))
    assert key_of(audio_key).exists()
    leftover = jobs.files.path("1/leftover.upload")  # a file no row names (killed mid-submit)
    leftover.write_bytes(b"x")
    old = time.time() - jobs.settings.stale_seconds - 5
    os.utime(leftover, (old, old))
    restarted = create_app(app_config)  # the service starts again
    restarted.extensions["voiceprint"].models.put(ge2e)
    try:
        body = restarted.test_client().get(f"/recordings/{rid}", headers=h).json
        assert body["status"] == "failed" and body["error"]["reason"] == "interrupted"
        assert "upload it again" in body["error"]["message"]
        assert not key_of(audio_key).exists()  # the upload is not kept
        assert not leftover.exists()
    finally:
        restarted.extensions["voiceprint"].close()


def test_a_job_without_heartbeat_is_failed_when_read(app_config, key, client, rt):
    from voiceprint.stores.records import recordings
    h = _bearer(key)
    jobs = client.application.extensions["voiceprint_recordings"]
    jobs.submit = lambda rid: None
    tone = (0.1 * np.sin(np.arange(5 * SR) / SR * 2 * np.pi * 220)).astype(np.float32)
    rid = client.post("/recordings", data=multipart(recording=wav_bytes(tone, SR)),
                      content_type="multipart/form-data", headers=h).json["id"]
    assert client.get(f"/recordings/{rid}", headers=h).json["status"] == "queued"
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=jobs.settings.stale_seconds + 5)
    with rt.engine.begin() as conn:  # another host's worker stopped renewing it
        conn.execute(recordings.update().where(recordings.c.id == rid).values(
            worker="elsewhere:1:x", updated_at=old))
    body = client.get(f"/recordings/{rid}", headers=h).json
    assert body["status"] == "failed" and body["error"]["reason"] == "interrupted"


def test_recordings_belong_to_one_tenant(client, rt, key):
    from voiceprint.services.access import AccessService
    other = AccessService(rt).create_key("tenant-b", "b", ["recognize"], create_tenant=True)[1]
    jobs = client.application.extensions["voiceprint_recordings"]
    jobs.submit = lambda rid: None
    tone = (0.1 * np.sin(np.arange(5 * SR) / SR * 2 * np.pi * 220)).astype(np.float32)
    rid = client.post("/recordings", data=multipart(recording=wav_bytes(tone, SR)),
                      content_type="multipart/form-data", headers=_bearer(key)).json["id"]
    b = _bearer(other)
    assert client.get(f"/recordings/{rid}", headers=b).status_code == 404
    assert client.delete(f"/recordings/{rid}", headers=b).status_code == 404
    assert client.get("/recordings", headers=b).json["total"] == 0


def test_without_enrolled_speakers_every_voice_is_reported_as_such(client, key, call_wav):
    h = _bearer(key)
    r = client.post("/recordings", data=multipart(recording=call_wav[0], num_speakers="2"),
                    content_type="multipart/form-data", headers=h)
    body = _wait(client, r.json["id"], h)
    assert body["status"] == "done", body
    res = body["result"]
    assert res["num_speakers"] == 2 and res["num_speakers_given"] == 2 and res["claim"] is None
    assert {e["identification"]["decision"] for e in res["labels"].values()} == {"no_speakers"}
    assert all(s["speaker"] is None for s in res["segments"])
