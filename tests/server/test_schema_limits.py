"""JSON Schemas in requests are bounded and checked off the event loop (issue 12, D3 and D7).

Before: a 3 MB ``response_format`` schema was checked with ``jsonschema`` on the event loop,
twice, stalling every request, ``/healthz`` included, for as long (12-20 s in the attack run,
46 s on this busy machine); a schema nested a few hundred levels deep made ``jsonschema``
recurse until ``RecursionError``: a 500, with a 1,950-line traceback in the log.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx2 as httpx
import pytest
from proxy_helpers import CLIENT_KEY, AppClient, LiveServer, chat_body, is_openai_error

import orkestra as o
from orkestra._schema import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
from orkestra.testing import FakeProviderServer

JSON = {"content-type": "application/json"}


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def wide(properties: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            f"field_{i}": {"type": "string", "description": "d" * 20} for i in range(properties)
        },
    }


def with_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return chat_body(
        model="gpt-4o-mini",
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    )


def with_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    return chat_body(model="gpt-4o-mini", tools=[tool])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (with_schema(nested(300)), "response_format.json_schema.schema"),
        (with_tool(nested(300)), "tools[0].function.parameters"),
        (with_schema(nested(MAX_SCHEMA_DEPTH)), "response_format.json_schema.schema"),
    ],
)
def test_a_deeply_nested_schema_is_a_400_not_a_500(
    app_client: AppClient,
    fake: FakeProviderServer,
    caplog: pytest.LogCaptureFixture,
    body: dict[str, Any],
    param: str,
) -> None:
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and is_openai_error(response)
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "schema_too_deep"
    assert f"{MAX_SCHEMA_DEPTH}" in error["message"]
    assert "Traceback" not in caplog.text
    assert fake.requests == []


def test_a_schema_over_the_size_limit_is_refused_at_once(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    schema = wide(MAX_SCHEMA_BYTES // 40)
    assert len(json.dumps(schema)) > MAX_SCHEMA_BYTES
    started = time.perf_counter()
    response = app_client().post("/v1/chat/completions", json=with_schema(schema))
    assert time.perf_counter() - started < 2
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "schema_too_large" and error["param"].endswith("schema")
    assert fake.requests == []


def test_a_schema_within_the_limits_is_served(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    body = with_schema(nested(MAX_SCHEMA_DEPTH // 2 - 2))
    body["max_tokens"] = 2000
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text


def test_the_library_refuses_them_with_a_typed_error(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key)
    for schema in (nested(300), wide(MAX_SCHEMA_BYTES // 40)):
        with pytest.raises(o.InvalidRequestError, match="response_format"):
            provider.chat("Fill it", response_format=schema)
    deep_tool = {"type": "function", "function": {"name": "f", "parameters": nested(300)}}
    with pytest.raises(o.InvalidRequestError, match="tools"):
        provider.chat("Call it", tools=[deep_tool])
    assert fake.requests == []
    provider.close()


@pytest.mark.slow
def test_health_stays_answered_while_big_schemas_are_checked(live: LiveServer) -> None:
    # Eight schemas just under the size limit at once: each takes jsonschema a while to check,
    # in a worker thread; the event loop keeps answering.
    properties = MAX_SCHEMA_BYTES // 80
    payload = json.dumps(with_schema(wide(properties))).encode()
    assert len(json.dumps(wide(properties))) <= MAX_SCHEMA_BYTES
    latencies: list[float] = []
    statuses: list[int] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=120) as client:
            while not done.is_set():
                started = time.perf_counter()
                assert client.get(f"{live.url}/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    def send() -> None:
        response = httpx.post(
            f"{live.url}/v1/chat/completions",
            content=payload,
            headers={**JSON, "authorization": f"Bearer {CLIENT_KEY}"},
            timeout=120,
        )
        statuses.append(response.status_code)

    poller = threading.Thread(target=poll)
    poller.start()
    senders = [threading.Thread(target=send) for _ in range(8)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    poller.join()
    assert len(statuses) == 8 and all(s < 500 or s == 502 for s in statuses)
    assert len(latencies) >= 5
    assert max(latencies) < 1.0, f"/healthz took up to {max(latencies):.2f} s"


def test_a_schema_is_checked_once_then_remembered() -> None:
    import hashlib

    from orkestra import _schema

    schema = {"type": "object", "properties": {"remember_me": {"type": "integer"}}}
    assert _schema.schema_problem(schema) is None
    digest = hashlib.sha256(_schema._canonical(schema).encode()).digest()
    assert digest in _schema._checked
    problem = _schema.schema_problem({"type": "object", "properties": 3})
    assert problem is not None and problem.code == "invalid_schema"
    assert "not a valid JSON Schema" in str(problem)
    # Arrays count as levels too.
    deep_list: Any = "x"
    for _ in range(MAX_SCHEMA_DEPTH + 1):
        deep_list = [deep_list]
    problem = _schema.limits_problem({"enum": deep_list})
    assert problem is not None and problem.code == "schema_too_deep"
