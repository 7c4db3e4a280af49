"""Access control over HTTP: every route's decision, 401/403 per scope, keys, tenants, audit."""
from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import SENTENCES, multipart
from tests.sound_fixtures import paddle_cache, panns_dir, panns_small  # noqa: F401 (fixtures)
from voiceprint.api.auth import NoDecision, route_scope
from voiceprint.services.access import SCOPES, AccessService
from voiceprint.stores.records import api_keys

SERVER_BACKENDS = ["sqlite-lite", "postgres-lite", "mysql-server"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(rt: Any) -> dict[str, str]:
    """One key per scope on the default tenant, plus one with every scope ("all")."""
    access = AccessService(rt)
    out = {scope: access.create_key("default", f"only-{scope}", [scope])[1] for scope in SCOPES}
    out["all"] = access.create_key("default", "everything", ["all"])[1]
    return out


def routes(app: Any) -> list[tuple[str, str, str]]:
    """(endpoint, method, concrete path) for every route the app serves."""
    out = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "default" if m[1] == "library"
                      else ("x" if m[1] == "filename" else "1"), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, path))
    return out


def test_every_route_has_an_access_decision(app):
    undecided = []
    for endpoint, method, _ in routes(app):
        try:
            route_scope(app, endpoint, method)
        except NoDecision:
            undecided.append(f"{method} {endpoint}")
    assert not undecided, f"routes without requires()/public: {undecided}"


@pytest.mark.parametrize("backend", ["sqlite-lite", "mysql-server"], indirect=True)
def test_401_without_key_403_with_wrong_scope_for_every_route(app, client, keys):
    checked = 0
    for endpoint, method, path in routes(app):
        scope = route_scope(app, endpoint, method)
        if scope is None:
            continue
        call = getattr(client, method.lower())
        r = call(path)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json["code"] == 401 and r.json["status"] == "Unauthorized" and r.json["message"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = call(path, headers=bearer("vpk_000000000000_" + "x" * 43),  # a fresh address each
                 environ_base={"REMOTE_ADDR": f"10.0.{checked // 250}.{checked % 250}"})
        assert r.status_code == 401 and r.json["errors"]["reason"] == "bad_key"
        other = next(s for s in SCOPES if s != scope)
        r = call(path, headers=bearer(keys[other]))
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.json["errors"]["required_scope"] == scope and "lacks" in r.json["message"]
        r = call(path, headers=bearer(keys[scope]))
        assert r.status_code not in (401, 403), (method, path, r.status_code, r.json)
        checked += 1
    assert checked >= 20


def test_public_routes_need_no_key(client, keys):
    assert client.get("/health").json["auth"] == "required"
    assert client.get("/openapi.json").status_code == 200
    spec = client.get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/identify"]["post"]["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_an_install_without_keys_is_open_until_the_first_key(client, rt):
    assert client.get("/speakers").status_code == 200
    assert client.get("/health").json["auth"] == "open"
    _, secret = AccessService(rt).create_key("default", "first", ["speakers"])
    client.application.extensions["voiceprint_auth"].forget_open_state()  # cached for seconds
    assert client.get("/speakers").status_code == 401
    assert client.get("/speakers", headers=bearer(secret)).status_code == 200


def test_keys_are_stored_hashed_listed_without_secret_and_revocable(client, rt, runner):
    r = runner("keys", "create", "--name", "desk", "--scope", "recognize", "--scope", "speakers")
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    assert re.fullmatch(r"vpk_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}", secret)
    with rt.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys)).one()
    assert secret not in str(tuple(row)) and row.key_hash != secret and len(row.key_hash) == 64
    listing = runner("keys", "list").output
    assert secret not in listing and "recognize speakers" in listing and "active" in listing
    assert client.get("/speakers", headers=bearer(secret)).status_code == 200
    assert runner("keys", "revoke", row.key_prefix).exit_code == 0
    r = client.get("/speakers", headers=bearer(secret))
    assert r.status_code == 401 and r.json["errors"]["reason"] == "key_revoked"
    assert runner("keys", "revoke", row.key_prefix).exit_code == 1  # already revoked


def test_revoke_accepts_an_all_decimal_prefix_and_an_id(client, rt, runner, monkeypatch):
    """A hex prefix can be all decimal digits (p ~ 0.4%); it must not be read as an id."""
    import secrets as secrets_module
    real_token_hex = secrets_module.token_hex
    monkeypatch.setattr(secrets_module, "token_hex", lambda n=None: "418750097991")
    first = runner("keys", "create", "--name", "digits", "--scope", "speakers")
    monkeypatch.setattr(secrets_module, "token_hex", real_token_hex)
    second = runner("keys", "create", "--name", "other", "--scope", "speakers")
    assert first.exit_code == 0 and second.exit_code == 0
    digits_secret = first.output.strip().splitlines()[-1]
    other_secret = second.output.strip().splitlines()[-1]
    assert digits_secret.startswith("vpk_418750097991_")
    r = runner("keys", "revoke", "418750097991")
    assert r.exit_code == 0, r.output
    assert client.get("/speakers", headers=bearer(digits_secret)).status_code == 401
    assert client.get("/speakers", headers=bearer(other_secret)).status_code == 200
    with rt.engine.connect() as conn:
        other_id = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.name == "other")).scalar_one()
    assert runner("keys", "revoke", str(other_id)).exit_code == 0
    assert client.get("/speakers", headers=bearer(other_secret)).status_code == 401
    assert runner("keys", "revoke", "no-such-key").exit_code == 1


