"""Small, fast runs of the eval/ entry points and checks of their building blocks.

The full benchmarks (650k vectors, all of FSDD) are run by hand; these tests
only prove that every entry point runs end to end and writes sane results.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

FSDD = Path(os.environ.get("VOICEPRINT_FSDD", "/work/shared/data/fsdd/recordings"))


# --------------------------------------------------------------------------- helpers
def _voice(f0: float, formants: tuple[float, float], seconds: float, seed: int,
           sr: int = 16000) -> np.ndarray:
    """A crude voiced sound: harmonics of ``f0`` Hz shaped by two resonances, plus noise."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    vibrato = 1 + 0.02 * np.sin(2 * np.pi * (4 + rng.random()) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sr
    x = sum(np.sin(h * phase) / h for h in range(1, 30))
    for fc in formants:
        r = 0.97
        theta = 2 * np.pi * fc / sr
        x = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.01 * rng.standard_normal(t.size)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


VOICES = {  # speaker -> (f0 Hz, formants Hz)
    "id00001": (110.0, (700.0, 1200.0)), "id00002": (140.0, (500.0, 1800.0)),
    "id00003": (190.0, (800.0, 2200.0)), "id00004": (230.0, (400.0, 1000.0)),
    "id00800": (125.0, (650.0, 1500.0)), "id00801": (210.0, (550.0, 2500.0)),
}


def make_fake_cnceleb(root: Path) -> Path:
    """A CN-Celeb-shaped corpus: 4 training speakers, 2 evaluation speakers.

    Evaluation audio is FLAC while the lists name ``.wav`` files, as in the
    CN-Celeb FLAC release.
    """
    import soundfile as sf

    for spk in ("id00001", "id00002", "id00003", "id00004"):
        d = root / "data" / spk
        d.mkdir(parents=True)
        f0, fm = VOICES[spk]
        for i in range(4):
            sf.write(d / f"interview-01-{i:03d}.wav", _voice(f0, fm, 0.8, i), 16000)
    (root / "dev").mkdir()
    (root / "dev" / "dev.lst").write_text("id00001\nid00002\nid00003\nid00004\n")
    for sub in ("enroll", "test", "lists"):
        (root / "eval" / sub).mkdir(parents=True)
    enroll_lines, trial_lines = [], []
    for spk in ("id00800", "id00801"):
        f0, fm = VOICES[spk]
        sf.write(root / "eval" / "enroll" / f"{spk}-enroll.flac", _voice(f0, fm, 2.0, 7), 16000)
        enroll_lines.append(f"{spk}-enroll enroll/{spk}-enroll.wav")
        for i in range(2):
            sf.write(root / "eval" / "test" / f"{spk}-speech-01-{i:03d}.flac",
                     _voice(f0, fm, 1.0, 20 + i), 16000)
    for e in ("id00800", "id00801"):
        for t in ("id00800", "id00801"):
            for i in range(2):
                trial_lines.append(f"{e}-enroll test/{t}-speech-01-{i:03d}.wav {int(e == t)}")
    (root / "eval" / "lists" / "enroll.lst").write_text("\n".join(enroll_lines) + "\n")
    (root / "eval" / "lists" / "trials.lst").write_text("\n".join(trial_lines) + "\n")
    return root


def _check_rows(rows: list[dict]) -> None:
    assert rows
    for r in rows:
        assert 0.0 <= r["recall_at_10"] <= 1.0
        assert r["p50_ms"] is None or r["p50_ms"] > 0
    exact = [r for r in rows if r["index"] in ("exact", "FLAT")]
    assert exact, "no exact-search row"
    for r in exact:
        assert r["recall_at_10"] == 1.0, r


# --------------------------------------------------------------------------- building blocks
def test_exact_topk_matches_full_sort_with_ties() -> None:
    from eval.search_bench import exact_topk

    rng = np.random.default_rng(3)
    base = np.round(rng.standard_normal((3000, 6)), 1).astype(np.float32)  # many exact ties
    queries = np.round(rng.standard_normal((50, 6)), 1).astype(np.float32)
    ids, scores = exact_topk(base, queries, 10, query_chunk=16, base_chunk=700, first_block=50)
    sims = queries @ base.T
    ref = np.lexsort((np.broadcast_to(np.arange(3000), sims.shape), -sims), axis=1)[:, :10]
    np.testing.assert_array_equal(ids, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, ref, 1), rtol=1e-6)


def test_synthetic_geometry_and_determinism() -> None:
    from eval.synthetic import (SyntheticSpec, cosine_stats, enroll_set, iter_enroll_chunks,
                                query_set)

    spec = SyntheticSpec(chunk=1000).scaled(0.004)
    assert (spec.n_enroll, spec.n_query, spec.n_speakers) == (2600, 40, 12)
    owners, vectors = enroll_set(spec)
    assert vectors.dtype == np.float32 and vectors.shape == (2600, 192)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    stats = cosine_stats(owners, vectors)
    assert 0.55 < stats["within_mean"] < 0.75
    assert abs(stats["between_mean"]) < 0.05
    again = next(iter_enroll_chunks(spec))
    np.testing.assert_array_equal(again[2], vectors[:1000])
    q_owners, queries = query_set(spec)
    assert set(q_owners) <= set(owners)
    assert not np.isin(queries.view("V768"), vectors.view("V768")).any()  # held out


def test_fake_corpus_layout_is_resolved(tmp_path: Path) -> None:
    from eval.cnceleb import load_corpus

    corpus = load_corpus([make_fake_cnceleb(tmp_path / "CN-Celeb_flac")])
    assert len(corpus.train) == 16
    assert {s for s, _ in corpus.train} == {"id00001", "id00002", "id00003", "id00004"}
    assert sorted(corpus.enroll) == ["id00800-enroll", "id00801-enroll"]
    assert all(p.suffix == ".flac" for ps in corpus.enroll.values() for p in ps)
    assert len(corpus.trials) == 8 and sum(y for _, _, y in corpus.trials) == 4


