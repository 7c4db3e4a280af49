"""Rows, vectors and audio agree after failures, on every database and Milvus flavour."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import SENTENCES, multipart
from tests.test_enrollment import NOTHING, enroll, stored
from voiceprint.errors import StoreError
from voiceprint.services.reconcile import Reconciler
from voiceprint.stores.vectors import VectorStore

ALL_BACKENDS = ["sqlite-lite", "mysql-server", "postgres-lite"]


def check_speakers(rt, encoders=None, repair=False):
    return Reconciler(rt).speakers(encoders, repair)


@pytest.fixture(scope="module")
def clips(speak):
    return [speak(s, voice) for s, voice in zip(SENTENCES, ["flite:awb"] * 3 + ["flite:slt"] * 3)]


def boom(*_a, **_k):
    raise StoreError("injected Milvus failure")


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_enroll_identify_delete_roundtrip(client, rt, clips):
    a = client.post("/speakers", json={"external_id": "a"}).json["id"]
    b = client.post("/speakers", json={"external_id": "b"}).json["id"]
    assert enroll(client, a, clips[:3]).status_code == 201
    assert enroll(client, b, clips[3:5]).status_code == 201
    r = client.post("/identify", data=multipart(clip=clips[5]), content_type="multipart/form-data")
    assert r.status_code == 200 and r.json["candidates"][0]["external_id"] == "b"
    assert all(rep.ok for rep in check_speakers(rt))
    assert client.delete(f"/speakers/{b}").status_code == 204
    r = client.post("/identify", data=multipart(clip=clips[5]), content_type="multipart/form-data")
    assert [c["external_id"] for c in r.json["candidates"]] == ["a"]
    assert stored(rt)["vectors"] == 3 and all(rep.ok for rep in check_speakers(rt))


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
@pytest.mark.parametrize("failing_call", [1, 2], ids=["utterance-vectors", "voiceprint-vector"])
def test_milvus_failure_during_enrollment_leaves_nothing(client, rt, clips, monkeypatch, failing_call):
    sid = client.post("/speakers", json={"external_id": "a"}).json["id"]
    real, calls = rt.vectors.upsert, []

    def upsert_failing_at(*a, **k):
        calls.append(a[0])
        if len(calls) == failing_call:
            boom()
        return real(*a, **k)

    monkeypatch.setattr(rt.vectors, "upsert", upsert_failing_at)
    r = enroll(client, sid, clips[:3])
    assert r.status_code == 503 and r.json["errors"]["reason"] == "store_unavailable"
    monkeypatch.undo()
    assert stored(rt) == NOTHING
    assert all(rep.ok for rep in check_speakers(rt, ["ge2e"]))


def test_failure_after_earlier_enrollment_restores_previous_voiceprint(client, rt, clips, monkeypatch,
                                                                       speak):
    sid = client.post("/speakers", json={"external_id": "a"}).json["id"]
    assert enroll(client, sid, clips[:3]).json["enrollment"]["status"] == "enrolled"
    before = stored(rt)
    real = VectorStore.upsert
    calls = []

    def upsert_then_fail_commit(self, *a, **k):
        calls.append(a)
        real(self, *a, **k)  # call 1: utterance vectors; call 2: the speaker vector is replaced ...
        if len(calls) == 2:  # ... then the database fails before COMMIT
            raise sa.exc.OperationalError("COMMIT", {}, Exception("injected database failure"))

    monkeypatch.setattr(VectorStore, "upsert", upsert_then_fail_commit)
    r = enroll(client, sid, [speak(SENTENCES[3], "flite:awb")])  # the same voice: accepted
    assert r.status_code == 503 and r.json["errors"]["reason"] == "database_error"
    monkeypatch.undo()
    assert stored(rt) == before
    # ... and is put back: the speaker vector equals the stored voiceprint again
    reports = check_speakers(rt, ["ge2e"])
    assert all(rep.ok for rep in reports)
    q = client.post("/verify", data=multipart(clip=clips[0], external_id="a"),
                    content_type="multipart/form-data").json["score"]
    hit = client.post("/identify", data=multipart(clip=clips[0]),
                      content_type="multipart/form-data").json["candidates"][0]["score"]
    assert hit == pytest.approx(q, abs=1e-4)


def test_milvus_failure_during_delete_keeps_speaker(client, rt, clips, monkeypatch):
    sid = client.post("/speakers", json={"external_id": "a"}).json["id"]
    enroll(client, sid, clips[:3])
    before = stored(rt)
    real = VectorStore.delete
    calls = []

    def delete_once_then_fail(self, name, ids):
        calls.append(name)
        if len(calls) > 1:
            raise StoreError("injected Milvus failure")
        return real(self, name, ids)

    monkeypatch.setattr(VectorStore, "delete", delete_once_then_fail)
    r = client.delete(f"/speakers/{sid}")
    assert r.status_code == 503
    monkeypatch.undo()
    assert client.get(f"/speakers/{sid}").status_code == 200
    assert stored(rt) == before
    assert all(rep.ok for rep in check_speakers(rt))


def test_db_check_repairs_lost_and_orphan_vectors(client, rt, clips, runner):
    sid = client.post("/speakers", json={"external_id": "a"}).json["id"]
    r = enroll(client, sid, clips[:3])
    uid = r.json["accepted"][0]["utterance_id"]
    coll = rt.collection("ge2e", "utterances")
    rt.vectors.delete(coll, [uid])                       # a vector lost
    vec = rt.vectors  # an orphan: a vector with no row
    import numpy as np
    vec.insert(coll, [999999], np.eye(1, 256, dtype=np.float32), [sid], tenant=1)
    reports = {rep.collection: rep for rep in check_speakers(rt)}
    assert reports[coll].missing == [uid] and reports[coll].orphans == [999999]
    check_speakers(rt, repair=True)
    assert all(rep.ok for rep in check_speakers(rt))
