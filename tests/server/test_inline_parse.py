"""Small requests with no JSON Schema are parsed on the event loop (the hop to a worker thread
cost more CPU than their parse); anything that may take long to check still goes to a worker
(tests/server/test_schema_limits.py). Either way a bad body gets the same 400."""

from __future__ import annotations

import json

import pytest
from proxy_helpers import AppClient, chat_body, is_openai_error

from orkestra.server.body import INLINE_PARSE_BYTES, parses_quickly
from orkestra.testing import FakeProviderServer

SMALL = json.dumps(chat_body(model="gpt-4o-mini")).encode()
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}


def _body(**extra: object) -> bytes:
    return json.dumps(chat_body(model="gpt-4o-mini", **extra)).encode()


def test_small_bodies_without_a_schema_are_parsed_at_once() -> None:
    assert parses_quickly(SMALL)
    assert parses_quickly(_body(text="x" * (INLINE_PARSE_BYTES - len(SMALL))))


@pytest.mark.parametrize(
    "raw",
    [
        _body(text="x" * INLINE_PARSE_BYTES),  # too big to be sure it is quick
        _body(tools=[TOOL]),  # a tool's parameters: a JSON Schema
        _body(response_format=SCHEMA),
        json.dumps({"model": "claude-haiku-4-5", "tools": [{"input_schema": {}}]}).encode(),
        # A key spelled with escapes could be "schema": the parse decides, off the loop.
        SMALL.replace(b'"model"', b'"\\u006dodel"'),
    ],
    ids=["big", "tool", "response_format", "input_schema", "escaped"],
)
def test_bodies_that_may_be_slow_to_check_go_to_a_worker(raw: bytes) -> None:
    assert not parses_quickly(raw)


@pytest.mark.parametrize("levels", [1200, 20000], ids=["small body", "big body"])
def test_a_body_that_nests_too_deeply_is_a_400_on_either_path(
    app_client: AppClient, fake: FakeProviderServer, levels: int
) -> None:
    content = "[" * levels + "]" * levels
    raw = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ' + content.encode()
    raw += b"}]}"
    assert parses_quickly(raw) == (levels == 1200)
    response = app_client().post(
        "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and is_openai_error(response)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"model": "gpt-4o-mini", "messages": []}', "messages"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user"}]', None),  # not JSON
        (_body(temperature="hot"), "temperature"),
    ],
    ids=["no messages", "truncated", "wrong type"],
)
def test_a_bad_small_body_gets_its_400(
    app_client: AppClient, fake: FakeProviderServer, raw: bytes, param: str | None
) -> None:
    assert parses_quickly(raw)
    response = app_client().post(
        "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and is_openai_error(response)
    assert response.json()["error"]["param"] == param
    assert fake.requests == []


def test_a_small_body_is_served(app_client: AppClient, fake: FakeProviderServer) -> None:
    response = app_client().post(
        "/v1/chat/completions", content=SMALL, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    assert len(fake.requests) == 1
