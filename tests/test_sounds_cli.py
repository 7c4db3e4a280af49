"""``voiceprint sounds``: bulk load with bad files, re-run, resume after a kill, search, drop.

The loads run through the CLI (click's runner, and a real process killed
with SIGKILL), on Milvus Lite and on the Milvus server.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import sqlalchemy as sa

from tests import sound_fixtures as sfx
from tests.conftest import wav_bytes
from tests.sound_fixtures import paddle_cache, panns_dir, panns_small  # noqa: F401 (fixtures)
from voiceprint.services import sounds as sound_service
from voiceprint.services.reconcile import Reconciler
from voiceprint.services.sounds import LibraryCatalog, load_paths
from voiceprint.stores.unit_of_work import UnitOfWork
from voiceprint.stores.records import create_db_engine, sound_loads, sounds
from voiceprint.stores.vectors import VectorStore

BACKENDS = ["sqlite-lite", "mysql-server"]


@pytest.fixture
def cli(runner: Callable[..., Any], panns_small: Any, monkeypatch: pytest.MonkeyPatch
        ) -> Callable[..., Any]:
    """``cli("sounds", ...)`` with the small CNN14 registered in each command's runtime."""
    import voiceprint.cli.base as cli_package

    real = cli_package.cli_runtime

    def with_model() -> Any:
        rt = real()
        rt.models.put(panns_small)
        return rt

    monkeypatch.setattr(cli_package, "cli_runtime", with_model)
    import voiceprint.cli.sound_commands as cli_sounds
    monkeypatch.setattr(cli_sounds, "cli_runtime", with_model)
    return runner


@pytest.fixture(scope="module")
def good() -> list[sfx.Sound]:
    return sfx.library(20, seed=5)


def make_tree(base: Path, good: list[sfx.Sound]) -> dict[str, Path]:
    """20 good sounds in nested folders, a byte-identical copy, 3 bad audio files, 2 ignored."""
    paths = list(sfx.write_tree(base, good))
    copy = base / "copies" / "again.wav"
    copy.parent.mkdir()
    shutil.copy(paths[0], copy)
    bad = {"garbage": base / "broken" / "garbage.wav", "empty": base / "broken" / "empty.flac",
           "silent": base / "broken" / "deep" / "silent.wav"}
    bad["silent"].parent.mkdir(parents=True)
    bad["garbage"].write_bytes(b"this is not a RIFF file" * 10)
    bad["empty"].write_bytes(b"")
    bad["silent"].write_bytes(wav_bytes(np.zeros(8000, np.float32), 8000))
    (base / "notes.txt").write_text("ignored: not an audio suffix")
    (base / ".cache").mkdir()
    (base / ".cache" / "hidden.wav").write_bytes(b"ignored: hidden")
    return {"first": paths[0], **bad}


