"""Speaker CRUD over HTTP and the JSON error format."""
from __future__ import annotations


def test_create_get_update_list_delete(client):
    r = client.post("/speakers", json={"external_id": "cust-1", "name": "Ada", "metadata": {"tier": "gold"}})
    assert r.status_code == 201
    sid = r.json["id"]
    assert r.json["enrollment"]["status"] == "enrolling"
    assert r.json["enrollment"]["remaining_speech_seconds"] == 8.0

    r = client.get(f"/speakers/{sid}")
    assert r.status_code == 200 and r.json["metadata"] == {"tier": "gold"}

    r = client.patch(f"/speakers/{sid}", json={"name": "Ada L.", "metadata": {"tier": "silver"}})
    assert r.status_code == 200 and r.json["name"] == "Ada L." and r.json["metadata"]["tier"] == "silver"

    for i in range(2, 6):
        assert client.post("/speakers", json={"external_id": f"cust-{i}"}).status_code == 201
    page = client.get("/speakers?page=2&page_size=2").json
    assert page["total"] == 5 and [s["external_id"] for s in page["items"]] == ["cust-3", "cust-4"]
    assert client.get("/speakers?external_id=cust-5").json["items"][0]["external_id"] == "cust-5"

    assert client.delete(f"/speakers/{sid}").status_code == 204
    r = client.get(f"/speakers/{sid}")
    assert r.status_code == 404
    assert r.json["code"] == 404 and r.json["status"] == "Not Found" and "does not exist" in r.json["message"]


def test_duplicate_external_id_is_409(client):
    assert client.post("/speakers", json={"external_id": "x"}).status_code == 201
    r = client.post("/speakers", json={"external_id": "x"})
    assert r.status_code == 409 and r.json["errors"]["reason"] == "duplicate_external_id"
    other = client.post("/speakers", json={"external_id": "y"}).json["id"]
    r = client.patch(f"/speakers/{other}", json={"external_id": "x"})
    assert r.status_code == 409


def test_validation_errors_are_422_json(client):
    r = client.post("/speakers", json={"name": "no id"})
    assert r.status_code == 422 and "external_id" in str(r.json["errors"])
    r = client.post("/speakers", json={"external_id": "a", "unexpected": 1})
    assert r.status_code == 422
    r = client.post("/speakers", data="not json", content_type="text/plain")
    assert r.status_code in (415, 422)
    assert client.get("/speakers?page=0").status_code == 422
    assert client.get("/speakers?page_size=100000").status_code == 422
    assert client.get("/speakers").json["total"] == 0


def test_openapi_documents_every_blueprint(client):
    spec = client.get("/openapi.json").json
    for path in ("/speakers", "/speakers/{speaker_id}/enrollments", "/identify", "/verify"):
        assert path in spec["paths"]
    assert "cosine" in str(spec["paths"]["/identify"]).lower() or "cosine" in str(spec["components"]).lower()
    assert client.get("/docs").status_code == 200


def test_responses_say_where_the_time_went(client):
    r = client.get("/speakers")
    assert "total;dur=" in r.headers["Server-Timing"] and r.headers["X-Request-ID"]
