"""The background writer: batches, back-pressure, retries, and loud (never silent) loss."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orkestra import usage
from orkestra.usage import UsageRecord, default_usage_log
from orkestra.usage._writer import BatchWriter
from orkestra.usage.base import SQLUsageLog
from orkestra.usage.sqlite import SQLiteUsageLog


def _rec(model: str = "m", **kwargs: object) -> UsageRecord:
    return UsageRecord(provider="openai", model=model, **kwargs)  # type: ignore[arg-type]


def test_records_are_written_in_batches() -> None:
    batches: list[int] = []
    writer = BatchWriter(lambda batch: batches.append(len(batch)), max_batch=100, max_delay=0.05)
    try:
        for _ in range(1000):
            writer.put(_rec())
        assert writer.flush(timeout=10)
        assert sum(batches) == 1000
        assert max(batches) == 100
        assert len(batches) < 100  # batched, not one transaction per record
    finally:
        writer.close()


def test_a_full_queue_blocks_the_caller_instead_of_dropping() -> None:
    release = threading.Event()
    written: list[UsageRecord] = []

    def slow(batch: list[UsageRecord]) -> None:
        release.wait(10)
        written.extend(batch)

    writer = BatchWriter(slow, max_queue=10, max_batch=5, block_timeout=10)
    try:
        for _ in range(15):  # 5 in the writer's hands, 10 queued: full
            writer.put(_rec())
        threading.Timer(0.2, release.set).start()
        started = time.monotonic()
        writer.put(_rec())  # waits for room
        assert time.monotonic() - started >= 0.15
        assert writer.flush(timeout=10)
        assert len(written) == 16 and writer.dropped == 0
    finally:
        release.set()
        writer.close()


def test_a_queue_that_stays_full_drops_loudly(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    writer = BatchWriter(
        lambda batch: release.wait(10), max_queue=2, max_batch=1, block_timeout=0.05
    )
    try:
        with caplog.at_level(logging.ERROR, logger="orkestra.usage"):
            for _ in range(3):
                writer.put(_rec())
            writer.put(_rec("the-dropped-one"))
        assert writer.dropped == 1
        assert "queue full" in caplog.text and "dropped" in caplog.text
    finally:
        release.set()
        writer.close()


def test_a_refused_record_does_not_sink_its_batch(
    open_log: Callable[..., SQLUsageLog], caplog: pytest.LogCaptureFixture
) -> None:
    log = open_log()
    with caplog.at_level(logging.WARNING, logger="orkestra.usage"):
        log.record(_rec("good-1"))
        log.record(UsageRecord(provider=None, model="bad"))  # type: ignore[arg-type]
        log.record(_rec("good-2"))
        assert log.flush(timeout=10)
    assert sorted(r.model for r in log.query()) == ["good-1", "good-2"]
    assert log.dropped == 1
    assert "refused record" in caplog.text
    assert "not null" in caplog.text.lower() or "not-null" in caplog.text.lower()


def test_close_gives_up_on_a_dead_database_after_its_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.db"
    log = SQLiteUsageLog(path, busy_timeout=0.01)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.ERROR, logger="orkestra.usage"):
            log.record(_rec())
            started = time.monotonic()
            log._writer.close(timeout=0.3)
            assert time.monotonic() - started < 5
        assert log.dropped == 1
        assert "1 records not written" in caplog.text
    finally:
        locker.execute("COMMIT")
        locker.close()
        log.close()


def test_default_log_failing_to_open_does_not_fail_calls(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(usage, "_default_log", None)
    monkeypatch.setattr(usage, "_default_failed", False)
    monkeypatch.setenv("ORKESTRA_DATABASE_URL", "mysql://nowhere/usage")
    with caplog.at_level(logging.ERROR, logger="orkestra.usage"):
        assert default_usage_log() is None
        assert default_usage_log() is None
    assert caplog.text.count("cannot open it") == 1
