"""Fixtures for the fake provider server's own tests: one server, the three real SDK clients."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from orkestra.testing import FakeProviderServer


@pytest.fixture(scope="session")
def _session_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def server(_session_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    """The shared server, with an empty log and script for each test."""
    _session_server.clear()
    yield _session_server
    _session_server.clear()


# The SDK clients are shared by all tests (building one costs tens of milliseconds); they
# never retry, so each call is exactly one request.


@pytest.fixture(scope="session")
def oai(_session_server: FakeProviderServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=_session_server.api_key, base_url=_session_server.openai_base_url, max_retries=0
    ) as client:
        yield client


@pytest.fixture(scope="session")
def claude(_session_server: FakeProviderServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key=_session_server.api_key,
        base_url=_session_server.anthropic_base_url,
        max_retries=0,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def gemini(_session_server: FakeProviderServer) -> Iterator[genai.Client]:
    http_options = types.HttpOptions(base_url=_session_server.google_base_url, api_version="v1beta")
    client = genai.Client(api_key=_session_server.api_key, http_options=http_options)
    yield client  # keep the reference: google-genai closes a collected client (spec §8.1)
    client.close()


@pytest.fixture
def make_gemini(server: FakeProviderServer) -> Iterator[Callable[..., genai.Client]]:
    """Build google-genai clients (v1beta unless told otherwise); all closed at teardown."""
    clients: list[genai.Client] = []  # keep references: the SDK closes a collected client

    def make(**options: Any) -> genai.Client:
        options.setdefault("api_version", "v1beta")
        api_key = options.pop("api_key", server.api_key)
        http_options = types.HttpOptions(base_url=server.google_base_url, **options)
        clients.append(genai.Client(api_key=api_key, http_options=http_options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
def raw(server: FakeProviderServer) -> Callable[..., RawResponse]:
    """``raw(method, path, body=None, headers=None)``: one request over plain http.client."""

    def request(
        method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> RawResponse:
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            data = None if body is None else json.dumps(body).encode()
            all_headers = {"content-type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            payload = response.read()
            names = {k.lower(): v for k, v in response.getheaders()}
            return RawResponse(response.status, names, payload)
        finally:
            conn.close()

    return request
