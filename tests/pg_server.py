"""A throwaway PostgreSQL server for the tests (and the benchmarks that need one).

Started once per session from the Debian binaries (``initdb`` into a temp dir, ``pg_ctl start``
on 127.0.0.1 with a free port, as the ``postgres`` user when we are root); every test gets a
fresh database on it. ``scripts/ci_postgres.sh`` installs the binaries. Where no server can be
started the PostgreSQL tests skip, saying why; with ``ORKESTRA_REQUIRE_POSTGRES=1`` (CI) they
fail instead. ``ORKESTRA_TEST_DATABASE_URL`` (``postgresql://user@host:port``, a role that may
create databases) uses a running server.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["PostgresUnavailable", "fresh_database", "postgres_server", "postgres_url", "running"]


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be had here (the message says why)."""


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


@contextmanager
def running(max_connections: int = 50) -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:<port>`` of a throwaway server, stopped on exit."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable(
            "psycopg is not installed (pip install 'orkestra-router[postgres]')"
        ) from None
    if url := os.environ.get("ORKESTRA_TEST_DATABASE_URL"):
        yield url.rstrip("/")
        return
    bindir = _server_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl); run scripts/ci_postgres.sh"
        )
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
            raise PostgresUnavailable("running as root, and no 'postgres' user or runuser")
        os.chown(datadir, user.pw_uid, user.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    server_options = (
        f"-h 127.0.0.1 -p {port} -k {datadir} -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections={max_connections}"
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
        raise PostgresUnavailable(f"initdb failed: {initdb.stderr.strip()[-500:]}")
    start = run(
        str(bindir / "pg_ctl"), "-D", data, "-l", str(datadir / "server.log"),
        "-o", server_options, "-w", "-t", "60", "start",
    )  # fmt: skip
    if start.returncode != 0:
        log = (datadir / "server.log").read_text(errors="replace")[-1000:]
        shutil.rmtree(datadir, ignore_errors=True)
        raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(datadir, ignore_errors=True)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server``, dropped on exit."""
    import psycopg

    name = f"orkestra_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:<port>`` of a throwaway server, for the session."""
    try:
        with running() as url:
            yield url
    except PostgresUnavailable as exc:
        if os.environ.get("ORKESTRA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required (ORKESTRA_REQUIRE_POSTGRES=1): {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    with fresh_database(postgres_server) as url:
        yield url
