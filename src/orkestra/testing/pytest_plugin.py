"""pytest plugin: ``pytest_plugins = ["orkestra.testing.pytest_plugin"]`` gives ``fake_providers``.

The fixture starts a fresh `FakeProviderServer` for each test and points the official SDKs at
it through the environment (base URLs, keys, ``GOOGLE_GENAI_API_VERSION=v1beta``,
``NO_PROXY``), so code that builds its clients from the environment needs no changes::

    def test_my_code(fake_providers):
        fake_providers.queue(Fault.status(529), provider="anthropic")
        ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import FakeProviderServer

# Variables that would send the SDKs somewhere else or make them pick other credentials.
_UNSET = (
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GEMINI_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
)


@pytest.fixture
def fake_providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviderServer]:
    """A running fake provider server, with the SDK environment variables pointing at it."""
    with FakeProviderServer() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("no_proxy", server.env()["NO_PROXY"])
        for name in _UNSET:
            monkeypatch.delenv(name, raising=False)
        yield server