@pytest.fixture(scope="module")
def voices(speak) -> dict[str, list[bytes]]:
    return {v: [speak(t, v) for t in SENTENCES] for v in ("flite:awb", "flite:slt", "flite:rms")}


def _enroll(client: Any, key: str, external_id: str, clips: list[bytes]) -> int:
    sid = client.post("/speakers", json={"external_id": external_id}, headers=bearer(key)).json["id"]
    r = client.post(f"/speakers/{sid}/enrollments", data=multipart(clips=clips),
                    content_type="multipart/form-data", headers=bearer(key))
    assert r.status_code == 201 and r.json["enrollment"]["status"] == "enrolled", r.json
    return sid


@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_tenants_never_see_each_other(client, rt, voices):
    access = AccessService(rt)
    key_a = access.create_key("default", "a", ["all"])[1]
    key_b = access.create_key("tenant-b", "b", ["all"], create_tenant=True)[1]
    awb = _enroll(client, key_a, "cust-1", voices["flite:awb"][:3])
    # the same external id in another tenant is another person
    slt = _enroll(client, key_b, "cust-1", voices["flite:slt"][:3])
    assert awb != slt
    a, b = bearer(key_a), bearer(key_b)
    assert [s["id"] for s in client.get("/speakers", headers=b).json["items"]] == [slt]
    for call in (client.get, client.delete):
        r = call(f"/speakers/{awb}", headers=b)
        assert r.status_code == 404 and "does not exist" in r.json["message"]
    assert client.patch(f"/speakers/{awb}", json={"name": "x"}, headers=b).status_code == 404
    assert client.get(f"/speakers/{awb}/utterances", headers=b).status_code == 404
    r = client.post(f"/speakers/{awb}/enrollments", data=multipart(clips=voices["flite:rms"][:1]),
                    content_type="multipart/form-data", headers=b)
    assert r.status_code == 404
    # identify in tenant b with tenant a's voice: only b's speaker is ever ranked
    r = client.post("/identify", data=multipart(clip=voices["flite:awb"][4]),
                    content_type="multipart/form-data", headers=b)
    assert [c["speaker_id"] for c in r.json["candidates"]] == [slt]
    r = client.post("/identify", data=multipart(clip=voices["flite:awb"][4]),
                    content_type="multipart/form-data", headers=a)
    assert r.json["candidates"][0]["speaker_id"] == awb and slt not in [
        c["speaker_id"] for c in r.json["candidates"]]
    r = client.post("/verify", data=multipart(clip=voices["flite:awb"][4], speaker_id=str(awb)),
                    content_type="multipart/form-data", headers=b)
    assert r.status_code == 404
    # audit: each tenant's admin sees only its own records
    actions_b = {x["action"] for x in client.get("/audit?page_size=500", headers=b).json["items"]}
    targets_a = {x["target_id"] for x in client.get("/audit?page_size=500", headers=a).json["items"]}
    assert "enroll" in actions_b and slt not in targets_a
    assert client.delete(f"/speakers/{slt}", headers=b).status_code == 204
    assert client.get(f"/speakers/{awb}", headers=a).status_code == 200


def test_a_sound_library_belongs_to_one_tenant(client, rt, panns_small):
    from tests import sound_fixtures as sfx
    rt.models.put(panns_small)
    access = AccessService(rt)
    a = bearer(access.create_key("default", "a", ["all"])[1])
    b = bearer(access.create_key("tenant-b", "b", ["all"], create_tenant=True)[1])
    lib = sfx.library(3, seed=2)
    files = [(__import__("io").BytesIO(s.encode()), s.filename) for s in lib]
    r = client.post("/sounds", data={"files": files, "library": "fx"},
                    content_type="multipart/form-data", headers=a)
    assert r.status_code == 201
    sid = r.json["inserted"][0]["id"]
    assert client.get("/sounds/libraries", headers=b).json == []
    for path in (f"/sounds/{sid}", f"/sounds/{sid}/audio", "/sounds?library=fx",
                 "/sounds/count?library=fx"):
        assert client.get(path, headers=b).status_code == 404, path
    assert client.delete(f"/sounds/{sid}", headers=b).status_code == 404
    assert client.delete("/sounds/libraries/fx?confirm=fx", headers=b).status_code == 404
    q = {"clip": (__import__("io").BytesIO(lib[0].encode()), "q.wav"), "library": "fx"}
    assert client.post("/sounds/search", data=q, content_type="multipart/form-data",
                       headers=b).status_code == 404
    # b's own library of the same name is separate
    files = [(__import__("io").BytesIO(s.encode()), s.filename) for s in lib[:1]]
    r = client.post("/sounds", data={"files": files, "library": "fx"},
                    content_type="multipart/form-data", headers=b)
    assert r.status_code == 201 and r.json["inserted"][0]["id"] != sid
    assert client.get("/sounds/count?library=fx", headers=a).json["sounds"] == 3
    assert client.get("/sounds/count?library=fx", headers=b).json["sounds"] == 1



def test_no_cors_unless_origins_are_configured(app_config, ge2e):
    from voiceprint import create_app
    closed = create_app(app_config).test_client()
    r = closed.get("/speakers", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    app = create_app({**app_config, "CORS_ORIGINS": ("https://desk.example",)})
    c = app.test_client()
    r = c.options("/identify", headers={"Origin": "https://desk.example",
                                        "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "Authorization"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://desk.example"
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    r = c.get("/speakers", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
