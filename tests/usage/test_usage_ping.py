"""``ping()``: the readiness probe of a usage log (``/readyz``), on both backends."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orkestra.usage import SQLiteUsageLog, SQLUsageLog, UsageLogClosedError, UsageRecord


def test_a_working_log_answers_its_ping(open_log: Callable[..., SQLUsageLog]) -> None:
    log = open_log()
    log.record(UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.001))
    log.ping()  # no exception: the database answers
    assert log.flush(5)


def test_a_closed_log_fails_its_ping(open_log: Callable[..., SQLUsageLog]) -> None:
    log = open_log()
    log.close()
    with pytest.raises(UsageLogClosedError):
        log.ping()


def test_a_sqlite_log_whose_directory_went_away_fails_its_ping(tmp_path: Path) -> None:
    folder = tmp_path / "volume"
    log = SQLiteUsageLog(folder / "usage.db")
    try:
        log.ping()
        shutil.rmtree(folder)  # an unmounted volume, a cleaned-up temp dir
        with pytest.raises(PermissionError, match="not writable"):
            log.ping()
    finally:
        log.close()


def test_a_postgres_log_whose_database_is_gone_fails_its_ping(
    postgres_server: str, postgres_url: str
) -> None:
    import psycopg

    from orkestra.usage import PostgresUsageLog

    log = PostgresUsageLog(postgres_url, connect_timeout=5)
    try:
        log.ping()
        name = postgres_url.rsplit("/", 1)[1]
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        # The connection the log held is cut first; asking again finds no database at all.
        with pytest.raises(psycopg.OperationalError):
            log.ping()
        with pytest.raises(psycopg.OperationalError, match="does not exist"):
            log.ping()
    finally:
        log.close()
