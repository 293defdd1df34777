"""A throwaway PostgreSQL server for the benchmarks: ``initdb`` into a temp dir, ``pg_ctl start``.

Durable settings by default (``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, as a
production server runs), unlike the test suite's server. As root it runs as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path:
    found = shutil.which("initdb")
    candidates = [str(Path(found).resolve())] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for initdb in candidates:
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    raise SystemExit("no PostgreSQL server binaries (initdb, pg_ctl): run scripts/ci_postgres.sh")


@contextmanager
def throwaway_postgres(*, durable: bool = True) -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:<port>/postgres`` of a fresh server, stopped after."""
    bindir = _bindir()
    datadir = Path(tempfile.mkdtemp(prefix="orkestra-bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(datadir, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = f"-h 127.0.0.1 -p {port} -k {datadir} -c max_connections=300"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    data = str(datadir / "data")

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, cwd=datadir, capture_output=True, timeout=120)

    try:
        run(str(bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(
            str(bindir / "pg_ctl"), "-D", data, "-l", str(datadir / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
