"""The dashboard's fixtures: a real SQLite usage log, a real server, a server-sent-event reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dashboard_helpers import EventStream
from starlette.applications import Starlette

from orkestra import analytics, usage
from orkestra.dashboard import DashboardServer
from orkestra.usage import SQLiteUsageLog


@pytest.fixture(autouse=True)
def _no_usage_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ORKESTRA_DATABASE_URL", "ORKESTRA_USAGE_LOG", "ORKESTRA_STORE_PROMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path / "home"))


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[Callable[..., SQLiteUsageLog]]:
    """Opens SQLite usage logs on ``tmp_path/usage.db`` (each open is a fresh connection)."""
    opened: list[SQLiteUsageLog] = []

    def open_log(*, store_prompts: bool = False, name: str = "usage.db") -> SQLiteUsageLog:
        log = SQLiteUsageLog(tmp_path / name, store_prompts=store_prompts)
        opened.append(log)
        return log

    yield open_log
    for log in opened:
        log.close()


@pytest.fixture
def log(make_log: Callable[..., SQLiteUsageLog]) -> SQLiteUsageLog:
    return make_log()


@pytest.fixture
def serve() -> Iterator[Callable[[Starlette], DashboardServer]]:
    """Serves an app with real uvicorn on a free 127.0.0.1 port, on a thread."""
    servers: list[DashboardServer] = []

    def start(app: Starlette) -> DashboardServer:
        server = DashboardServer(app, port=0)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def process_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], usage.SQLUsageLog]]:
    """The process-wide usage log, fresh for the test (under its ORKESTRA_HOME), and analytics
    reset; closes both afterwards."""
    monkeypatch.setattr(usage, "_default_log", None)
    monkeypatch.setattr(usage, "_default_failed", False)
    monkeypatch.setattr(analytics, "_warned", False)

    def current() -> usage.SQLUsageLog:
        log = usage.default_usage_log()
        assert log is not None
        return log

    yield current
    analytics.set_analytics(False)
    opened = usage._default_log
    if opened is not None:
        opened.close()


@pytest.fixture
def open_events() -> Iterator[Callable[..., EventStream]]:
    streams: list[EventStream] = []

    def start(url: str, headers: dict[str, str] | None = None) -> EventStream:
        stream = EventStream(url, headers)
        streams.append(stream)
        return stream

    yield start
    for stream in streams:
        stream.close()
