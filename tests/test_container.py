"""The container files, checked statically (no Docker engine runs here; ``.ci/run`` builds the
image only where ``docker info`` answers): the Dockerfile's stages, user and healthcheck, the
compose file's wiring, and the config the compose file mounts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orkestra.server import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
COMPILERS = re.compile(r"\b(apt-get|apt|gcc|g\+\+|cc|clang|make|build-essential|python3-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_wheel_is_built_in_a_first_stage_and_only_wheels_reach_the_last(
    stages: list[Stage],
) -> None:
    assert len(stages) == 2
    build, runtime = stages
    assert build.name == "build"
    assert any("python -m build --wheel" in run for run in build.all("RUN"))
    assert any("pip wheel" in run and "/wheels" in run for run in build.all("RUN"))
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim", runtime.base)
    (install,) = [run for run in runtime.all("RUN") if "pip install" in run]
    assert "from=build" in install and "--no-index" in install and "--find-links /wheels" in install


def test_the_last_stage_has_no_build_tools_and_runs_as_a_user(stages: list[Stage]) -> None:
    runtime = stages[-1]
    for run in runtime.all("RUN"):
        assert not COMPILERS.search(run.replace("--no-cache-dir", "")), run
    users = runtime.all("USER")
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    assert any("useradd" in run and users[-1] in run.split() for run in runtime.all("RUN"))
    # USER comes before the entry point: nothing the server runs is root's.
    keywords = [kw for kw, _ in runtime.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_the_image_serves_on_all_its_interfaces_by_an_explicit_variable(
    stages: list[Stage],
) -> None:
    build, runtime = stages
    env = " ".join(runtime.all("ENV"))
    assert "ORKESTRA_HOST=0.0.0.0" in env and "ORKESTRA_PORT=8000" in env
    assert "ORKESTRA_HOST" not in " ".join(build.all("ENV"))
    assert runtime.all("ENTRYPOINT") == ['["orkestra", "serve"]']
    assert runtime.all("EXPOSE") == ["8000"]
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert "/healthz" in healthcheck and "127.0.0.1" in healthcheck


def test_the_context_holds_what_the_build_copies(stages: list[Stage]) -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for copy in stages[0].all("COPY"):
        sources = shlex.split(copy)[:-1]
        for source in sources:
            assert source.rstrip("/") in allowed, source
            assert (ROOT / source).exists(), source


def test_the_serve_command_takes_the_host_from_the_environment_and_keeps_its_guard() -> None:
    # ORKESTRA_HOST=0.0.0.0 without client keys: refused, as --host 0.0.0.0 is.
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test", "ORKESTRA_HOST": "0.0.0.0"}
    result = subprocess.run(
        [sys.executable, "-c", "from orkestra.cli import main; main()", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0" in result.stderr + result.stdout


def test_compose_runs_the_proxy_on_a_healthy_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "orkestra"}
    db, proxy = services["postgres"], services["orkestra"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "pgdata" in compose["volumes"]
    assert any(v.startswith("pgdata:") for v in db["volumes"])
    assert proxy["build"] == "." and (ROOT / "Dockerfile").exists()
    assert proxy["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    env = proxy["environment"]
    user, database = db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_DB"]
    url = env["ORKESTRA_DATABASE_URL"]
    assert re.fullmatch(
        rf"postgresql://{user}:\$\{{POSTGRES_PASSWORD\}}@postgres:5432/{database}", url
    )
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # Published on the host's loopback only.
    assert proxy["ports"] == ["127.0.0.1:8000:8000"]


def test_the_mounted_config_is_valid_with_the_environment_compose_gives(
    compose: dict[str, Any],
) -> None:
    proxy = compose["services"]["orkestra"]
    (mount,) = proxy["volumes"]
    source, target, mode = mount.split(":")
    assert target == proxy["environment"]["ORKESTRA_CONFIG"] and mode == "ro"
    env = {
        "ORKESTRA_DATABASE_URL": "postgresql://orkestra:secret@postgres:5432/orkestra",
        "ORKESTRA_CLIENT_KEY": "ok-" + "k" * 40,
        "OPENAI_API_KEY": "sk-test",
    }
    config = ServerConfig.load(ROOT / source, environ=env)
    assert config.database_url == env["ORKESTRA_DATABASE_URL"]
    assert [k.name for k in config.keys] == ["default"]
    assert config.provider_names == ("openai",) and config.metrics
    for variable in ("ORKESTRA_CLIENT_KEY", "OPENAI_API_KEY"):
        assert variable in proxy["environment"]
