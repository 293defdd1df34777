"""The usage log against real databases: a SQLite file and a PostgreSQL server (see conftest).

Every test taking ``open_log`` or ``db_url`` runs once per backend.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import orkestra as o
from orkestra.usage import (
    MIGRATIONS,
    DatabaseURLError,
    UsageLog,
    UsageLogClosedError,
    UsageRecord,
    default_usage_log,
    key_id_for,
    open_usage_log,
    write_totals_csv,
)
from orkestra.usage.base import SQLUsageLog
from orkestra.usage.migrations import migrate_postgres, migrate_sqlite
from orkestra.usage.sqlite import SQLiteUsageLog

OpenLog = Callable[..., SQLUsageLog]
SECRET = "sk-proj-SECRETtestKEY0123456789abcdef"
NOW = datetime.now(timezone.utc).replace(microsecond=123456)


def full_record(**overrides: Any) -> UsageRecord:
    """A record with every field set to something other than its default."""
    values: dict[str, Any] = {
        "ts": NOW - timedelta(minutes=5),
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "tier": "budget",
        "strategy": "cheapest",
        "input_tokens": 1234,
        "output_tokens": 567,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 89,
        "reasoning_tokens": 42,
        "cost": 0.0041234567891234,
        "base_model": "claude-opus-4-6",
        "base_cost": 0.0203333333333333,
        "latency_ms": 812.125,
        "routing_ms": 0.3712,
        "scores": {"budget": 0.9123456789, "balanced": 0.93, "premium": 0.95},
        "knob": 0.35,
        "attempts": 2,
        "attempts_detail": [
            {"model": "claude-haiku-4-5", "error": "RateLimitError", "latency_ms": 120.5},
            {"model": "claude-haiku-4-5", "error": None, "latency_ms": 691.625},
        ],
        "status": "ok",
        "error": None,
        "key_id": key_id_for("orkestra-proxy-key-1"),
        "prompt": "What is the capital of Japan? 日本の首都は？",
        "source": "proxy",
    }
    values.update(overrides)
    return UsageRecord(**values)


def rec(
    model: str = "gpt-4o-mini",
    *,
    provider: str = "openai",
    tier: str = "budget",
    cost: float = 1.0,
    base_cost: float = 4.0,
    key_id: str | None = "key-a",
    status: str = "ok",
    ago: timedelta = timedelta(minutes=1),
    tokens: tuple[int, int] = (100, 10),
) -> UsageRecord:
    return UsageRecord(
        provider=provider,
        model=model,
        tier=tier,
        cost=cost,
        base_cost=base_cost,
        key_id=key_id,
        status=status,
        ts=NOW - ago,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


# -- round trips ---------------------------------------------------------------------------


def test_every_field_round_trips(open_log: OpenLog) -> None:
    log = open_log(store_prompts=True)
    assert isinstance(log, UsageLog)
    records = [
        full_record(),
        full_record(
            status="AuthenticationError",
            error="401 Unauthorized",
            tier=None,
            strategy=None,
            knob=None,
            base_model=None,
            key_id=None,
            attempts=1,
            attempts_detail=None,
            scores={},
            source="library",
            ts=NOW - timedelta(minutes=4),
        ),
    ]
    for record in records:
        log.record(record)
    assert log.flush(timeout=10)
    assert log.query() == records
    got = log.query()[0]
    assert got.ts == records[0].ts and got.ts.tzinfo is not None
    assert got.savings == records[0].savings
    # A second process (or replica) reading the same database sees the same.
    # Another log on the same database (another process, another replica) reads the same,
    # prompts included: store_prompts decides what is written, not what is read.
    assert open_log().query() == records


def _init_fields(record: UsageRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k != "savings"}


def test_prompt_is_stored_only_when_opted_in(open_log: OpenLog) -> None:
    plain = open_log()
    plain.record(full_record(prompt="a secret plan"))
    assert [r.prompt for r in plain.query()] == [None]
    opted_in = open_log(store_prompts=True)
    opted_in.record(full_record(prompt="a shared plan"))
    assert sorted(str(r.prompt) for r in opted_in.query()) == ["None", "a shared plan"]


def test_query_window(open_log: OpenLog) -> None:
    log = open_log()
    old, mid, new = rec(ago=timedelta(days=10)), rec(ago=timedelta(days=2)), rec(ago=timedelta(0))
    for record in (new, old, mid):
        log.record(record)
    assert log.query() == [old, mid, new]
    assert log.query(since="7d") == [mid, new]
    assert log.query(since=timedelta(days=30), until=NOW - timedelta(days=1)) == [old, mid]
    assert log.query(since=NOW) == [new]  # since is inclusive
    assert log.query(until=old.ts) == []  # until is exclusive


# -- totals, spend, export -------------------------------------------------------------------


@pytest.fixture
def traffic(open_log: OpenLog) -> SQLUsageLog:
    log = open_log()
    for record in (
        rec("gpt-4o-mini", cost=1.0, base_cost=4.0, key_id="key-a", ago=timedelta(hours=1)),
        rec("gpt-4o-mini", cost=1.0, base_cost=4.0, key_id="key-b", ago=timedelta(days=3)),
        rec("o3", tier="premium", cost=4.0, base_cost=4.0, key_id="key-a", ago=timedelta(hours=2)),
        rec(
            "claude-haiku-4-5",
            provider="anthropic",
            cost=0.5,
            base_cost=2.5,
            key_id=None,
            status="RateLimitError",
            ago=timedelta(days=10),
            tokens=(50, 0),
        ),
    ):
        log.record(record)
    return log


def test_times_before_the_year_1000_still_compare_in_order(
    open_log: OpenLog,
) -> None:
    # SQLite compares ts as text: a year printed without its leading zeros sorted after 2026.
    log = open_log()
    log.record(UsageRecord(provider="openai", model="gpt-4o-mini"))
    assert len(log.query(since="400000d")) == 1  # about the year 931
    assert log.totals(since=datetime(999, 1, 1))[0].calls == 1


def test_totals_overall(traffic: SQLUsageLog) -> None:
    (total,) = traffic.totals()
    assert (total.group, total.calls, total.errors) == ("all", 4, 1)
    assert (total.input_tokens, total.output_tokens) == (350, 30)
    assert total.cost == pytest.approx(6.5)
    assert total.base_cost == pytest.approx(14.5)
    assert total.savings == pytest.approx(8.0)
    assert total.savings_percent == pytest.approx(800 / 14.5)
    assert total.premium_share == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (
            "model",
            [("o3", 1, 4.0, 1.0), ("gpt-4o-mini", 2, 2.0, 0.0), ("claude-haiku-4-5", 1, 0.5, 0.0)],
        ),
        ("provider", [("openai", 3, 6.0, 1 / 3), ("anthropic", 1, 0.5, 0.0)]),
        ("tier", [("budget", 3, 2.5, 0.0), ("premium", 1, 4.0, 1.0)][::-1]),
        ("key", [("key-a", 2, 5.0, 0.5), ("key-b", 1, 1.0, 0.0), (None, 1, 0.5, 0.0)]),
    ],
)
def test_totals_grouped(
    traffic: SQLUsageLog, by: str, expected: list[tuple[str | None, int, float, float]]
) -> None:
    got = [(t.group, t.calls, t.cost, t.premium_share) for t in traffic.totals(by=by)]
    assert got == [(g, n, pytest.approx(c), pytest.approx(p)) for g, n, c, p in expected]


def test_totals_by_day_and_since(traffic: SQLUsageLog) -> None:
    days = traffic.totals(by="day")
    assert [t.group for t in days] == sorted({r.ts.date().isoformat() for r in traffic.query()})
    assert sum(t.calls for t in days) == 4
    recent = traffic.totals(since="7d", by="model")
    assert [(t.group, t.calls) for t in recent] == [("o3", 1), ("gpt-4o-mini", 2)]
    assert traffic.totals(since="1m", by="model") == []
    (empty,) = traffic.totals(since="1m")
    assert (empty.calls, empty.cost, empty.premium_share) == (0, 0.0, 0.0)
    with pytest.raises(o.ConfigurationError, match="model, provider, tier, key, day"):
        traffic.totals(by="colour")


def test_series_knobs_and_pages_are_aggregated_by_the_database(open_log: OpenLog) -> None:
    log = open_log()
    t0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    rows = [  # (seconds after t0, cost, base_cost, knob, tier)
        (0.5, 1.0, 3.0, 0.88234, "premium"),
        (59.9, 2.0, 3.0, 0.8823, "budget"),
        (61.0, 4.0, 5.0, 0.5, "budget"),
        (3600.0, 8.0, 9.0, None, "premium"),
    ]
    records = [
        UsageRecord(
            provider="openai",
            model=f"m{i}",
            tier=tier,
            ts=t0 + timedelta(seconds=offset),
            cost=cost,
            base_cost=base,
            knob=knob,
        )
        for i, (offset, cost, base, knob, tier) in enumerate(rows)
    ]
    for record in records:
        log.record(record)
    points = log.series(t0, bucket=60)
    assert [(p.start, p.calls, p.cost, p.base_cost) for p in points] == [
        (t0, 2, 3.0, 6.0),
        (t0 + timedelta(minutes=1), 1, 4.0, 5.0),
        (t0 + timedelta(hours=1), 1, 8.0, 9.0),
    ]
    assert [p.calls for p in log.series(t0 + timedelta(seconds=1), bucket=86400)] == [3]
    assert [(k.knob, k.calls, k.premium) for k in log.knob_counts()] == [
        (0.8823, 2, 1),  # 0.88234 rounds to the same setting
        (0.5, 1, 0),
        (None, 1, 1),
    ]
    assert log.oldest() == t0 + timedelta(seconds=0.5)
    assert log.oldest(t0 + timedelta(seconds=60)) == t0 + timedelta(seconds=61)
    assert log.oldest(t0 + timedelta(days=1)) is None
    newest_first = [r.id for r in reversed(records)]
    assert [r.id for r in log.latest(2)] == newest_first[:2]
    last = log.latest(2)[-1]
    assert [r.id for r in log.latest(5, before=(last.ts, last.id))] == newest_first[2:]
    assert log.latest(0) == []
    with pytest.raises(o.ConfigurationError, match="bucket"):
        log.series(bucket=0)


def test_totals_as_csv_and_json(traffic: SQLUsageLog) -> None:
    totals = traffic.totals(by="provider")
    buffer = io.StringIO()
    write_totals_csv(totals, buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [(r["group"], int(r["calls"]), float(r["cost"])) for r in rows] == [
        ("openai", 3, 6.0),
        ("anthropic", 1, 0.5),
    ]
    assert float(rows[1]["savings_percent"]) == pytest.approx(80.0)
    assert json.loads(json.dumps([t.as_dict() for t in totals]))[0]["premium_share"] == 1 / 3


def test_spend_per_key(traffic: SQLUsageLog) -> None:
    assert traffic.spend() == pytest.approx(6.5)
    assert traffic.spend("key-a") == pytest.approx(5.0)
    assert traffic.spend("key-b") == pytest.approx(1.0)
    assert traffic.spend("key-b", since="1d") == 0.0
    assert traffic.spend("nobody") == 0.0
    traffic.record(rec(cost=0.25, key_id="key-b", ago=timedelta(0)))
    # What this process recorded counts at once (reads wait for the queue to be written).
    assert traffic.spend("key-b", since="1d") == pytest.approx(0.25)


def test_export_csv(open_log: OpenLog, tmp_path: Path) -> None:
    log = open_log(store_prompts=True)
    records = [full_record(), full_record(error="boom", status="error", prompt=None, knob=None)]
    records[1] = UsageRecord(**{**_init_fields(records[1]), "ts": NOW - timedelta(minutes=1)})
    for record in records:
        log.record(record)
    buffer = io.StringIO()
    assert log.export_csv(buffer) == 2
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert list(rows[0]) == [
        "id", "ts", "source", "provider", "model", "tier", "strategy", "input_tokens",
        "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost",
        "base_model", "base_cost", "savings", "latency_ms", "routing_ms", "scores", "knob",
        "attempts", "attempts_detail", "status", "error", "key_id", "prompt",
    ]  # fmt: skip
    for row, record in zip(rows, records, strict=True):
        assert row["id"] == record.id
        assert datetime.fromisoformat(row["ts"]) == record.ts
        assert float(row["cost"]) == record.cost
        assert float(row["savings"]) == record.savings
        assert int(row["cache_read_tokens"]) == record.cache_read_tokens
        assert json.loads(row["scores"]) == record.scores
        assert json.loads(row["attempts_detail"]) == record.attempts_detail
        assert row["knob"] == ("" if record.knob is None else str(record.knob))
        assert row["prompt"] == (record.prompt or "")
        assert row["error"] == (record.error or "")
    path = tmp_path / "export.csv"
    assert log.export_csv(path, since=NOW - timedelta(minutes=2)) == 1
    with path.open(newline="", encoding="utf-8") as f:
        assert [r["id"] for r in csv.DictReader(f)] == [records[1].id]


# -- migrations ------------------------------------------------------------------------------


def test_migrations_are_recorded_and_idempotent(open_log: OpenLog, db_url: str) -> None:
    open_log().close()
    open_log().close()
    names = [m.name for m in MIGRATIONS]
    assert names == sorted(names) and len(set(names)) == len(names)
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        applied = conn.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall()
        assert migrate_sqlite(conn) == []
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    else:
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as conn:
            applied = conn.execute(
                "SELECT name, applied_at FROM _migrations ORDER BY name"
            ).fetchall()
            assert migrate_postgres(conn) == []
            indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}
    assert [name for name, _ in applied] == names
    assert all(applied_at for _, applied_at in applied)
    assert {"calls_ts_id", "calls_key_id_ts"} <= indexes
    assert not {"calls_ts", "calls_model"} & indexes  # replaced by m004


def test_a_log_made_by_an_older_version_is_upgraded_in_place(db_url: str) -> None:
    """A database with m001 and m002 only (as 0.2 made it) is migrated and keeps its calls."""
    old = [m for m in MIGRATIONS if m.name in ("m001_create_calls", "m002_index_calls")]
    insert = "INSERT INTO calls (id, ts, source, provider, model, cost) VALUES ({})"
    then = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for migration in old:
            for statement in migration.sqlite:
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, 'then')", (migration.name,))
        ts = then.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")  # as 0.2 wrote it
        conn.execute(insert.format("?, ?, ?, ?, ?, ?"), ("a" * 32, ts, "library", "x", "y", 0.5))
        conn.close()
    else:
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as pg:
            pg.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)")
            for migration in old:
                for statement in migration.postgres:
                    pg.execute(statement)
                pg.execute("INSERT INTO _migrations VALUES (%s, now())", (migration.name,))
            pg.execute(
                insert.format("%s, %s, %s, %s, %s, %s"), ("a" * 32, then, "library", "x", "y", 0.5)
            )
    with open_usage_log(db_url) as log:
        log.record(UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.25))
        assert [r.ts for r in log.latest(5)][1] == then
        assert log.totals(since=then)[0].cost == 0.75
        first = log.series(then, bucket=3600)[0]
        assert (first.start, first.calls) == (then, 1)


# -- writes off the call path ----------------------------------------------------------------


@pytest.fixture
def write_lock(db_url: str) -> Callable[[], Iterator[None]]:
    """Holds the database's write lock from another connection while the context is open."""
    from contextlib import contextmanager

    @contextmanager
    def hold() -> Iterator[None]:
        if db_url.startswith("sqlite"):
            conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("COMMIT")
                conn.close()
        else:
            import psycopg

            with psycopg.connect(db_url) as conn:
                conn.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
                yield
                conn.commit()

    return hold