def counts(rt_config: dict[str, Any], want: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rows, vectors and audio files of library 'default', seen from a fresh runtime;
    with ``want``, polled until equal (a Milvus server shows other clients' writes late)."""
    if want is not None:
        return sfx.eventually(lambda: counts(rt_config), want)
    from voiceprint import create_app
    app = create_app({**rt_config})
    rt = app.extensions["voiceprint"]
    try:
        with rt.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(sounds)).scalar_one()
        lib = LibraryCatalog(rt, 1).library("default")
        out = {"sounds": n, "vectors": rt.vectors.count(lib.collection),
               "audio_files": len(rt.blobs.keys("sounds")),
               "ok": all(r.ok for r in Reconciler(rt).libraries(min_file_age=0.0))}
    finally:
        rt.close()
    return out


def assert_counts(rt_config: dict[str, Any], want: dict[str, Any]) -> None:
    assert counts(rt_config, want) == want


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_load_with_bad_files_rerun_search_drop(cli, app_config, good, tmp_path):
    tree = tmp_path / "tree"
    bad = make_tree(tree, good)
    report = tmp_path / "report.jsonl"
    r = cli("sounds", "load", str(tree), "--batch-size", "4", "--folder-tag", "folder",
            "--tag", "origin:test", "--no-progress", "--report", str(report))
    assert r.exit_code == 1, r.output
    assert ("loaded 20, skipped 1 (already in the library), failed 3; 1 non-audio files ignored; "
            "24 audio files") in r.output
    for key, reason in (("garbage", "unreadable"), ("empty", "empty"), ("silent", "silent")):
        assert f"  {bad[key]}: [{reason}]" in r.output
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert len(lines) == 24 and sum(x["status"] == "loaded" for x in lines) == 20
    assert_counts(app_config, {"sounds": 20, "vectors": 20, "audio_files": 20, "ok": True})

    # a second run loads nothing twice
    r = cli("sounds", "load", str(tree), "--no-progress")
    assert r.exit_code == 1 and "loaded 0, skipped 21" in r.output and "failed 3" in r.output
    for p in (bad["garbage"], bad["empty"], bad["silent"]):
        p.unlink()
    r = cli("sounds", "load", str(tree), "--no-progress")
    assert r.exit_code == 0 and "loaded 0, skipped 21" in r.output and "failed 0" in r.output

    r = cli("sounds", "count")
    assert r.exit_code == 0 and "default: 20 sounds, 20 vectors" in r.output
    r = cli("sounds", "loads")
    assert r.output.count("finished_with_errors") == 2 and "finished: 21/21" in r.output

    # search prints the top-k table; tags came from the options and the folders
    query = tmp_path / "query.wav"
    query.write_bytes(sfx.perturbations(good[3])["resample_22050" if good[3].sample_rate != 22050
                                                   else "resample_16000"])
    r = cli("sounds", "search", str(query), "--top-k", "3")
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.output.splitlines()[1:4]]
    assert [row[0] for row in rows] == ["1", "2", "3"] and rows[0][3] == good[3].name
    assert f"folder={good[3].family}/set0" in r.output and "origin=test" in r.output
    assert "(3 results from library 'default'; score = cosine" in r.output
    r = cli("sounds", "search", str(query), "--top-k", "2", "--json", "--tag", "folder:tone/set0")
    out = json.loads(r.output)
    assert out["strategy"] == "exact" and all(x["tags"]["folder"] == "tone/set0" for x in out["results"])

    r = cli("sounds", "search", str(bad["first"]), "--top-k", "0")
    assert r.exit_code == 2  # click refuses it
    r = cli("sounds", "search", str(tmp_path / "report.jsonl"))
    assert r.exit_code == 1 and "unreadable" in r.output

    r = cli("sounds", "libraries")
    assert "default" in r.output and " 20 " in r.output
    r = cli("db", "check")
    assert r.exit_code == 0 and any(c.get("library") == "default" for c in json.loads(r.output))

    # drop: the name must be repeated
    r = cli("sounds", "drop", "default", "--confirm", "nope")
    assert r.exit_code == 1 and "confirmation_required" in r.output
    assert counts(app_config)["sounds"] == 20
    r = cli("sounds", "drop", "default", "--confirm", "default")
    assert r.exit_code == 0 and "dropped library 'default' (20 sounds)" in r.output
    r = cli("sounds", "count")
    assert r.exit_code == 1 and "does not exist" in r.output


