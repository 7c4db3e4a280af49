"""The generated OpenAPI document is valid OpenAPI 3 and describes every multipart field."""
from __future__ import annotations

import pytest
from openapi_spec_validator import validate

MULTIPART = {
    ("/identify", "post"): {"clip", "top_k", "operating_point"},
    ("/verify", "post"): {"clip", "speaker_id", "external_id", "operating_point"},
    ("/sounds", "post"): {"files", "library", "tag", "name"},
    ("/sounds/search", "post"): {"clip", "library", "top_k", "tag"},
    ("/speakers/{speaker_id}/enrollments", "post"): {"clips", "replace"},
}


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").json


def test_the_document_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


@pytest.mark.parametrize("path,method", sorted(MULTIPART))
def test_every_multipart_field_is_in_the_body_schema(spec, path, method):
    operation = spec["paths"][path][method]
    assert not [p for p in operation.get("parameters", []) if p.get("in") == "formData"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    props = spec["components"]["schemas"][name]["properties"]
    assert set(props) == MULTIPART[(path, method)]
    files = [k for k, v in props.items()
             if v.get("format") == "binary" or v.get("items", {}).get("format") == "binary"]
    assert files and all(k in ("clip", "clips", "files") for k in files)
