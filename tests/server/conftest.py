"""The proxy under test: in process (Starlette's TestClient) and as a real ``python -m
orkestra.server`` process on 127.0.0.1, both in front of the fake provider server.

The fake provider server here has a key shaped like a real one (``UPSTREAM_KEY``), and the proxy
client keys, so that tests can look for either where it must never appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proxy_helpers import (
    UPSTREAM_KEY,
    AppClient,
    LiveServer,
    config_toml,
    make_config,
    server_env,
    start_server,
)
from starlette.testclient import TestClient

from orkestra.server import create_app
from orkestra.testing import FakeProviderServer
from orkestra.usage import SQLiteUsageLog


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture
def fake(
    upstream: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeProviderServer]:
    """The fake providers, emptied, with their base URLs and (real-looking) key in the env."""
    upstream.clear()
    for name, value in upstream.env().items():
        monkeypatch.setenv(name, value)
    yield upstream
    upstream.clear()


@pytest.fixture
def usage_log(tmp_path: Path) -> Iterator[SQLiteUsageLog]:
    log = SQLiteUsageLog(tmp_path / "usage.db")
    yield log
    log.close()


@pytest.fixture
def app_client(fake: FakeProviderServer, usage_log: SQLiteUsageLog) -> Iterator[AppClient]:
    """``app_client(**config)``: a TestClient over a fresh app (its lifespan running)."""
    opened: list[TestClient] = []

    def make(*, log: SQLiteUsageLog | None = usage_log, **overrides: Any) -> TestClient:
        app = create_app(make_config(**overrides), usage_log=log)
        client = TestClient(app, base_url="http://127.0.0.1:8000")
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def live(
    upstream: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """``python -m orkestra.server --config …`` on a free 127.0.0.1 port, upstream the fake."""
    home = tmp_path_factory.mktemp("live-proxy")
    db = home / "usage.db"
    config = home / "orkestra.toml"
    config.write_text(config_toml(upstream, db))
    server = start_server(config, server_env(home), home / "server.log", db)
    yield server
    server.stop()
