"""Bulk ingestion on a local Ray cluster (2 workers) and in-process.

The corpus has good clips and every kind of bad file, including one that
kills the worker process that embeds it (a test-only encoder calls
``os._exit`` on a marker clip, in the middle of a batch). Checked: the
per-file report, rows = vectors = files (``voiceprint db check`` clean), and
that running again changes nothing.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.bulk_helpers import MarkerKillingSpec, write_corpus
from tests.conftest import SENTENCES, sigkill_when_files
from voiceprint.bulk.engines import EngineError, LocalEngine, RayEngine
from voiceprint.bulk.enroll import BulkEnroller, EnrollReport
from voiceprint.bulk.pipeline import EmbedPipeline, Feed
from voiceprint.bulk.plan import plan_from_folder, plan_from_manifest
from voiceprint.bulk.worker import EmbedRequest, EmbedResult, EncoderInfo, EncoderSpec
from voiceprint.services.reconcile import Reconciler
from voiceprint.stores.records import speakers, utterances
from voiceprint.stores.records import sounds as sound_rows

RULES = {"MAX_CLIPS_PER_REQUEST": 3, "ENROLL_MIN_SPEECH_SECONDS": 6.0}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, **RULES}


@pytest.fixture(scope="module")
def corpus(speak, tmp_path_factory) -> Any:
    return write_corpus(tmp_path_factory.mktemp("corpus"), speak, SENTENCES)


def consistent(rt: Any) -> dict[str, int]:
    """Rows, vectors and stored files agree (and the reconciler finds nothing)."""
    reports = Reconciler(rt).run(min_file_age=0)
    assert all(r.ok for r in reports), [r.to_dict() for r in reports]
    with rt.engine.connect() as conn:
        rows = int(conn.execute(sa.select(sa.func.count()).select_from(utterances)).scalar_one())
    vectors = rt.vectors.count(rt.collection("ge2e", "utterances"))
    files = [p for p in (Path(rt.config.AUDIO_DIR) / "utterances").rglob("*") if p.is_file()]
    assert rows == vectors == len(files)
    return {"rows": rows, "vectors": vectors, "files": len(files)}


def outcomes(report: EnrollReport) -> dict[str, tuple[str, str | None]]:
    return {f.path: (f.status, f.reason) for f in report.files}


def check_report(report: EnrollReport, corpus: Any) -> None:
    got = outcomes(report)
    assert set(got) == set(corpus.expected)
    for path, (status, reason) in corpus.expected.items():
        assert got[path][0] == status, (path, got[path], report.files)
        if reason is not None:
            assert got[path][1] == reason, (path, got[path])
    assert report.ignored == 2  # stray.wav outside a speaker folder, rms/notes.txt
    assert {s: v["status"] for s, v in report.speakers.items()} == {
        "awb": "enrolled", "slt": "enrolled", "rms": "enrolled"}


def test_bulk_enroll_on_ray_survives_a_worker_crash_and_reruns_idempotently(
        rt, corpus, ray_cluster):
    plan = plan_from_folder(corpus.root)
    engine = RayEngine(MarkerKillingSpec("ge2e"), rt.config, "speaker", workers=2)
    try:
        report = BulkEnroller(rt, 1, engine, batch_size=4).run(plan)
    finally:
        engine.close()
    check_report(report, corpus)
    assert report.engine["worker_deaths"] >= 2  # the batch, then the marker clip on its own
    assert report.pipeline.crashed == 1
    assert report.embedded_on_driver == 0  # every vector came from a worker
    assert len(engine.pids) == 2  # two actors, each loaded the encoder once
    counts = consistent(rt)
    assert counts["rows"] == sum(1 for s, _ in corpus.expected.values() if s == "enrolled")
    with rt.engine.connect() as conn:  # audio stored under the speaker, named by its path
        names = {r.filename for r in conn.execute(sa.select(utterances.c.filename))}
    assert "awb/a1.wav" in names

    again = RayEngine(MarkerKillingSpec("ge2e"), rt.config, "speaker", workers=2)
    try:
        rerun = BulkEnroller(rt, 1, again, batch_size=4).run(plan)
    finally:
        again.close()
    statuses = outcomes(rerun)
    for path, (status, _) in corpus.expected.items():
        if status in ("enrolled", "skipped"):
            assert statuses[path] == ("skipped", "duplicate"), path
        else:  # still refused, still reported
            assert statuses[path][0] == status, path
    assert rerun.pipeline.embedded == 1  # only the impostor (not stored) was embedded again
    assert consistent(rt) == counts


@contextlib.contextmanager
def runtime(app_config: dict[str, Any]) -> Iterator[Any]:
    """The stores of ``app_config``, opened after the CLI closed them (Milvus Lite: one user)."""
    from voiceprint.config import Config
    from voiceprint.runtime import Runtime
    config = Config({})
    for key, value in app_config.items():
        setattr(config, key, value)
    rt = Runtime.from_config(config)
    try:
        yield rt
    finally:
        rt.close()


def test_cli_bulk_enroll_on_ray_from_a_manifest(app_config, speak, tmp_path, ray_cluster):
    clips = {v: [speak(t, v) for t in SENTENCES[:3]] for v in ("flite:awb", "flite:slt")}
    lines = ["speaker,file,name,metadata"]
    for voice, data in clips.items():
        for i, clip in enumerate(data):
            (tmp_path / f"{voice[6:]}{i}.wav").write_bytes(clip)
            meta = json.dumps({"voice": voice}).replace('"', '""')
            lines.append(f'{voice[6:]},{voice[6:]}{i}.wav,{voice.upper()},"{meta}"')
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.jsonl"
    r = cli(app_config, "bulk", "enroll", str(tmp_path / "manifest.csv"), "--engine", "ray",
            "--workers", "2", "--report", str(report))
    assert r.exit_code == 0, r.output
    assert "enrolled 6, skipped 0" in r.output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [row["status"] for row in rows] == ["enrolled"] * 6
    r = cli(app_config, "bulk", "enroll", str(tmp_path / "manifest.csv"), "--engine", "ray")
    assert r.exit_code == 0 and "enrolled 0, skipped 6" in r.output, r.output
    with runtime(app_config) as rt:
        with rt.engine.connect() as conn:
            spk = {s.external_id: s for s in conn.execute(sa.select(speakers))}
        assert spk["awb"].name == "FLITE:AWB" and spk["awb"].meta == {"voice": "flite:awb"}
        assert consistent(rt)["rows"] == 6


def test_bulk_enroll_in_process_gives_the_same_outcomes(rt, corpus):
    report = BulkEnroller(rt, 1, LocalEngine(EncoderSpec("ge2e"), rt.config, "speaker"),
                          batch_size=4)
    plan = plan_from_folder(corpus.root)
    plan.speakers = [s for s in plan.speakers if s.external_id != "slt"]  # in-process: no marker
    result = report.run(plan)
    got = outcomes(result)
    for path, want in corpus.expected.items():
        if not path.startswith("slt/"):
            assert got[path][0] == want[0], path
    consistent(rt)
    assert type(rt.models.get("ge2e")).__name__ == "Ge2eEncoder"  # the runtime's own is back


def test_sounds_load_on_ray_stores_like_the_local_loader(app_config, tmp_path, ray_cluster,
                                                         speak):
    for i, text in enumerate(SENTENCES[:5]):
        (tmp_path / "lib" / "speech").mkdir(parents=True, exist_ok=True)
        (tmp_path / "lib" / "speech" / f"{i}.wav").write_bytes(speak(text, "flite:awb"))
    (tmp_path / "lib" / "bad.wav").write_bytes(b"RIFF not really")
    r = cli(app_config, "sounds", "load", str(tmp_path / "lib"), "--engine", "ray",
            "--workers", "2", "--batch-size", "2", "--folder-tag", "folder",
            VOICEPRINT_SOUND_ENCODER="ge2e")
    assert r.exit_code == 1, r.output  # bad.wav failed
    assert "loaded 5, skipped 0 (already in the library), failed 1" in r.output
    r = cli(app_config, "sounds", "load", str(tmp_path / "lib"), "--engine", "ray",
            VOICEPRINT_SOUND_ENCODER="ge2e")
    assert "loaded 0, skipped 5" in r.output, r.output
    r = cli(app_config, "db", "check", VOICEPRINT_SOUND_ENCODER="ge2e")
    assert r.exit_code == 0, r.output
    with runtime(app_config) as rt, rt.engine.connect() as conn:
        rows = conn.execute(sa.select(sound_rows.c.id, sound_rows.c.filename)).all()
        assert sorted(r.filename for r in rows) == [f"speech/{i}.wav" for i in range(5)]


def test_plan_from_manifest_reports_bad_metadata_per_speaker(tmp_path):
    (tmp_path / "m.csv").write_text(
        'speaker,file,metadata\nx,a.wav,{oops\nx,b.wav,\ny,c.wav,"{}"\n')
    plan = plan_from_manifest(tmp_path / "m.csv")
    assert [s.external_id for s in plan.speakers] == ["x", "y"]
    assert plan.speakers[0].problem[0] == "bad_metadata" and plan.speakers[1].metadata == {}
    (tmp_path / "n.csv").write_text("who,file\nx,a.wav\n")
    with pytest.raises(Exception, match="'speaker' and 'file'"):
        plan_from_manifest(tmp_path / "n.csv")


# -- the pipeline's crash isolation, without Ray ------------------------------------------
class FlakyEngine:
    """A fake engine: batches holding key 5 "die"; everything else is embedded at once."""

    name, workers = "fake", 2

    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.done: list[Any] = []
        self.batches: list[list[int]] = []
        self.n = 0

    def start(self) -> EncoderInfo:
        return EncoderInfo("fake", 2, 16000, "speaker")

    def has_slot(self) -> bool:
        return len(self.done) < 2

    def submit(self, batch: list[EmbedRequest]) -> int:
        self.n += 1
        keys = [r.key for r in batch]
        self.batches.append(keys)
        if self.poison & set(keys):
            self.done.append((self.n, "died"))
        else:
            self.done.append((self.n, [EmbedResult(k, np.ones(2, np.float32), f"d{k}", 1.0)
                                       for k in keys]))
        return self.n

    def wait(self, timeout: float) -> list[Any]:
        done, self.done = self.done, []
        return done


def test_pipeline_isolates_the_file_that_kills_workers_and_keeps_order():
    engine = FlakyEngine({5})
    feeds = [Feed(k, b"x", f"f{k}", embed=k != 7) for k in range(20)] + [Feed(20, None, "gone",
                                                                             reason="unreadable")]
    with EmbedPipeline(engine, feeds, batch_size=4, max_ahead=8) as pipe:
        got = {}
        for start in range(0, 21, 3):
            got.update(pipe.take(list(range(start, min(start + 3, 21)))))
    assert got[5].result.reason == "worker_crashed"
    assert got[7].result is None and got[20].result is None and got[20].feed.reason == "unreadable"
    assert all(got[k].result.embedded for k in range(20) if k not in (5, 7))
    assert [5] in engine.batches and engine.batches.count([5]) == 2  # alone, twice
    assert pipe.stats.crashed == 1


def test_an_engine_that_keeps_dying_stops_the_run(rt, corpus):
    class Dead(LocalEngine):
        def submit(self, batch):
            raise EngineError("workers keep dying")
    plan = plan_from_folder(corpus.root)
    with pytest.raises(EngineError):
        BulkEnroller(rt, 1, Dead(MarkerKillingSpec("ge2e"), rt.config, "speaker")).run(plan)


def cli(app_config: dict[str, Any], *args: str, **extra_env: str) -> Any:
    from voiceprint.cli import main
    return CliRunner().invoke(main, list(args), env={**cli_env(app_config), **extra_env},
                              catch_exceptions=False)


def cli_env(app_config: dict[str, Any]) -> dict[str, str]:
    return {"VOICEPRINT_DATA_DIR": app_config["DATA_DIR"],
           "VOICEPRINT_DATABASE_URL": app_config["DATABASE_URL"],
           "VOICEPRINT_MILVUS_URI": app_config["MILVUS_URI"],
           "VOICEPRINT_MILVUS_PREFIX": app_config["MILVUS_COLLECTION_PREFIX"],
           "VOICEPRINT_AUDIO_DIR": app_config["AUDIO_DIR"],
           "VOICEPRINT_SPEAKER_ENCODER": "ge2e", "VOICEPRINT_PRELOAD_MODELS": "0",
           "VOICEPRINT_MAX_CLIPS_PER_REQUEST": str(app_config["MAX_CLIPS_PER_REQUEST"]),
           "VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS": str(app_config["ENROLL_MIN_SPEECH_SECONDS"]),
           "VOICEPRINT_ORPHAN_FILE_MIN_AGE_SECONDS": "0"}


def test_bulk_enroll_resumes_after_kill_9(app_config, speak, tmp_path):
    """kill -9 of the command inside a write; the same command with --repair completes the
    job: nothing enrolled twice, no leftovers."""
    import sys
    for voice in ("flite:awb", "flite:slt", "flite:rms"):
        for i, text in enumerate(SENTENCES[:3]):
            path = tmp_path / "corpus" / voice[6:] / f"{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(speak(text, voice))
    env = {**os.environ, **cli_env(app_config)}
    audio = Path(app_config["AUDIO_DIR"]) / "utterances"
    # the 4th file belongs to the second speaker's write (the first has 3 clips)
    killed = sigkill_when_files([sys.executable, "-m", "voiceprint", "bulk", "enroll",
                                 str(tmp_path / "corpus"), "--no-progress"], env, audio,
                                at_least=4)
    assert killed, "the command ended before it could be killed"

    r = cli(app_config, "bulk", "enroll", str(tmp_path / "corpus"), "--repair")
    assert r.exit_code == 0, r.output
    with runtime(app_config) as rt:
        assert consistent(rt)["rows"] == 9
    r = cli(app_config, "bulk", "enroll", str(tmp_path / "corpus"))
    assert "enrolled 0, skipped 9" in r.output, r.output


def test_an_unreachable_ray_address_fails_fast():
    """Ray retries an address nobody listens at forever; the engine says so at once."""
    from voiceprint.bulk.engines import _reachable
    from voiceprint.stores.milvus_server import free_port
    for address in (f"127.0.0.1:{free_port()}", f"ray://127.0.0.1:{free_port()}"):
        with pytest.raises(EngineError, match="nothing answers"):
            _reachable(address)
