"""Real databases for the usage-log tests: a SQLite file in tmp_path, and a PostgreSQL server
(the session's throwaway one, ``postgres_url``: see ``tests/pg_server.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orkestra.usage import open_usage_log
from orkestra.usage.base import SQLUsageLog


@pytest.fixture(autouse=True)
def _no_usage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ORKESTRA_DATABASE_URL", "ORKESTRA_USAGE_LOG", "ORKESTRA_STORE_PROMPTS"):
        monkeypatch.delenv(name, raising=False)


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
