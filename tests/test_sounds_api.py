"""Sound search over HTTP: insert, dedup, search, get, stream, delete, count, drop, libraries.

Runs on the small CNN14 test checkpoint (PaddleSpeech layout, random
weights with calibrated batch norm; see tests/sound_fixtures.py).
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from tests import sound_fixtures as sfx
from tests.conftest import wav_bytes
from tests.sound_fixtures import paddle_cache, panns_dir, panns_small  # noqa: F401 (fixtures)
from voiceprint.errors import StoreError
from voiceprint.services import sounds as sound_service
from voiceprint.services.reconcile import Reconciler
from voiceprint.services.sounds import LibraryCatalog, collection_name
from voiceprint.stores.records import sound_libraries, sound_tags, sounds
from voiceprint.stores.vectors import VectorStore

SERVER_BACKENDS = ["sqlite-lite", "mysql-server", "postgres-lite"]


def check_sounds(rt: Any, repair: bool = False) -> list[Any]:
    return Reconciler(rt).libraries(repair, min_file_age=0.0)


@pytest.fixture(autouse=True)
def _sound_encoder(app: Any, panns_small: Any) -> None:
    app.extensions["voiceprint"].models.put(panns_small)


@pytest.fixture(scope="module")
def lib12() -> list[sfx.Sound]:
    return sfx.library(12, seed=1)


def stored(rt: Any, want: dict[str, int] | None = None) -> dict[str, int]:
    """Rows, tags, vectors (every library's collection) and audio files stored; with
    ``want``, polled until they equal it (a Milvus server's counts lag after deletes)."""
    if want is not None:
        return sfx.eventually(lambda: stored(rt), want)
    with rt.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(sounds)).scalar_one()
        n_tags = conn.execute(sa.select(sa.func.count()).select_from(sound_tags)).scalar_one()
        libs = conn.execute(sa.select(sound_libraries)).all()
    vectors = sum(rt.vectors.count(collection_name(rt, lib.encoder, lib.id)) for lib in libs)
    return {"sounds": n, "tags": n_tags, "vectors": vectors,
            "audio_files": len(rt.blobs.keys("sounds"))}


NOTHING = {"sounds": 0, "tags": 0, "vectors": 0, "audio_files": 0}


def assert_stored(rt: Any, want: dict[str, int]) -> None:
    assert stored(rt, want) == want


def consistent(rt: Any) -> bool:
    """Every library's rows, vectors and files agree (polled, as :func:`stored`)."""
    return sfx.eventually(lambda: all(rep.ok for rep in check_sounds(rt)), True)


def files_body(items: list[tuple[bytes, str]], **form: Any) -> dict[str, Any]:
    return {"files": [(io.BytesIO(data), name) for data, name in items], **form}


def insert(client: Any, sounds_: list[sfx.Sound], **form: Any) -> Any:
    return client.post("/sounds", data=files_body([(s.encode(), s.filename) for s in sounds_], **form),
                       content_type="multipart/form-data")


def search(client: Any, data: bytes, **form: Any) -> Any:
    return client.post("/sounds/search", data={"clip": (io.BytesIO(data), "query.wav"), **form},
                       content_type="multipart/form-data")


@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_end_to_end_insert_dedup_search_stream_delete_drop(client, rt, lib12):
    # insert many files in one request, with tags
    r = insert(client, lib12[:10], tag=["source:gen", "batch:one"])
    assert r.status_code == 201, r.json
    assert [i["index"] for i in r.json["inserted"]] == list(range(10))
    assert r.json["duplicates"] == [] and r.json["rejected"] == []
    ids = {i["filename"]: i["id"] for i in r.json["inserted"]}
    assert_stored(rt, {"sounds": 10, "tags": 20, "vectors": 10, "audio_files": 10})

    # duplicates: already stored, and repeated within one request; only new bytes are stored
    r = insert(client, [lib12[2], lib12[10], lib12[10]])
    assert r.status_code == 201
    dup = {d["index"]: d for d in r.json["duplicates"]}
    assert dup[0]["id"] == ids[lib12[2].filename] and dup[0]["duplicate_of"]["id"] == dup[0]["id"]
    assert [i["index"] for i in r.json["inserted"]] == [1]
    assert dup[2]["id"] == r.json["inserted"][0]["id"]
    r = insert(client, [lib12[2]])
    assert r.status_code == 200 and r.json["inserted"] == [] and len(r.json["duplicates"]) == 1
    assert client.get("/sounds/count").json == {"library": "default", "sounds": 11, "vectors": 11}

    # search by a modified copy: the original comes first, on the cosine scale
    target = lib12[4]
    r = search(client, sfx.perturbations(target)["gain_-6dB"], top_k="3")
    assert r.status_code == 200, r.json
    res = r.json["results"]
    assert len(res) == 3 and res[0]["id"] == ids[target.filename] and res[0]["name"] == target.name
    assert 0.99 <= res[0]["score"] <= 1.0 and res[0]["score"] >= res[1]["score"] >= res[2]["score"]
    assert "cosine" in r.json["score_scale"] and r.json["strategy"] == "ann"
    assert res[0]["tags"] == {"source": "gen", "batch": "one"}
    # the exact file: score 1 and reported as a duplicate of the stored sound
    r = search(client, target.encode(), top_k="1")
    assert r.json["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert r.json["query"]["duplicate_of"] == ids[target.filename]

    # the record and its audio
    sid = ids[target.filename]
    rec = client.get(f"/sounds/{sid}").json
    assert (rec["name"], rec["filename"], rec["sample_rate"], rec["format"]) == (
        target.name, target.filename, target.sample_rate, target.fmt)
    assert rec["duration_s"] == pytest.approx(target.samples.size / target.sample_rate, abs=1e-3)
    assert rec["content_sha256"] and rec["created_at"] and rec["channels"] == 1
    audio = client.get(rec["audio_url"])
    assert audio.status_code == 200 and audio.data == target.encode()
    assert audio.content_type == sfx.CONTENT_TYPE[target.fmt]

    # delete: row, vector and file together
    assert client.delete(f"/sounds/{sid}").status_code == 204
    assert client.get(f"/sounds/{sid}").status_code == 404
    assert_stored(rt, {"sounds": 10, "tags": 18, "vectors": 10, "audio_files": 10})
    r = search(client, target.encode(), top_k="10")
    assert sid not in [x["id"] for x in r.json["results"]] and r.json["query"]["duplicate_of"] is None
    assert consistent(rt)

    # drop: guarded, then everything goes
    assert client.delete("/sounds/libraries/default").status_code == 400
    assert client.delete("/sounds/libraries/default?confirm=other").status_code == 400
    assert stored(rt)["sounds"] == 10
    coll = LibraryCatalog(rt, 1).library("default").collection
    r = client.delete("/sounds/libraries/default?confirm=default")
    assert r.status_code == 200 and r.json == {"library": "default", "dropped": True, "sounds": 10}
    assert_stored(rt, NOTHING)
    assert not rt.vectors.has_collection(coll)
    assert client.get("/sounds/count").status_code == 404
    # and the library can start again
    assert insert(client, lib12[:1]).status_code == 201
    assert client.get("/sounds/count").json["sounds"] == 1


def test_named_libraries_are_isolated(client, rt, lib12):
    assert insert(client, lib12[:4], library="effects").status_code == 201
    assert insert(client, lib12[4:8], library="music").status_code == 201
    # the same bytes may live in two libraries
    assert insert(client, lib12[:1], library="music").status_code == 201
    assert client.get("/sounds/count?library=effects").json["sounds"] == 4
    assert client.get("/sounds/count?library=music").json["sounds"] == 5
    libs = {x["name"]: x["sounds"] for x in client.get("/sounds/libraries").json}
    assert libs == {"effects": 4, "music": 5}

    r = search(client, lib12[5].encode(), library="effects", top_k="10")
    names = [x["name"] for x in r.json["results"]]
    assert sorted(names) == sorted(s.name for s in lib12[:4])
    r = search(client, lib12[5].encode(), library="music", top_k="10")
    assert r.json["results"][0]["name"] == lib12[5].name and len(r.json["results"]) == 5

    assert client.delete("/sounds/libraries/effects?confirm=effects").status_code == 200
    assert client.get("/sounds/count?library=music").json == {"library": "music", "sounds": 5,
                                                                "vectors": 5}
    assert_stored(rt, {"sounds": 5, "tags": 0, "vectors": 5, "audio_files": 5})
    assert search(client, lib12[5].encode(), library="effects").status_code == 404


def test_tag_filter_exact_and_over_fetched(client, rt, lib12, monkeypatch):
    assert insert(client, lib12[:6], tag="kind:a").status_code == 201
    assert insert(client, lib12[6:12], tag="kind:b").status_code == 201
    q = sfx.perturbations(lib12[7])["noise_20dB"]
    r = search(client, q, top_k="4", tag="kind:b")
    assert r.status_code == 200 and r.json["strategy"] == "exact" and r.json["filter"] == {"kind": "b"}
    exact = [(x["id"], x["score"]) for x in r.json["results"]]
    assert len(exact) == 4 and all(x["tags"] == {"kind": "b"} for x in r.json["results"])
    unfiltered = [x for x in search(client, q, top_k="12").json["results"] if x["tags"]["kind"] == "b"]
    assert [x["id"] for x in unfiltered[:4]] == [i for i, _ in exact]
    # the ANN path with the database filter gives the same answer
    monkeypatch.setattr(sound_service.service, "EXACT_FILTER_MAX", 0)
    r = search(client, q, top_k="4", tag="kind:b")
    assert r.json["strategy"] == "ann+filter"
    assert [(x["id"], pytest.approx(x["score"], abs=1e-4)) for x in r.json["results"]] == exact
    assert search(client, q, tag="kind:c").json["results"] == []
    assert search(client, q, tag=["kind:b", "kind:b"]).status_code == 200
    assert search(client, q, tag=["kind:a", "kind:b"]).status_code == 422
    # listing with a filter
    page = client.get("/sounds?tag=kind:a&page_size=4").json
    assert page["total"] == 6 and len(page["items"]) == 4
    assert client.get("/sounds?tag=kind:a&page=2&page_size=4").json["items"][-1]["name"] == lib12[5].name


def test_audio_streams_with_range_and_content_type(client, lib12):
    flac = next(s for s in lib12 if s.fmt == "FLAC")
    sid = insert(client, [flac]).json["inserted"][0]["id"]
    full = client.get(f"/sounds/{sid}/audio")
    assert full.status_code == 200 and full.content_type == "audio/flac"
    assert full.headers["Accept-Ranges"] == "bytes" and full.data == flac.encode()
    part = client.get(f"/sounds/{sid}/audio", headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.data == full.data[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(full.data)}"
    assert client.get("/sounds/999/audio").status_code == 404


BAD = {
    "empty": (b"", "empty"),
    "not_audio": (b"GIF89a" + bytes(300), "unreadable"),
    "text": (b"hello, this is a text file\n" * 20, "unreadable"),
    "nan": (wav_bytes(np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT"), "non_finite"),
    "silent": (wav_bytes(np.zeros(16000, dtype=np.float32), 16000), "silent"),
    "too_long": (wav_bytes(np.zeros(16000 * 301, dtype=np.int16), 16000, subtype="PCM_16"), "too_long"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_audio_is_422_and_nothing_is_stored(client, rt, name):
    data, reason = BAD[name]
    r = client.post("/sounds", data=files_body([(data, f"{name}.wav")]),
                    content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["errors"]["reason"] == "no_file_accepted"
    assert r.json["errors"]["files"][0]["reasons"][0]["reason"] == reason
    assert r.json["message"]
    assert_stored(rt, NOTHING)
    r = search(client, data)
    assert r.status_code in (404, 422)  # no library yet
    insert(client, sfx.library(1, seed=3))
    r = search(client, data)
    assert r.status_code == 422 and r.json["errors"]["reason"] == reason
    assert stored(rt)["sounds"] == 1


def test_mixed_batch_stores_the_good_files_and_explains_the_rest(client, rt, lib12):
    r = client.post("/sounds", data=files_body([(lib12[0].encode(), "a.wav"), (b"nope", "b.wav"),
                                                (BAD["silent"][0], "c.wav")]),
                    content_type="multipart/form-data")
    assert r.status_code == 201
    assert [i["filename"] for i in r.json["inserted"]] == ["a.wav"]
    assert {i["filename"]: i["reasons"][0]["reason"] for i in r.json["rejected"]} == {
        "b.wav": "unreadable", "c.wav": "silent"}
    assert_stored(rt, {"sounds": 1, "tags": 0, "vectors": 1, "audio_files": 1})


def test_request_errors_are_4xx_json(client, rt, lib12, app):
    insert(client, lib12[:2])
    q = lib12[0].encode()
    for top_k in ("0", "101", "-3", "many"):
        r = search(client, q, top_k=top_k)
        assert r.status_code == 422 and "top_k" in r.json["message"], top_k
    assert search(client, q, top_k="100").status_code == 200
    assert search(client, q, tag="nocolon").status_code == 422
    assert search(client, q, library="bad name!").status_code == 422
    assert search(client, q, library="nosuch").status_code == 404
    for method, url in (("get", "/sounds/12345"), ("delete", "/sounds/12345"),
                        ("get", "/sounds/12345/audio"), ("get", "/sounds/count?library=nosuch"),
                        ("delete", "/sounds/libraries/nosuch?confirm=nosuch")):
        r = getattr(client, method)(url)
        assert r.status_code == 404 and r.is_json and r.json["message"], url
    r = client.post("/sounds/search", data={"top_k": "3"}, content_type="multipart/form-data")
    assert r.status_code == 422
    r = client.post("/sounds", json={"files": ["x"]})
    assert r.status_code == 422
    r = insert(client, lib12[2:4], name="one name for two files")
    assert r.status_code == 422 and r.json["errors"]["reason"] == "bad_names"
    r = insert(client, lib12[2:3], name="custom")
    assert r.status_code == 201 and r.json["inserted"][0]["name"] == "custom"
    app.extensions["voiceprint"].config.MAX_CLIPS_PER_REQUEST = 2
    r = insert(client, lib12[5:8])
    assert r.status_code == 413 and r.json["errors"]["reason"] == "too_many_files"
    assert stored(rt)["sounds"] == 3


def boom(*_a: Any, **_k: Any) -> None:
    raise StoreError("injected Milvus failure")


@pytest.mark.parametrize("backend", ["sqlite-lite", "mysql-server"], indirect=True)
def test_milvus_failure_during_insert_leaves_nothing(client, rt, lib12, monkeypatch):
    assert insert(client, lib12[:2]).status_code == 201
    before = stored(rt)
    monkeypatch.setattr(rt.vectors, "upsert", boom)
    r = insert(client, lib12[2:6], tag="k:v")
    assert r.status_code == 503 and r.json["errors"]["reason"] == "store_unavailable"
    monkeypatch.undo()
    assert_stored(rt, before)
    assert consistent(rt)


def test_database_failure_after_vectors_were_written_removes_them(client, rt, lib12, monkeypatch):
    real = VectorStore.upsert

    def upsert_then_db_fails(self, *a, **k):
        real(self, *a, **k)
        raise sa.exc.OperationalError("COMMIT", {}, Exception("injected database failure"))

    monkeypatch.setattr(VectorStore, "upsert", upsert_then_db_fails)
    r = insert(client, lib12[:3])
    assert r.status_code == 503 and r.json["errors"]["reason"] == "database_error"
    monkeypatch.undo()
    assert_stored(rt, NOTHING)
    assert consistent(rt)


def test_failed_delete_keeps_the_sound_whole(client, rt, lib12, monkeypatch):
    ids = [i["id"] for i in insert(client, lib12[:3]).json["inserted"]]
    before = stored(rt)
    monkeypatch.setattr(VectorStore, "delete", lambda self, name, ids: boom())
    assert client.delete(f"/sounds/{ids[0]}").status_code == 503
    monkeypatch.undo()
    assert_stored(rt, before)
    assert client.get(f"/sounds/{ids[0]}").status_code == 200

    # the vector is removed, then the commit fails: the vector is put back
    real = VectorStore.delete

    def delete_then_db_fails(self, name, ids_):
        real(self, name, ids_)
        raise sa.exc.OperationalError("COMMIT", {}, Exception("injected database failure"))

    monkeypatch.setattr(VectorStore, "delete", delete_then_db_fails)
    assert client.delete(f"/sounds/{ids[0]}").status_code == 503
    monkeypatch.undo()
    assert_stored(rt, before)
    assert consistent(rt)
    r = search(client, lib12[0].encode(), top_k="1")
    assert r.json["results"][0]["id"] == ids[0]


def test_db_check_finds_and_repairs_sound_vectors_and_files(client, rt, lib12, runner):
    ids = [i["id"] for i in insert(client, lib12[:4]).json["inserted"]]
    lib = LibraryCatalog(rt, 1).library("default")
    rt.vectors.delete(lib.collection, [ids[1]])                                   # a lost vector
    rt.vectors.upsert(lib.collection, [987654], np.eye(1, 2048, dtype=np.float32), [lib.id],
                      tenant=1)  # orphan
    rt.blobs.put(f"sounds/{lib.id}/987654.wav", b"stray")                          # orphan file
    (report,) = check_sounds(rt)
    assert report.missing == [ids[1]] and report.orphans == [987654] and len(report.orphan_files) == 1
    assert not report.ok and report.to_dict()["library"] == "default"
    check_sounds(rt, repair=True)
    assert consistent(rt)
    assert_stored(rt, {"sounds": 4, "tags": 0, "vectors": 4, "audio_files": 4})
    assert search(client, lib12[1].encode(), top_k="1").json["results"][0]["id"] == ids[1]


def test_openapi_documents_the_sound_endpoints(client):
    spec = client.get("/openapi.json").json
    for path in ("/sounds", "/sounds/search", "/sounds/{sound_id}", "/sounds/{sound_id}/audio",
                 "/sounds/count", "/sounds/libraries", "/sounds/libraries/{library}", "/sounds/loads"):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/sounds/libraries/{library}"]["delete"]["parameters"]}
    assert "confirm" in params
    assert client.get("/docs").status_code == 200
