"""docker-compose.yml and the Dockerfile, checked without Docker (which does not run here).

What a user must be able to trust before running ``docker compose up``:
pinned images, healthchecks and start order on healthy dependencies, no
database/Milvus/Redis port published, secrets only from ``.env`` (git-ignored,
documented in ``.env.example``), Redis for shared limits, the model volume,
the app running ``voiceprint serve`` with several workers - and an image that
installs exactly what setup.cfg and scripts/setup.sh install.
"""
from __future__ import annotations

import configparser
import importlib.metadata
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: extras that do not belong in the service image (evaluation, tests, a Milvus server)
NOT_IN_IMAGE = {"eval", "dev", "server"}
#: services that store data or secrets and must stay inside the compose network
INTERNAL = {"etcd", "minio", "milvus", "mariadb", "redis"}
#: ${NAME}, ${NAME:-default}, ${NAME:?error}: groups name, operator, default/error
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|ACCESS_KEY", re.I)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def with_defaults(text: str) -> str:
    """``text`` with each ``${VAR:-default}`` replaced by its default."""
    return VAR.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else m.group(0), text)


def test_images_are_pinned(services):
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name} names no image"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag and tag not in ("", "latest"), \
            f"{name}: {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image} needs a version tag"
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base


def test_milvus_image_is_the_version_the_tests_run_against(services):
    tag = services["milvus"]["image"].rpartition(":")[2]
    try:
        tested = importlib.metadata.version("milvus")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the milvus server package is not installed")
    assert tag == f"v{tested}", (tag, tested)


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_ones(services):
    one_shot = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"migrate"}
    for name, svc in services.items():
        if name not in one_shot:
            test = svc.get("healthcheck", {}).get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must name conditions"
        for dep, rule in deps.items():
            want = "service_completed_successfully" if dep in one_shot else "service_healthy"
            assert rule == {"condition": want}, (name, dep, rule)
    app = services["app"]["depends_on"]
    assert {"mariadb", "milvus", "redis", "migrate"} <= set(app)
    assert {"etcd", "minio"} <= set(services["milvus"]["depends_on"])


def test_only_the_app_is_published_and_by_default_on_loopback(services):
    for name in INTERNAL:
        assert "ports" not in services[name], f"{name} must not publish a port"
    published = [n for n, s in services.items() if s.get("ports")]
    assert published == ["app"]
    (port,) = services["app"]["ports"]
    assert with_defaults(port).startswith("127.0.0.1:"), port


def test_secrets_come_from_the_env_file_only(compose, services):
    text = (ROOT / "docker-compose.yml").read_text()
    for name, svc in services.items():
        for key, value in env_of(svc).items():
            if SECRET_NAME.search(key) and key != "MARIADB_RANDOM_ROOT_PASSWORD":
                assert VAR.fullmatch(value), f"{name}.{key} must come from .env: {value!r}"
            creds = re.search(r"://[^/@\s]*:([^/@\s]+)@", value)
            if creds:
                assert VAR.fullmatch(creds.group(1)), f"{name}.{key} holds a literal password"
    command = " ".join(services["redis"]["command"])
    assert re.search(r"--requirepass \$\{REDIS_PASSWORD", command)
    required = {m.group(1) for m in VAR.finditer(text) if m.group(2) in (":?", "?")}
    example = (ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert required and required <= defined, required - defined
    optional = {m.group(1) for m in VAR.finditer(text) if m.group(2) in (":-", "-")}
    mentioned = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert optional <= mentioned, optional - mentioned


def test_the_env_file_is_never_committed():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True,
                             text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.strip() == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0


def test_the_app_serves_several_workers_with_shared_state(services):
    app = services["app"]
    command = app["command"]
    assert command[:2] == ["voiceprint", "serve"]
    workers = command[command.index("--workers") + 1]
    assert int(with_defaults(workers)) >= 2, workers
    env = env_of(app)
    redis_url = env["VOICEPRINT_REDIS_URL"]
    assert redis_url.startswith("redis://") and "@redis:" in redis_url
    assert env["VOICEPRINT_MILVUS_URI"] == "http://milvus:19530"  # a server: many workers allowed
    assert env["VOICEPRINT_DATABASE_URL"].startswith("mysql+pymysql://")
    assert "@mariadb:3306/" in env["VOICEPRINT_DATABASE_URL"]
    assert env["VOICEPRINT_AUTH"] == "required"  # a published port never runs open
    mounts = {}
    for volume in app["volumes"]:
        source, target, *mode = with_defaults(volume).split(":")
        mounts[target] = (source, mode)
    assert mounts["/models"][1] == ["ro"], "the model volume is mounted read-only"
    assert env["VOICEPRINT_ECAPA_MODEL_DIR"].startswith("/models/")
    assert env["VOICEPRINT_PANNS_MODEL_DIR"].startswith("/models/")
    assert "/data" in mounts and env["VOICEPRINT_AUDIO_DIR"].startswith("/data")
    assert services["migrate"]["command"] == ["voiceprint", "db", "upgrade"]
    assert env_of(services["migrate"]) == env  # the same stores as the app


def _extras() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return set(cfg["options.extras_require"])


def _no_deps(text: str) -> set[str]:
    out: set[str] = set()
    for line in text.replace("\\\n", " ").splitlines():
        if "--no-deps" in line and "pip" in line:
            words = shlex.split(line.split("--no-deps", 1)[1].split("&&")[0])
            out |= {w for w in words if not w.startswith("-")}
    return out


def test_the_image_installs_what_setup_cfg_and_setup_sh_declare():
    dockerfile = (ROOT / "Dockerfile").read_text()
    arg = re.search(r"^ARG EXTRAS=(\S+)$", dockerfile, re.M)
    assert arg and 'pip install ".[${EXTRAS}]"' in dockerfile
    in_image = set(arg.group(1).split(","))
    assert in_image == _extras() - NOT_IN_IMAGE, (
        f"setup.cfg's server extras {sorted(_extras() - NOT_IN_IMAGE)} vs the image's "
        f"{sorted(in_image)}")
    setup_sh = _no_deps((ROOT / "scripts" / "setup.sh").read_text())
    assert setup_sh and _no_deps(dockerfile) == setup_sh
    assert "pip install -e" not in dockerfile  # the image holds a real install