def test_record_returns_at_once_while_the_database_is_locked(
    open_log: OpenLog, write_lock: Callable[[], Any]
) -> None:
    log = open_log()
    log.record(rec())
    assert log.flush(timeout=10)  # connections open, nothing pending
    durations = []
    with write_lock():
        started = time.perf_counter()
        for _ in range(200):
            t0 = time.perf_counter()
            log.record(rec())
            durations.append(time.perf_counter() - t0)
        assert not log.flush(timeout=0.05)  # the writer really is stuck behind the lock
        time.sleep(max(0.0, 0.3 - (time.perf_counter() - started)))
    assert log.flush(timeout=10)
    assert len(log.query()) == 201
    # A record() that waited for the lock would wait the busy timeout (5 s) or the whole 0.3 s
    # the lock is held; none waits. (Loose bounds: a loaded machine stalls threads too.)
    assert max(durations) < 0.25, max(durations)
    assert statistics.median(durations) < 0.01


def test_a_failed_write_is_retried_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.db"
    log = SQLiteUsageLog(path, busy_timeout=0.02)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        with caplog.at_level(logging.WARNING, logger="orkestra.usage"):
            locker.execute("BEGIN IMMEDIATE")
            log.record(rec())
            deadline = time.monotonic() + 5
            while not caplog.records and time.monotonic() < deadline:
                time.sleep(0.01)
            locker.execute("COMMIT")
            assert log.flush(timeout=10)
        assert len(log.query()) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert any("failed (attempt 1)" in m and "locked" in m for m in messages), messages
        assert any("written after" in m for m in messages), messages
    finally:
        locker.close()
        log.close()


