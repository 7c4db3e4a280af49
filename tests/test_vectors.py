"""VectorStore on Milvus Lite and on a real Milvus server."""
from __future__ import annotations

import numpy as np
import pytest

from voiceprint.errors import VoiceprintError
from voiceprint.stores.vectors import IndexSpec, VectorStore


@pytest.fixture(params=["lite", "server"])
def store(request, tmp_path):
    uri = (str(tmp_path / "m.db") if request.param == "lite"
           else request.getfixturevalue("milvus_server_uri"))
    vs = VectorStore(uri, index=IndexSpec.named("HNSW"))
    yield vs
    vs.drop("vt")
    vs.close()


def unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_insert_search_delete_count(store):
    x = unit(300, 16)
    store.ensure_collection("vt", 16)
    store.insert("vt", list(range(300)), x, [i % 7 for i in range(300)], tenant=1)
    assert store.count("vt") == 300 and store.ids("vt") == set(range(300))
    hits = store.search("vt", x[:5], 3, tenant=1)
    assert [h[0].id for h in hits] == [0, 1, 2, 3, 4]
    # squared L2 -> cosine, exactly as numpy computes it
    exact = x[0] @ x[hits[0][1].id]
    assert hits[0][1].cosine == pytest.approx(float(exact), abs=1e-4)
    assert hits[0][0].cosine == pytest.approx(1.0, abs=1e-5)
    only = store.search("vt", x[:1], 5, tenant=1, owners=[3])[0]
    assert only and all(h.owner == 3 for h in only)
    store.delete("vt", [0, 1])
    assert store.count("vt") == 298  # counts are Strong
    store.consistency = "Strong"  # searches are Session by default: deletes may show late
    assert store.search("vt", x[:1], 1, tenant=1)[0][0].id != 0


def test_a_search_never_ranks_another_tenants_vectors(store):
    x = unit(200, 16, seed=3)
    store.ensure_collection("vt", 16)
    store.insert("vt", list(range(100)), x[:100], list(range(100)), tenant=1)
    for i in range(100, 200, 25):  # upserts, a few rows at a time, as enrollment writes them
        store.upsert("vt", list(range(i, i + 25)), x[i:i + 25], list(range(i, i + 25)), tenant=2)
    store.consistency = "Strong"
    for tenant, own in ((1, range(100)), (2, range(100, 200))):
        hits = store.search("vt", x[[0, 150]], 50, tenant=tenant)
        assert all(h.id in own for row in hits for h in row)
        assert hits[0 if tenant == 1 else 1][0].id in (0, 150)  # its own exact match first
    assert store.search("vt", x[:1], 5, tenant=3) == [[]]


def test_legacy_collections_are_refused_until_rebuilt(store):
    from pymilvus import DataType, MilvusClient

    from voiceprint.stores.vectors import LegacyCollection
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("owner", DataType.INT64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    params = store._client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
    store._client.create_collection("vt", schema=schema, index_params=params)
    assert store.is_legacy("vt")
    with pytest.raises(LegacyCollection, match="db upgrade"):
        store.ensure_collection("vt", 8)


def test_refuses_bad_vectors_and_dimension_changes(store):
    store.ensure_collection("vt", 8)
    with pytest.raises(VoiceprintError, match="NaN"):
        store.insert("vt", [1], np.full((1, 8), np.nan, dtype=np.float32), [1], tenant=1)
    with pytest.raises(VoiceprintError, match="dim"):
        store.search("vt", unit(1, 4), 1, tenant=1)
    with pytest.raises(VoiceprintError, match="k must be"):
        store.search("vt", unit(1, 8), 0, tenant=1)
    fresh = VectorStore(store.uri) if not store.is_lite else store
    fresh._known.clear()
    with pytest.raises(VoiceprintError) as exc:
        fresh.ensure_collection("vt", 16)
    assert exc.value.reason == "dimension_mismatch"
    assert store.count("vt") == 0
