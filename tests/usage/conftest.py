"""Real databases for the usage-log tests: a SQLite file in tmp_path, and a PostgreSQL server.

The PostgreSQL server is started once per session from the Debian binaries (``initdb`` into a
temp dir, ``pg_ctl start`` on 127.0.0.1 with a free port, as the ``postgres`` user when we are
root) and every test gets a fresh database on it. ``scripts/ci_postgres.sh`` installs the
binaries. Where no server can be started the PostgreSQL tests skip, saying why; with
``ORKESTRA_REQUIRE_POSTGRES=1`` (CI) they fail instead. ``ORKESTRA_TEST_DATABASE_URL``
(``postgresql://user@host:port``, a role that may create databases) uses a running server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orkestra.usage import open_usage_log
from orkestra.usage.base import SQLUsageLog


@pytest.fixture(autouse=True)
def _no_usage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ORKESTRA_DATABASE_URL", "ORKESTRA_USAGE_LOG", "ORKESTRA_STORE_PROMPTS"):
        monkeypatch.delenv(name, raising=False)


def _unavailable(reason: str) -> None:
    if os.environ.get("ORKESTRA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required (ORKESTRA_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _server_bindir() -> Path | None:
    found = shutil.which("initdb")
    candidates = [str(Path(found).resolve())] if found else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
        reverse=True,
    )
    for initdb in candidates:
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:<port>`` of a throwaway server, for the session."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'orkestra-router[postgres]')")
    if url := os.environ.get("ORKESTRA_TEST_DATABASE_URL"):
        yield url.rstrip("/")
        return
    bindir = _server_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl); run scripts/ci_postgres.sh")
    assert bindir is not None
    as_user: list[str] = []
    datadir = Path(tempfile.mkdtemp(prefix="orkestra-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        runuser = shutil.which("runuser")
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = None
        if runuser is None or user is None:
            shutil.rmtree(datadir)
            _unavailable("running as root, and no 'postgres' user or runuser to drop to")
        assert user is not None and runuser is not None
        os.chown(datadir, user.pw_uid, user.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    server_options = (
        f"-h 127.0.0.1 -p {port} -k {datadir} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=50"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_user, *args], check=False, cwd=datadir, capture_output=True, text=True, timeout=120
        )

    data = str(datadir / "data")
    initdb = run(
        str(bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--no-sync",
    )  # fmt: skip
    if initdb.returncode != 0:
        shutil.rmtree(datadir, ignore_errors=True)
        _unavailable(f"initdb failed: {initdb.stderr.strip()[-500:]}")
    start = run(
        str(bindir / "pg_ctl"), "-D", data, "-l", str(datadir / "server.log"),
        "-o", server_options, "-w", "-t", "60", "start",
    )  # fmt: skip
    if start.returncode != 0:
        log = (datadir / "server.log").read_text(errors="replace")[-1000:]
        shutil.rmtree(datadir, ignore_errors=True)
        _unavailable(f"pg_ctl start failed: {start.stderr.strip()} {log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    import psycopg

    name = f"orkestra_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty usage database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'usage.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def open_log(db_url: str) -> Iterator[Callable[..., SQLUsageLog]]:
    """Opens usage logs on ``db_url``, closing them all after the test."""
    logs: list[SQLUsageLog] = []

    def opener(**kwargs: object) -> SQLUsageLog:
        log = open_usage_log(db_url, **kwargs)  # type: ignore[arg-type]
        logs.append(log)
        return log

    yield opener
    for log in logs:
        log.close()