def test_drop_prompts_for_the_name(cli, app_config, good, tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(good[0].encode())
    assert cli("sounds", "load", str(tmp_path / "a"), "--no-progress").exit_code == 0
    import click
    answers = iter(["wrong", "default"])
    monkeypatch.setattr(click, "prompt", lambda *a, **k: next(answers))
    r = cli("sounds", "drop", "default")
    assert r.exit_code == 1 and "confirm" in r.output
    r = cli("sounds", "drop", "default")
    assert r.exit_code == 0 and "(1 sounds)" in r.output


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_resume_after_a_batch_dies_before_its_commit(cli, app_config, good, tmp_path):
    """The third batch's vectors and files are written, then the process 'dies' before
    COMMIT without running any compensation (as SIGKILL would). A re-run cleans up
    and loads the rest exactly once."""
    tree = tmp_path / "tree"
    list(sfx.write_tree(tree, good))
    real = VectorStore.upsert
    calls: list[int] = []

    def upsert_then_die(self, *a, **k):
        calls.append(1)
        real(self, *a, **k)
        if len(calls) == 3:
            raise KeyboardInterrupt  # no `except Exception` handler may swallow this

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VectorStore, "upsert", upsert_then_die)
        mp.setattr(UnitOfWork, "_run_undo", lambda self: None)  # as if the process died
        r = cli("sounds", "load", str(tree), "--batch-size", "4", "--no-progress")
    assert r.exit_code == 1  # click: "Aborted!"
    dead = counts(app_config)
    assert dead["sounds"] == 8 and dead["vectors"] == 12 and dead["audio_files"] == 12
    assert not dead["ok"]

    r = cli("sounds", "load", str(tree), "--batch-size", "4", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "removed leftovers of an interrupted load" in r.output
    assert "loaded 12, skipped 8" in r.output
    assert_counts(app_config, {"sounds": 20, "vectors": 20, "audio_files": 20, "ok": True})
    r = cli("sounds", "loads")
    assert "interrupted" in r.output and "finished: 20/20" in r.output


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_resume_after_sigkill(cli, app_config, good, tmp_path, panns_dir, paddle_cache):
    """A real `voiceprint sounds load` process is killed mid-load; the re-run completes it."""
    tree = tmp_path / "tree"
    sounds_ = good + sfx.library(40, seed=6)
    list(sfx.write_tree(tree, sounds_))
    env = {**os.environ, "VOICEPRINT_DATA_DIR": app_config["DATA_DIR"],
           "VOICEPRINT_DATABASE_URL": app_config["DATABASE_URL"],
           "VOICEPRINT_MILVUS_URI": app_config["MILVUS_URI"],
           "VOICEPRINT_MILVUS_PREFIX": app_config["MILVUS_COLLECTION_PREFIX"],
           "VOICEPRINT_AUDIO_DIR": app_config["AUDIO_DIR"], "VOICEPRINT_PRELOAD_MODELS": "0",
           "VOICEPRINT_PANNS_MODEL_DIR": str(panns_dir), "VOICEPRINT_CACHE_DIR": str(paddle_cache),
           "VOICEPRINT_OFFLINE": "1", "VOICEPRINT_ORPHAN_FILE_MIN_AGE_SECONDS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "voiceprint", "sounds", "load", str(tree),
                             "--batch-size", "2", "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = create_db_engine(app_config["DATABASE_URL"])
    processed = 0
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                processed = conn.execute(sa.select(sa.func.max(sound_loads.c.processed))).scalar() or 0
            if processed >= 10:
                break
            time.sleep(0.05)
    finally:
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        output = proc.communicate()[0].decode(errors="replace")
        engine.dispose()
    assert killed, f"the load ended before it could be killed:\n{output[-2000:]}"
    assert 10 <= processed < len(sounds_)

    # the reconciler alone leaves rows, vectors and files in agreement (no orphan of any kind)
    r = cli("db", "check", "--repair")
    assert r.exit_code == 0, r.output
    r = cli("db", "check")
    assert r.exit_code == 0 and all(x["ok"] for x in json.loads(r.output)), r.output
    partial = counts(app_config)
    assert partial["ok"] and partial["sounds"] == partial["vectors"] == partial["audio_files"]

    r = cli("sounds", "load", str(tree), "--batch-size", "8", "--no-progress")
    assert r.exit_code == 0, r.output
    m = re.search(r"loaded (\d+), skipped (\d+)", r.output)
    assert m and int(m[1]) + int(m[2]) == 60 and int(m[2]) >= processed, r.output
    assert_counts(app_config, {"sounds": 60, "vectors": 60, "audio_files": 60, "ok": True})
    r = cli("sounds", "loads")  # the killed load is marked when the same source is loaded again
    assert "finished: 60/60" in r.output and "interrupted: " in r.output


def test_load_progress_is_visible_over_http(client, rt, panns_small, good, tmp_path):
    rt.models.put(panns_small)
    paths = list(sfx.write_tree(tmp_path / "tree", good[:6]))
    seen: list[dict[str, Any]] = []

    def peek(_outcome: Any) -> None:
        seen.append(client.get("/sounds/loads").json[0])

    report = load_paths(rt, 1, [tmp_path / "tree"], "fx", batch_size=4, on_file=peek)
    assert report.loaded == 6 and not report.failed and len(paths) == 6
    assert seen[0]["status"] == "running" and seen[0]["processed"] == 4 and seen[0]["total"] == 6
    final = client.get("/sounds/loads?library=fx").json
    assert len(final) == 1 and final[0]["status"] == "finished" and final[0]["percent"] == 100.0
    assert final[0]["loaded"] == 6 and final[0]["library"] == "fx" and final[0]["finished_at"]
    assert client.get("/sounds/count?library=fx").json["sounds"] == 6
    assert sound_service.find_audio_files([tmp_path / "tree"]) == (sorted(paths), 0)
