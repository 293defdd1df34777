"""``kill -9`` of a real process that makes calls: no record of a call it answered is lost, and a
call in flight is counted at its worst case (the write-ahead journal, replayed on the next open).

The database's write lock is held from another connection while the child calls, so its writer
cannot store anything before the kill: what survives is what the journal kept.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orkestra.testing import FakeProviderServer, Fault
from orkestra.usage import open_usage_log
from orkestra.usage._journal import INTERRUPTED

CHILD = textwrap.dedent(
    """
    import sys
    import orkestra as o
    from orkestra.usage import default_usage_log

    assert default_usage_log() is not None  # opened (and migrated) before the lock is taken
    print("ready", flush=True)
    sys.stdin.readline()
    provider = o.Provider("openai")
    calls = int(sys.argv[1])
    for i in range(calls):
        if i % 2:
            stream = provider.stream(f"call {i}: a poem", model="gpt-4o-mini", max_tokens=40)
            text = "".join(stream)
            cost = stream.response.cost
        else:
            cost = provider.chat(f"call {i}: 2+2?", model="gpt-4o-mini", max_tokens=40).cost
        print("done", i, cost, flush=True)
    sys.stdin.readline()
    print("sending the last call", flush=True)
    provider.chat("the call in flight", model="gpt-4o-mini", max_tokens=40)
    print("the last call returned", flush=True)
    """
)


@contextmanager
def write_locked(url: str) -> Iterator[None]:
    """The database's write lock, held from another connection."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as pg:
            pg.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
            yield
            pg.commit()


def _line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {prefix!r} from the child (exit {proc.poll()})")


def test_kill_9_of_the_library_loses_no_answered_call(
    db_url: str, fake: FakeProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same ORKESTRA_HOME: a PostgreSQL log's journal is this machine's, under it.
    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path / "home"))
    env = {**os.environ, **fake.env(), "ORKESTRA_DATABASE_URL": db_url}
    env["ORKESTRA_STORE_PROMPTS"] = "1"
    calls = 6
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(calls)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdin is not None
    try:
        _line(proc, "ready")
        with write_locked(db_url):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            answered = {}
            for _ in range(calls):
                _, i, cost = _line(proc, "done").split()
                answered[f"call {i}"] = float(cost)
            fake.queue(Fault.delay(30))  # the last call hangs upstream until the kill
            seen = len(fake.requests)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            _line(proc, "sending")
            deadline = time.monotonic() + 30
            while len(fake.requests) == seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(fake.requests) == seen + 1  # it reached the provider: it may be billed
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        if proc.stdout is not None:
            proc.stdout.close()

    with open_usage_log(db_url, store_prompts=True) as log:  # replays the dead child's journal
        assert log.replayed >= 1
        records = log.query()
    by_prompt = {r.prompt.split(":")[0]: r for r in records if r.prompt and r.status == "ok"}
    assert {p: by_prompt[p].cost for p in answered} == pytest.approx(answered)
    (lost,) = [r for r in records if r.status == INTERRUPTED]
    assert lost.model == "gpt-4o-mini" and lost.source == "library"
    assert lost.cost > 0 and lost.attempts == 1  # its worst case: the whole max_tokens
    assert len(records) == calls + 1


def test_a_segment_is_deleted_once_its_records_are_stored(tmp_path: Path) -> None:
    from orkestra.usage import UsageRecord

    log = open_usage_log(f"sqlite:///{tmp_path / 'usage.db'}")
    twice = UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.25)
    log.record(twice)
    log.record(twice)  # the same call recorded again: one row, and the segment still settles
    log.hold("c" * 32, 0.5, provider="openai", model="gpt-4o-mini")
    log.record(UsageRecord(id="c" * 32, provider="openai", model="gpt-4o-mini", cost=0.1))
    assert log.flush(timeout=10)
    assert log.spend() == pytest.approx(0.35)
    log.close()
    assert list((tmp_path / "usage.db.journal").iterdir()) == []
