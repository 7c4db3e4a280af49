"""A bounded, authenticated fuzz run of the OpenAPI document (schemathesis): zero 5xx.

Every operation gets generated requests - valid and invalid shapes, big and
odd numbers, strange strings, random bytes as audio - sent with an API key
that holds every scope, on SQLite + Milvus Lite with the ge2e encoder. Any
answer must be below 500, and every error must be the JSON error format.
"""
from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from voiceprint.services.access import AccessService


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, ge2e: Any) -> Any:
    from voiceprint import create_app
    from voiceprint.stores import migrate
    root = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{root / 'voiceprint.db'}"
    migrate.upgrade(url)
    app = create_app({"DATA_DIR": str(root), "DATABASE_URL": url,
                      "MILVUS_URI": str(root / "milvus.db"), "AUDIO_DIR": str(root / "audio"),
                      "SPEAKER_ENCODER": "ge2e", "SOUND_ENCODER": "ge2e",
                      "PRELOAD_MODELS": False, "RATE_LIMIT": "100000/minute"})
    app.extensions["voiceprint"].models.put(ge2e)
    app.config["FUZZ_KEY"] = AccessService(app.extensions["voiceprint"]).create_key(
        "default", "fuzz", ["all"])[1]
    yield app
    app.extensions["voiceprint"].close()


def test_no_server_errors(fuzz_app: Any) -> None:
    """Up to 12 generated requests per operation (derandomised: the same run every time)."""
    from hypothesis import given

    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_KEY']}"}
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:300]}")
            elif response.status_code >= 400 and "json" in response.headers.get(
                    "Content-Type", ""):
                body = response.json()
                if not {"code", "status", "message"} <= set(body):
                    failures.append(f"{case.method} {case.formatted_path}: error body {body}")

        run()
    print(f"fuzz: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
    assert sum(statuses.values()) >= 5 * len(operations)
    assert failures == []
