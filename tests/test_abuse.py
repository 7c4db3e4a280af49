"""Abuse resistance: voiceprint poisoning, duplicates, verify lock-out, rate limits, hostile input."""
from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SENTENCES, multipart
from voiceprint.services.access import AccessService


@pytest.fixture(scope="module")
def voices(speak) -> dict[str, list[bytes]]:
    return {v: [speak(t, v) for t in SENTENCES] for v in ("flite:awb", "flite:slt")}


def enroll(client: Any, sid: int, clips: list[bytes], **form: Any) -> Any:
    return client.post(f"/speakers/{sid}/enrollments", data=multipart(clips=clips, **form),
                       content_type="multipart/form-data")


def verify(client: Any, sid: int, clip: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post("/verify", data=multipart(clip=clip, speaker_id=str(sid)),
                       content_type="multipart/form-data", headers=headers or {})


@pytest.fixture
def awb(client, voices) -> int:
    sid = client.post("/speakers", json={"external_id": "awb"}).json["id"]
    r = enroll(client, sid, voices["flite:awb"][:3])
    assert r.json["enrollment"]["status"] == "enrolled"
    return sid


def test_an_impostor_cannot_add_their_voice_to_an_enrolled_voiceprint(client, awb, voices):
    before = verify(client, awb, voices["flite:slt"][5]).json
    assert before["accepted"] is False
    r = enroll(client, awb, voices["flite:slt"][:3])
    assert r.status_code == 422 and r.json["errors"]["reason"] == "no_clip_accepted"
    reasons = [c["reasons"][0] for c in r.json["errors"]["clips"]]
    assert {x["reason"] for x in reasons} == {"voice_mismatch"}
    assert all(x["score"] < x["threshold"] for x in reasons)
    after = verify(client, awb, voices["flite:slt"][5]).json
    assert after["accepted"] is False and after["score"] == pytest.approx(before["score"], abs=1e-6)
    assert client.get(f"/speakers/{awb}").json["enrollment"]["utterances"] == 3
    # the owner's own new clip is welcome
    r = enroll(client, awb, voices["flite:awb"][3:4])
    assert r.status_code == 201 and r.json["accepted"][0]["score"] >= \
        verify(client, awb, voices["flite:awb"][5]).json["threshold"]


def test_replacing_a_voiceprint_needs_the_speakers_scope(client, rt, awb, voices):
    access = AccessService(rt)
    enroll_only = {"Authorization": "Bearer " + access.create_key("default", "e", ["enroll"])[1]}
    manager = {"Authorization": "Bearer " + access.create_key("default", "m",
                                                              ["enroll", "speakers"])[1]}
    client.application.extensions["voiceprint_auth"].forget_open_state()
    r = client.post(f"/speakers/{awb}/enrollments",
                    data=multipart(clips=voices["flite:slt"][:3], replace="true"),
                    content_type="multipart/form-data", headers=enroll_only)
    assert r.status_code == 403 and r.json["errors"]["required_scope"] == "speakers"
    r = client.post(f"/speakers/{awb}/enrollments",
                    data=multipart(clips=voices["flite:slt"][:3], replace="true"),
                    content_type="multipart/form-data", headers=manager)
    assert r.status_code == 201 and r.json["replaced"] is True
    assert r.json["enrollment"]["utterances"] == 3
    assert client.get(f"/speakers/{awb}/utterances", headers=manager).json["total"] == 3
    assert len(rt.blobs.keys(f"utterances/{awb}/")) == 3  # the old audio is gone


def test_a_recording_counts_once(client, voices):
    sid = client.post("/speakers", json={"external_id": "x"}).json["id"]
    clip = voices["flite:awb"][0]
    r = enroll(client, sid, [clip] * 10)
    assert r.status_code == 201
    assert len(r.json["accepted"]) == 1
    dups = r.json["rejected"]
    assert len(dups) == 9 and {d["reasons"][0]["reason"] for d in dups} == {"duplicate"}
    once = r.json["enrollment"]["speech_seconds"]
    assert once < 8.0 and r.json["enrollment"]["status"] == "enrolling"
    r = enroll(client, sid, [clip])
    assert r.status_code == 422
    assert r.json["errors"]["clips"][0]["reasons"][0]["reason"] == "duplicate"
    assert client.get(f"/speakers/{sid}").json["enrollment"]["speech_seconds"] == once


def test_repeated_rejects_lock_the_claim(client, rt, awb, voices):
    from voiceprint.api.limits import VerifyLockout
    rt.config.VERIFY_MAX_REJECTS = 3
    client.application.extensions["voiceprint_lockout"] = VerifyLockout(rt.config)
    for _ in range(3):
        assert verify(client, awb, voices["flite:slt"][5]).json["accepted"] is False
    r = verify(client, awb, voices["flite:awb"][5])  # even the owner waits: the claim is locked
    assert r.status_code == 429 and r.json["errors"]["reason"] == "verify_locked"
    assert 1 <= int(r.headers["Retry-After"]) <= rt.config.VERIFY_LOCKOUT_SECONDS + 1
    audit = client.get("/audit?action=verify_locked").json
    assert audit["total"] == 1 and audit["items"][0]["target_id"] == awb


@pytest.mark.parametrize("backend", ["mysql-server"], indirect=True)
def test_verify_lockout_is_shared_through_redis_by_two_workers(app_config, ge2e, voices):
    """Two app instances side by side (as two gunicorn workers on MariaDB + the Milvus
    server) share the lock-out through Redis."""
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    from voiceprint import create_app
    cfg = {**app_config, "REDIS_URL": url, "VERIFY_MAX_REJECTS": 2,
           "MILVUS_URI": app_config["MILVUS_URI"]}
    one, two = create_app(cfg), create_app(cfg)
    for app in (one, two):
        app.extensions["voiceprint"].models.put(ge2e)
    c1, c2 = one.test_client(), two.test_client()
    sid = c1.post("/speakers", json={"external_id": "awb"}).json["id"]
    assert enroll(c1, sid, voices["flite:awb"][:3]).status_code == 201
    assert verify(c2, sid, voices["flite:slt"][5]).json["accepted"] is False  # worker 2
    assert verify(c1, sid, voices["flite:slt"][4]).json["accepted"] is False  # worker 1
    for c in (c1, c2):  # two rejects in all: both workers now refuse the claim
        r = verify(c, sid, voices["flite:slt"][3])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    for app in (one, two):
        app.extensions["voiceprint"].close()
    redis.Redis.from_url(url).flushdb()


def test_rate_limit_per_key(app_config, ge2e):
    from voiceprint import create_app
    app = create_app({**app_config, "RATE_LIMIT": "3/minute"})
    rt = app.extensions["voiceprint"]
    access = AccessService(rt)
    k1 = {"Authorization": "Bearer " + access.create_key("default", "1", ["speakers"])[1]}
    k2 = {"Authorization": "Bearer " + access.create_key("default", "2", ["speakers"])[1]}
    c = app.test_client()
    assert [c.get("/speakers", headers=k1).status_code for _ in range(4)] == [200, 200, 200, 429]
    r = c.get("/speakers", headers=k1)
    assert r.status_code == 429 and r.json["code"] == 429 and int(r.headers["Retry-After"]) > 0
    assert c.get("/speakers", headers=k2).status_code == 200  # another key has its own budget
    assert c.get("/health").status_code == 200  # liveness is never limited
    rt.close()


# -- hostile input --------------------------------------------------------------------------
def test_garbage_answers_4xx_and_stores_nothing(client, rt, voices):
    sid = client.post("/speakers", json={"external_id": "ok"}).json["id"]
    assert client.get(f"/speakers/{2**64}").status_code == 404
    assert client.get(f"/speakers/{2**63}").status_code == 404
    assert client.get(f"/sounds/{10**30}").status_code == 404
    assert client.get(f"/speakers?page={2**63 - 1}").status_code == 422
    deep = '{"external_id": "d", "metadata": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}"
    r = client.post("/speakers", data=deep, content_type="application/json")
    assert r.status_code == 400 and "nested" in r.json["message"]
    r = client.post("/speakers", data='{"external_id": "n", "metadata": {"x": NaN}}',
                    content_type="application/json")
    assert r.status_code == 400 and "NaN" in r.json["message"]
    r = client.post("/speakers", json={"external_id": "m", "metadata": {"a": {"b": {"c": {"d": {
        "e": {"f": {"g": {"h": {"i": 1}}}}}}}}}})
    assert r.status_code == 422 and r.json["errors"]["reason"] == "bad_metadata"
    r = client.post("/speakers", json={"external_id": "big", "metadata": {"x": "y" * 20000}})
    assert r.status_code == 413
    r = client.post(f"/speakers/{sid}/enrollments",
                    data={"clips": [(io.BytesIO(voices["flite:awb"][0]), "a\x00b.wav")]},
                    content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["errors"]["reason"] == "bad_filename"
    r = enroll(client, sid, [b"RIFF....WAVEfmt garbage" * 20])
    message = json.dumps(r.json)
    assert r.status_code == 422 and "<_io" not in message and "0x" not in message
    listed = client.get("/speakers").json
    assert [s["external_id"] for s in listed["items"]] == ["ok"]
    assert all(s["enrollment"]["utterances"] == 0 for s in listed["items"])
    assert not rt.blobs.keys()


def test_timestamps_are_rfc3339_with_a_timezone_and_ids_are_never_reused(client):
    a = client.post("/speakers", json={"external_id": "a"}).json
    assert a["created_at"].endswith("+00:00")
    assert client.delete(f"/speakers/{a['id']}").status_code == 204
    b = client.post("/speakers", json={"external_id": "b"}).json
    assert b["id"] > a["id"]


@pytest.mark.parametrize("backend", ["mysql-server", "postgres-lite", "sqlite-lite"], indirect=True)
def test_external_ids_match_exactly(client):
    ids = ["Ab", "ab", "ab ", "äb"]
    made = [client.post("/speakers", json={"external_id": e}).status_code for e in ids]
    assert made == [201] * 4
    for e in ids:
        items = client.get("/speakers", query_string={"external_id": e}).json["items"]
        assert [s["external_id"] for s in items] == [e]
    assert client.post("/speakers", json={"external_id": "ab "}).status_code == 409


def test_store_errors_name_no_host_or_path(client, rt, voices, monkeypatch):
    from voiceprint.stores.vectors import VectorStore

    def broken(*_a: Any, **_k: Any) -> Any:
        raise ConnectionError("connect to 10.1.2.3:19530 failed (/var/lib/milvus)")

    sid = client.post("/speakers", json={"external_id": "s"}).json["id"]
    monkeypatch.setattr(rt.vectors._client, "insert", broken)
    r = enroll(client, sid, voices["flite:awb"][:3])
    assert r.status_code == 503
    text = json.dumps(r.json)
    assert "10.1.2.3" not in text and "19530" not in text and "/var/lib" not in text
    monkeypatch.setattr(VectorStore, "collections", broken)
    health = client.get("/health").json
    assert health["status"] == "degraded" and health["vectors"] == "unavailable"
    assert client.get("/health/ready").status_code == 503


def test_a_huge_multichannel_flac_is_refused_from_its_header(client, rt):
    """8 channels, 192 kHz, 299 s of near-silence: a few hundred KB of FLAC."""
    import time
    rate, seconds, channels = 192_000, 299, 8
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((rate, channels), np.float32)
        first = block.copy()
        first[:2000] = 1e-3
        f.write(first)
        for _ in range(seconds - 1):
            f.write(block)
    data = buf.getvalue()
    assert len(data) < 2**20  # about 0.5 MB: far below any upload limit
    sid = client.post("/speakers", json={"external_id": "f"}).json["id"]
    t0 = time.perf_counter()
    r = client.post(f"/speakers/{sid}/enrollments", data={"clips": [(io.BytesIO(data), "x.flac")]},
                    content_type="multipart/form-data")
    elapsed = time.perf_counter() - t0
    assert r.status_code in (413, 422)
    reason = r.json["errors"].get("reason")
    clip_reasons = [x["reason"] for c in r.json["errors"].get("clips", []) for x in c["reasons"]]
    assert reason == "too_much_audio" or clip_reasons == ["too_many_channels"] or \
        clip_reasons == ["too_much_audio"]
    assert elapsed < 2.0, f"refusing took {elapsed:.1f} s"
    assert not rt.blobs.keys()


def test_a_key_scanner_is_slowed_down_without_audit_floods(client, rt):
    AccessService(rt).create_key("default", "real", ["speakers"])
    client.application.extensions["voiceprint_auth"].forget_open_state()
    codes = [client.get("/speakers", headers={"Authorization": f"Bearer vpk_{i:012x}_" + "x" * 43})
             .status_code for i in range(40)]
    assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}
    audited = client.get("/audit?action=auth_failed", headers={
        "Authorization": "Bearer " + AccessService(rt).create_key("default", "a", ["admin"])[1]})
    assert audited.status_code == 429  # the scanner's address (the test client) is still locked
    from voiceprint.services import audit
    assert audit.query(rt.engine, tenant_id=None, action="auth_failed")["total"] == 30


def test_a_second_voice_in_one_enrollment_is_refused(client, voices):
    sid = client.post("/speakers", json={"external_id": "mixed"}).json["id"]
    r = enroll(client, sid, [*voices["flite:awb"][:3], voices["flite:slt"][0]])
    assert r.status_code == 201
    assert [c["index"] for c in r.json["accepted"]] == [0, 1, 2]
    (odd,) = r.json["rejected"]
    assert odd["index"] == 3 and odd["reasons"][0]["reason"] == "different_speaker"
    assert all(not c["warnings"] for c in r.json["accepted"])
