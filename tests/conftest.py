"""Shared fixtures: a fake provider server on 127.0.0.1 and an environment with no real keys.

The suite never depends on the real date: ``ORKESTRA_TODAY`` (the date the catalog resolves
retirements and prices against, and the fake server retires models on) is pinned to
``TEST_TODAY`` for every test, subprocesses included. ``ORKESTRA_TEST_TODAY=YYYY-MM-DD`` runs the
whole suite on another day; tests/test_dates.py sweeps the coming retirement dates.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pg_server import postgres_server, postgres_url  # noqa: F401 - fixtures for every test dir

TEST_TODAY = os.environ.get("ORKESTRA_TEST_TODAY") or "2026-12-03"

_REAL_ENV = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "ORKESTRA_DATABASE_URL",
    "ORKESTRA_CATALOG",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees a real key or base URL; orkestra's home is a temp dir."""
    for name in _REAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("ORKESTRA_TODAY", TEST_TODAY)
    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path_factory.mktemp("orkestra-home")))


@pytest.fixture(scope="session")
def _server() -> Iterator[object]:
    from orkestra.testing import FakeProviderServer

    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def fake(_server: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The fake provider server, emptied, with its base URLs and keys in the environment."""
    _server.clear()  # type: ignore[attr-defined]
    for name, value in _server.env().items():  # type: ignore[attr-defined]
        monkeypatch.setenv(name, value)
    yield _server
    _server.clear()  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ["ORKESTRA_TODAY"] = TEST_TODAY  # session fixtures and their threads too


@pytest.fixture(autouse=True)
def _fresh_resilience_state() -> Iterator[None]:
    """The circuit breaker and process budget are process-wide: no test inherits another's."""
    from orkestra.resilience import default_breaker, process_budget, set_process_budget

    default_breaker().reset()
    set_process_budget(None)
    process_budget().reset()
    yield
    default_breaker().reset()
    set_process_budget(None)
    process_budget().reset()


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    """orkestra warns once per process about an alias or quirk; each test starts fresh."""
    from orkestra import _endpoint
    from orkestra.catalog import _catalog, lifecycle

    _catalog._warned.clear()
    _endpoint._quirk_warned.clear()
    lifecycle._warned.clear()
