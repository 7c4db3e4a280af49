"""Enrollment over HTTP: quality gates, per-clip reasons, status, nothing stored on bad input."""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import SENTENCES, multipart, wav_bytes
from voiceprint.stores.records import speakers, utterances, voiceprints


def stored(rt) -> dict[str, int]:
    """Rows, vectors and audio files currently stored (all must agree)."""
    with rt.engine.connect() as conn:
        n_utt = conn.execute(sa.select(sa.func.count()).select_from(utterances)).scalar_one()
        n_vp = conn.execute(sa.select(sa.func.count()).select_from(voiceprints)).scalar_one()
    return {"utterances": n_utt, "voiceprints": n_vp,
            "vectors": rt.vectors.count(rt.collection("ge2e", "utterances")),
            "speaker_vectors": rt.vectors.count(rt.collection("ge2e", "speakers")),
            "audio_files": len(rt.blobs.keys())}


NOTHING = {"utterances": 0, "voiceprints": 0, "vectors": 0, "speaker_vectors": 0, "audio_files": 0}


@pytest.fixture
def speaker(client) -> int:
    return client.post("/speakers", json={"external_id": "alice"}).json["id"]


def enroll(client, sid, clips):
    return client.post(f"/speakers/{sid}/enrollments", data=multipart(clips=clips),
                       content_type="multipart/form-data")


def test_enroll_over_two_requests_reaches_enrolled(client, rt, speaker, speak):
    r = enroll(client, speaker, [speak(SENTENCES[0])])
    assert r.status_code == 201, r.json
    assert len(r.json["accepted"]) == 1 and r.json["rejected"] == []
    first = r.json["enrollment"]
    assert first["status"] == "enrolling" and 0 < first["speech_seconds"] < 8.0
    assert first["remaining_speech_seconds"] == pytest.approx(8.0 - first["speech_seconds"], abs=1e-3)
    assert stored(rt)["speaker_vectors"] == 0  # not searchable before enrolled

    r = enroll(client, speaker, [speak(SENTENCES[1]), speak(SENTENCES[2])])
    assert r.status_code == 201
    e = r.json["enrollment"]
    assert e["status"] == "enrolled" and e["utterances"] == 3 and e["remaining_speech_seconds"] == 0
    assert stored(rt) == {"utterances": 3, "voiceprints": 1, "vectors": 3, "speaker_vectors": 1,
                          "audio_files": 3}
    assert client.get(f"/speakers/{speaker}").json["enrollment"]["status"] == "enrolled"


def test_mixed_batch_lists_accepted_and_rejected_with_reasons(client, rt, speaker, speak):
    rate = 16000
    t = np.arange(rate * 2) / rate
    clipped = np.clip(3.0 * np.sin(2 * np.pi * 220 * t), -1, 1).astype(np.float32)
    silent = np.zeros(rate * 2, dtype=np.float32)
    clips = [speak(SENTENCES[3]), wav_bytes(silent, rate), wav_bytes(clipped, rate),
             b"definitely not audio", speak("Hi.")]
    r = enroll(client, speaker, clips)
    assert r.status_code == 201
    assert [c["index"] for c in r.json["accepted"]] == [0]
    reasons = {c["index"]: [x["reason"] for x in c["reasons"]] for c in r.json["rejected"]}
    assert reasons[1] == ["silent"]
    assert "clipped" in reasons[2]
    assert reasons[3] == ["unreadable"]
    assert reasons[4] == ["too_little_speech"]
    assert all(x["message"] for c in r.json["rejected"] for x in c["reasons"])
    assert stored(rt)["utterances"] == 1 and stored(rt)["vectors"] == 1


BAD_CLIPS = {
    "empty": (b"", "empty"),
    "not_audio": (b"GIF89a" + bytes(200), "unreadable"),
    "text": (b"hello, this is a text file\n" * 20, "unreadable"),
    "nan": (wav_bytes(np.full(16000 * 2, np.nan, dtype=np.float32), 16000, subtype="FLOAT"), "non_finite"),
    "too_short": (wav_bytes(np.zeros(100, dtype=np.float32) + 0.1, 16000), None),
    "too_long": (wav_bytes(np.zeros(16000 * 301, dtype=np.int16), 16000, subtype="PCM_16"), "too_long"),
}


@pytest.mark.parametrize("name", sorted(BAD_CLIPS))
def test_bad_audio_is_4xx_and_nothing_is_stored(client, rt, speaker, name):
    data, reason = BAD_CLIPS[name]
    r = enroll(client, speaker, [data])
    assert r.status_code == 422
    assert r.json["code"] == 422 and r.json["errors"]["reason"] == "no_clip_accepted"
    got = r.json["errors"]["clips"][0]["reasons"][0]["reason"]
    if reason:
        assert got == reason
    assert stored(rt) == NOTHING
    # the same bytes as a query: 4xx, nothing stored
    r = client.post("/identify", data=multipart(clip=data), content_type="multipart/form-data")
    assert 400 <= r.status_code < 500 and r.json["message"]
    r = client.post("/verify", data=multipart(clip=data, speaker_id=str(speaker)),
                    content_type="multipart/form-data")
    assert 400 <= r.status_code < 500
    assert stored(rt) == NOTHING


def test_wrong_request_shapes(client, rt, speaker):
    r = client.post(f"/speakers/{speaker}/enrollments", json={"clips": ["x"]})
    assert r.status_code == 422
    r = client.post(f"/speakers/{speaker}/enrollments", data={"clips": "text"},
                    content_type="multipart/form-data")
    assert r.status_code == 422
    r = client.post("/speakers/999/enrollments", data=multipart(clips=[b"x"]),
                    content_type="multipart/form-data")
    assert r.status_code == 404
    r = client.post("/verify", data=multipart(clip=b"x"), content_type="multipart/form-data")
    assert r.status_code == 422 and "speaker_id" in r.json["message"] + str(r.json.get("errors"))
    assert stored(rt) == NOTHING


def test_verify_requires_enrollment(client, speaker, speak):
    enroll(client, speaker, [speak(SENTENCES[0])])
    r = client.post("/verify", data=multipart(clip=speak(SENTENCES[4]), external_id="alice"),
                    content_type="multipart/form-data")
    assert r.status_code == 409 and r.json["errors"]["reason"] == "not_enrolled"
    assert "more" in r.json["message"]


def test_too_many_clips_is_413(client, app, speaker):
    app.extensions["voiceprint"].config.MAX_CLIPS_PER_REQUEST = 2
    r = enroll(client, speaker, [b"a", b"b", b"c"])
    assert r.status_code == 413 and r.json["errors"]["reason"] == "too_many_clips"


def test_deleting_speaker_erases_rows_vectors_audio(client, rt, speaker, speak):
    enroll(client, speaker, [speak(SENTENCES[0]), speak(SENTENCES[1]), speak(SENTENCES[2])])
    assert stored(rt)["vectors"] == 3
    assert client.delete(f"/speakers/{speaker}").status_code == 204
    assert stored(rt) == NOTHING
    with rt.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(speakers)).scalar_one() == 0