def test_closed_log_refuses_records(open_log: OpenLog) -> None:
    log = open_log()
    log.record(rec())
    log.close()
    assert log.closed
    with pytest.raises(UsageLogClosedError):
        log.record(rec())
    with pytest.raises(UsageLogClosedError):
        log.query()
    log.close()  # twice is fine
    assert len(open_log().query()) == 1  # what was queued was written at close


# -- several processes -----------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from orkestra.usage import UsageRecord, open_usage_log
    url, count, tag, start_at = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    time.sleep(max(0.0, start_at - time.time()))  # open together: migrations race too
    log = open_usage_log(url)
    for i in range(count):
        log.record(UsageRecord(provider="openai", model=tag, cost=0.001, key_id=tag))
        if i % 50 == 0:
            time.sleep(0.005)  # spread the writes so the two processes interleave
    if sys.argv[5] == "close":
        log.close()
    # else: exit without close(); the atexit hook must write what is queued
    """
)


def _python(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_write_concurrently_and_lose_nothing(db_url: str, open_log: OpenLog) -> None:
    start_at = str(time.time() + 1.0)
    procs = [_python(db_url, "1000", tag, start_at, "close") for tag in ("proc-a", "proc-b")]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    log = open_log()
    records = log.query()
    assert len(records) == 2000 == len({r.id for r in records})
    assert {t.group: t.calls for t in log.totals(by="model")} == {"proc-a": 1000, "proc-b": 1000}


def test_processes_opening_a_new_database_at_once_all_succeed(
    db_url: str, open_log: OpenLog
) -> None:
    """Creating the file, switching it to WAL and migrating race here; none may fail."""
    start_at = str(time.time() + 1.0)
    procs = [_python(db_url, "20", f"opener-{i}", start_at, "close") for i in range(6)]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, errors
    assert len(open_log().query()) == 120


def test_nothing_is_lost_at_interpreter_exit(db_url: str, open_log: OpenLog) -> None:
    proc = _python(db_url, "777", "exiting", "0", "no-close")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert open_log().spend("exiting") == pytest.approx(0.777)
    assert len(open_log().query()) == 777


def _record_in_child(log: SQLUsageLog, count: int) -> None:
    for _ in range(count):
        log.record(rec(model="child"))
    # Reads work too, on the child's own connection (the parent's is never touched).
    assert [r.model for r in log.query()].count("child") == count
    log.close()  # a multiprocessing child leaves through os._exit: no atexit


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_records_on_its_own_connections(open_log: OpenLog) -> None:
    log = open_log()
    log.record(rec(model="parent"))
    assert log.flush(timeout=10)
    child = multiprocessing.get_context("fork").Process(target=_record_in_child, args=(log, 25))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    log.record(rec(model="parent"))  # the parent's log still works
    assert {t.group: t.calls for t in log.totals(by="model")} == {"child": 25, "parent": 2}


# -- secrets ---------------------------------------------------------------------------------


def test_a_key_never_reaches_the_database(db_url: str, open_log: OpenLog) -> None:
    log = open_log()
    log.record(
        UsageRecord(
            provider="openai",
            model="gpt-4o-mini",
            status="AuthenticationError",
            error=f"Error code: 401 - Incorrect API key provided: {SECRET}",
            key_id=key_id_for(SECRET),
            attempts=2,
            attempts_detail=[{"error": "AuthenticationError", "message": f"bad key {SECRET}"}],
        )
    )
    log.record(UsageRecord(provider="openai", model="gpt-4o-mini", key_id=SECRET))  # misused
    (first, second) = sorted(log.query(), key=lambda r: r.status)
    assert first.error == "Error code: 401 - Incorrect API key provided: [REDACTED]"
    assert first.attempts_detail == [
        {"error": "AuthenticationError", "message": "bad key [REDACTED]"}
    ]
    assert first.key_id == second.key_id == key_id_for(SECRET)
    journal = log.journal
    assert journal is not None

    def journal_bytes() -> bytes:  # the write-ahead journal holds every record too
        return b"".join(p.read_bytes() for p in journal.iterdir() if p.is_file())

    in_journal = journal_bytes()
    assert b"[REDACTED]" in in_journal
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))

        def file_bytes() -> bytes:
            files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
            return b"".join(p.read_bytes() for p in files if p.is_file())

        while_open = file_bytes()  # the database, its WAL and shared-memory files
        assert Path(f"{path}-wal").is_file()
        log.close()  # checkpoints the WAL into the database
        content = in_journal + while_open + file_bytes()
        assert b"[REDACTED]" in content
    else:
        import psycopg

        with psycopg.connect(db_url) as conn:
            rows = conn.execute("SELECT c::text FROM calls c").fetchall()
            content = in_journal + str(rows).encode()
    assert SECRET.encode() not in content
    assert SECRET[: len(SECRET) // 2].encode() not in content


# -- opening ---------------------------------------------------------------------------------


def test_default_is_sqlite_under_orkestra_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "not" / "yet" / "there"
    monkeypatch.setenv("ORKESTRA_HOME", str(home))
    log = open_usage_log()
    try:
        assert isinstance(log, SQLiteUsageLog)
        assert log.path == home / "usage.db"
        assert (home / "usage.db").stat().st_mode & 0o777 == 0o600
        log.record(rec())
        assert log.flush(timeout=10)
        for path in home.iterdir():  # the WAL and shared-memory files too
            assert path.stat().st_mode & 0o077 == 0, path
    finally:
        log.close()


def test_url_from_the_environment(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORKESTRA_DATABASE_URL", db_url)
    log = open_usage_log()
    try:
        log.record(rec())
        assert len(log.query()) == 1
        assert type(log).__name__ == (
            "SQLiteUsageLog" if "sqlite" in db_url else "PostgresUsageLog"
        )
    finally:
        log.close()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user:hunter2@db/usage",
        "sqlite://",
        "sqlite:///:memory:",
        "/var/lib/orkestra/usage.db",
        "redis://:hunter2@cache:6379/0",
    ],
)
def test_unsupported_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(DatabaseURLError, match=r"sqlite:///") as info:
        open_usage_log(url)
    assert isinstance(info.value, o.ConfigurationError)
    assert isinstance(info.value, ValueError)
    assert "hunter2" not in str(info.value)


def test_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = open_usage_log("sqlite:///logs/usage.db")
    log.close()
    assert (tmp_path / "logs" / "usage.db").is_file()


def test_default_usage_log_is_shared_and_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orkestra import usage

    monkeypatch.setattr(usage, "_default_log", None)
    monkeypatch.setattr(usage, "_default_failed", False)
    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path))
    first = default_usage_log()
    try:
        assert first is not None and first is default_usage_log()
        assert not first.store_prompts
        monkeypatch.setenv("ORKESTRA_USAGE_LOG", "off")
        assert default_usage_log() is None
    finally:
        assert first is not None
        first.close()


def test_usage_log_without_psycopg_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(ImportError, match=r"orkestra-router\[postgres\]"):
        open_usage_log("postgresql://nobody@127.0.0.1:1/none")


def test_record_is_fast_when_nothing_is_wrong(tmp_path: Path) -> None:
    log = open_usage_log(f"sqlite:///{tmp_path}/usage.db")
    try:
        record = rec()
        durations = []
        for _ in range(2000):
            t0 = time.perf_counter()
            log.record(record)
            durations.append(time.perf_counter() - t0)
        assert statistics.median(durations) < 0.0005
        assert log.flush(timeout=30)
    finally:
        log.close()


def test_concurrent_threads_share_one_log(open_log: OpenLog) -> None:
    log = open_log()
    threads = [
        threading.Thread(target=lambda: [log.record(rec(model="threaded")) for _ in range(300)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.totals(by="model")[0].calls == 1200


# -- refusals --------------------------------------------------------------------------------


def test_a_call_refused_before_sending_is_logged_with_no_attempt(
    open_log: OpenLog, fake: object
) -> None:
    """A budget that would be passed, every circuit open: nothing was sent, nothing billed."""
    from orkestra.resilience.breaker import CircuitBreaker
    from orkestra.usage import UsageSink

    log = open_log()
    sink = UsageSink(log)
    broke = o.Provider("openai", budget=0.0, usage_sink=sink)
    with pytest.raises(o.BudgetExceededError):
        broke.chat("What is the capital of Japan?", model="gpt-4o-mini")
    breaker = CircuitBreaker(failure_threshold=1, cooldown=600)
    breaker.failure(("openai", "gpt-4o-mini"))
    tripped = o.Provider("openai", usage_sink=sink, circuit_breaker=breaker, fallback="none")
    with pytest.raises(o.CircuitOpenError):
        tripped.chat("What is the capital of Japan?", model="gpt-4o-mini")
    records = sorted(log.query(), key=lambda r: r.status)
    assert [(r.status, r.attempts, r.cost) for r in records] == [
        ("BudgetExceededError", 0, 0.0),
        ("CircuitOpenError", 0, 0.0),
    ]
    (total,) = log.totals()
    assert (total.calls, total.errors, total.refused) == (2, 2, 2)
    assert log.totals(by="model")[0].refused == 2