# --------------------------------------------------------------------------- entry points
def test_cnceleb_synthetic_on_milvus_lite(tmp_path: Path) -> None:
    from eval import cnceleb

    out = tmp_path / "out"
    rc = cnceleb.main(["--synthetic", "--scale", "0.002", "--backends", "lite=FLAT",
                       "--ef", "10,64", "--nprobe", "1,16", "--single-queries", "5",
                       "--lite-single-queries", "5", "--exact-single-queries", "5",
                       "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    assert not data["errors"]
    _check_rows(data["rows"])
    backends = {(r["backend"], r["index"]) for r in data["rows"]}
    assert {("numpy", "exact"), ("faiss", "FLAT"), ("faiss", "HNSW"),
            ("milvus-lite", "FLAT")} <= backends
    assert [r["params"]["ef"] for r in data["rows"] if r["index"] == "HNSW"] == [10, 64]
    lite = next(b for b in data["builds"] if b["backend"] == "milvus-lite")
    assert lite["rows"] == data["data"]["n_enroll"] == 1300
    assert data["machine"]["cores"] and data["machine"]["packages"]["pymilvus"]
    assert (out / "recall_latency.png").stat().st_size > 0
    assert "recall@10" in (out / "README.md").read_text()


def test_cnceleb_corpus_mode_with_ge2e(tmp_path: Path) -> None:
    pytest.importorskip("resemblyzer")
    from eval import cnceleb

    corpus = make_fake_cnceleb(tmp_path / "CN-Celeb_flac")
    argv = ["--data", str(corpus), "--encoder", "ge2e", "--cache-dir", str(tmp_path / "cache"),
            "--backends", "lite=FLAT", "--no-faiss", "--single-queries", "3",
            "--lite-single-queries", "3", "--exact-single-queries", "3"]
    assert cnceleb.main([*argv, "--out", str(tmp_path / "run1")]) == 0
    data = json.loads((tmp_path / "run1" / "results.json").read_text())
    _check_rows(data["rows"])
    assert data["enrolled"] == 16 and data["speakers"] == 4 and data["queries"] == 4
    assert data["encoder"]["name"] == "ge2e"
    ver = data["verification"]
    assert ver["trials"] == 8 and ver["targets"] == 4
    assert 0.0 <= ver["eer_cosine"] <= 1.0 and ver["min_dcf_0.01_cosine"] >= 0.0
    if importlib.util.find_spec("voiceprint.scoring.normalization") is not None:
        assert 0.0 <= ver["eer_as_norm"] <= 1.0, ver.get("as_norm")
    emb = data["embedding"]
    assert emb["clips"] == 16 + 2 + 4 and emb["embedded_now"] == 22 and emb["failed"] == 0
    assert emb["embed_ms_per_clip"] > 0

    # a rerun takes every embedding from the cache
    assert cnceleb.main([*argv, "--backends", "none", "--no-reference",
                         "--out", str(tmp_path / "run2")]) == 0
    emb2 = json.loads((tmp_path / "run2" / "results.json").read_text())["embedding"]
    assert emb2["embedded_now"] == 0 and emb2["from_cache"] == 22


def test_speakers_on_generated_folders(tmp_path: Path) -> None:
    pytest.importorskip("resemblyzer")
    import soundfile as sf

    from eval import speakers

    data = tmp_path / "voices"
    for n, spk in enumerate(("id00001", "id00002", "id00003")):
        (data / spk).mkdir(parents=True)
        f0, fm = VOICES[spk]
        for i in range(4):
            sf.write(data / spk / f"clip{i}.wav", _voice(f0, fm, 0.7, 10 * n + i), 16000)
    out = tmp_path / "out"
    assert speakers.main(["--data", str(data), "--enroll-clips", "2", "--concat", "1",
                          "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["layout"] == "folders"
    r = res["results"]
    assert r["speakers"] == 3 and r["queries"] == 6
    assert r["genuine_trials"] == 6 and r["impostor_trials"] == 12
    for key in ("top1_accuracy", "eer", "frr_at_far_1pct"):
        assert 0.0 <= r[key] <= 1.0
    for name in ("README.md", "scores.png", "det.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.skipif(not FSDD.is_dir(), reason="FSDD recordings not available")
def test_speakers_on_fsdd_subset(tmp_path: Path) -> None:
    pytest.importorskip("resemblyzer")
    from eval import speakers

    subset = tmp_path / "fsdd"
    subset.mkdir()
    for spk in ("george", "jackson"):
        for digit in (0, 1):
            for index in range(8):
                src = FSDD / f"{digit}_{spk}_{index}.wav"
                if src.exists():
                    (subset / src.name).symlink_to(src)
    if len(list(subset.iterdir())) < 20:
        pytest.skip("FSDD subset incomplete")
    layout, spk = speakers.discover(subset, enroll_clips=3)
    assert layout == "fsdd"
    george = next(s for s in spk if s.speaker == "george")
    held = {int(p.stem.split("_")[2]) for p in george.held_out}
    pool = {int(p.stem.split("_")[2]) for p in george.enroll_pool}
    assert held <= set(range(5)) and pool <= set(range(5, 50))
    out = tmp_path / "out"
    assert speakers.main(["--data", str(subset), "--enroll-clips", "3", "--concat", "2",
                          "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())["results"]
    assert r["speakers"] == 2 and r["queries"] == 2 * 5  # 10 held-out clips -> 5 pairs
    assert 0.0 <= r["top1_accuracy"] <= 1.0 and 0.0 <= r["eer"] <= 1.0
