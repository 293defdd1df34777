"""The same two rules on a request's ``tools`` on every API the proxy serves: at most 128 (the
OpenAI limit the proxy keeps everywhere), and no two with one name. Each is a 400 that says so,
with nothing sent upstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from proxy_helpers import AppClient

from orkestra.testing import FakeProviderServer

SCHEMA = {"type": "object", "properties": {}}
USER = [{"role": "user", "content": "What is the weather?"}]


def chat(names: list[str]) -> tuple[str, dict[str, Any]]:
    tools = [{"type": "function", "function": {"name": n, "parameters": SCHEMA}} for n in names]
    return "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": USER, "tools": tools}


def responses(names: list[str]) -> tuple[str, dict[str, Any]]:
    tools = [{"type": "function", "name": n, "parameters": SCHEMA} for n in names]
    body = {"model": "gpt-4o-mini", "input": "What is the weather?", "tools": tools}
    return "/v1/responses", body


def messages(names: list[str]) -> tuple[str, dict[str, Any]]:
    tools = [{"name": n, "input_schema": SCHEMA} for n in names]
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": USER, "tools": tools}
    return "/v1/messages", body


WIRES = pytest.mark.parametrize("wire", [chat, responses, messages], ids=lambda w: w.__name__)
Wire = Callable[[list[str]], tuple[str, dict[str, Any]]]


@WIRES
def test_more_than_128_tools_are_refused(
    app_client: AppClient, fake: FakeProviderServer, wire: Wire
) -> None:
    path, body = wire([f"tool_{i}" for i in range(129)])
    response = app_client().post(path, json=body)
    assert response.status_code == 400
    assert "129 tools; at most 128 are allowed" in response.json()["error"]["message"]
    assert fake.requests == []


@WIRES
def test_two_tools_with_one_name_are_refused(
    app_client: AppClient, fake: FakeProviderServer, wire: Wire
) -> None:
    path, body = wire(["weather", "news", "weather"])
    response = app_client().post(path, json=body)
    assert response.status_code == 400
    assert "two tools are named 'weather'" in response.json()["error"]["message"]
    assert fake.requests == []


@WIRES
def test_128_distinct_tools_are_accepted(app_client: AppClient, wire: Wire) -> None:
    path, body = wire([f"tool_{i}" for i in range(128)])
    assert app_client().post(path, json=body).status_code == 200
