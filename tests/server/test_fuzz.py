"""Fuzzing the HTTP API: malformed JSON, wrong types, huge and deep bodies, invalid UTF-8.

Whatever arrives, the answer is a success or a 4xx with an OpenAI-shaped error, never a 500,
and the server keeps serving. In process with hypothesis, then against a real server process.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxy_helpers import CLIENT_KEY, AppClient, LiveServer, chat_body, client_key, is_openai_error
from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings(
    # A fuzzed temperature may reach a model that cannot take it: the library warns, which the
    # test run would otherwise turn into an error inside the server.
    "ignore::orkestra.OrkestraWarning"
)

MAX_BODY = 64 * 1024
AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
# Raw bodies say they are JSON, so that they reach the parser (anything else is a 415 first).
AUTH_JSON = {**AUTH, "content-type": "application/json"}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "stream",
    "stream_options",
    "user",
    "tools",
    "tool_choice",
    "response_format",
    "top_p",
    "stop",
    "n",
    "seed",
]
MODELS = st.sampled_from(
    ["orkestra/auto", "orkestra/openai", "gpt-4o-mini", "claude-haiku-4-5", "gemini-3.5-flash"]
)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request with one part replaced, removed or added."""
    body: dict[str, Any] = {
        "model": draw(MODELS),
        "messages": [{"role": "user", "content": draw(st.text(min_size=1, max_size=30))}],
        "max_tokens": 20,
    }
    how = draw(st.sampled_from(["replace", "remove", "add", "message", "content"]))
    if how == "replace":
        body[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif how == "remove":
        body.pop(draw(st.sampled_from(sorted(body))))
    elif how == "add":
        body[draw(st.text(max_size=20))] = draw(json_values)
    elif how == "message":
        body["messages"].append(draw(json_values))
    else:
        body["messages"][0][draw(st.sampled_from(["role", "content", "name", "x"]))] = draw(
            json_values
        )
    return body


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_bodies().map(lambda b: json.dumps(b).encode()),
    # Valid JSON syntax with invalid UTF-8 or lone surrogates inside its strings.
    st.binary(min_size=1, max_size=20).map(
        lambda b: (
            b'{"model": "orkestra/auto", "messages": [{"role": "user", "content": "'
            + b"\xff"
            + b
            + b'"}]}'
        )
    ),
    st.sampled_from(["\\ud800", "\\udfff", "a\\ud83d"]).map(
        lambda s: json.dumps(chat_body()).replace("capital", s).encode()
    ),
)


def check(response: Any) -> None:
    assert response.status_code != 500, response.text
    if response.status_code >= 400:
        assert 400 <= response.status_code < 500, response.text
        assert is_openai_error(response), response.text


def deep(levels: int) -> bytes:
    return b'{"model": "orkestra/auto", "messages": ' + b"[" * levels + b"]" * levels + b"}"


SPECIAL_BODIES = [
    b"",
    b" ",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"model": NaN, "messages": []}',
    b'{"model": "orkestra/auto", "messages": [], "temperature": Infinity}',
    b'{"model": "orkestra/auto", "max_tokens": 1' + b"0" * 5000 + b"}",
    deep(100_000),
    b"\xef\xbb\xbf" + json.dumps(chat_body()).encode(),  # a BOM
    json.dumps(chat_body()).encode("utf-16"),
    b"\x00" * 100,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=raw_bodies)
def _fuzz_in_process(client: TestClient, body: bytes) -> None:
    check(client.post("/v1/chat/completions", content=body, headers=AUTH_JSON))


def test_fuzzed_bodies_in_process(app_client: AppClient) -> None:
    client = app_client(keys=(client_key(),), max_body_bytes=MAX_BODY)
    _fuzz_in_process(client)
    for body in SPECIAL_BODIES:
        check(client.post("/v1/chat/completions", content=body, headers=AUTH_JSON))
    assert client.post("/v1/chat/completions", json=chat_body(), headers=AUTH).status_code == 200


@settings(max_examples=200, deadline=None)
@given(body=mutated_bodies(), stream=st.booleans())
def _fuzz_fields(client: TestClient, body: dict[str, Any], stream: bool) -> None:
    if stream:
        body = {**body, "stream": True}
    check(client.post("/v1/chat/completions", json=body, headers=AUTH))


def test_fuzzed_fields_in_process(app_client: AppClient) -> None:
    _fuzz_fields(app_client(keys=(client_key(),)))


@settings(max_examples=100, deadline=None)
@given(
    authorization=st.one_of(
        st.none(), st.text(max_size=60), st.binary(max_size=60).map(lambda b: b.decode("latin-1"))
    ),
    path=st.sampled_from(["/v1/chat/completions", "/v1/models", "/v1/models/x", "/nope"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def _fuzz_requests(client: TestClient, authorization: str | None, path: str, method: str) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    try:
        response = client.request(method, path, headers=headers, content=b"{}")
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # a header the client itself refuses to send
    check(response)


def test_fuzzed_headers_paths_and_methods(app_client: AppClient) -> None:
    _fuzz_requests(app_client(keys=(client_key(),)))


def test_huge_bodies_are_413(app_client: AppClient) -> None:
    client = app_client(max_body_bytes=MAX_BODY)
    for size in (MAX_BODY + 1, 5 * 1024 * 1024):
        response = client.post(
            "/v1/chat/completions",
            content=b'{"model": "' + b"x" * size + b'"}',
            headers=AUTH_JSON,
        )
        assert response.status_code == 413 and is_openai_error(response)
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 200


# -- against a real server process -----------------------------------------------------------

RAW_REQUESTS = [
    # A body that never finishes arriving: the client hangs up.
    b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"model":',
    # Not HTTP at all.
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
    # A broken chunked body.
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    # A header line with no colon, and one too long.
    b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
]


def send_raw(url: str, data: bytes) -> None:
    """Write ``data`` on a fresh connection, read whatever comes back briefly, hang up."""
    host, port = url.removeprefix("http://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=2) as sock,
        contextlib.suppress(OSError),
    ):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)


@pytest.mark.slow
def test_a_real_server_survives_the_fuzz(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, headers=AUTH_JSON, timeout=30) as http:

        @settings(max_examples=150, deadline=None)
        @given(body=raw_bodies)
        def fuzz(body: bytes) -> None:
            check(http.post("/v1/chat/completions", content=body))

        fuzz()
        for body in [*SPECIAL_BODIES, b"x" * (5 * 1024 * 1024)]:
            check(http.post("/v1/chat/completions", content=body))
        for raw in RAW_REQUESTS:
            send_raw(live.url, raw)
        answer = http.post("/v1/chat/completions", json=chat_body())
        assert answer.status_code == 200
    assert live.alive()
    assert "Traceback" not in live.output()
