"""The server itself: script queue, request log, lifecycle, wire framing, CLI."""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from hypothesis import given
from hypothesis import strategies as st

from orkestra.testing import FakeProviderServer, Fault, RecordedRequest, Reply
from orkestra.testing._common import Prompt, generate, split_deltas

USER = [{"role": "user", "content": "Hello there, how are you doing today my friend?"}]
CHAT = {"model": "gpt-4o-mini", "messages": USER}
MESSAGES = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": USER}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}
BEARER = {"authorization": "Bearer test-key"}
ANTHROPIC = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
GOOGLE = {"x-goog-api-key": "test-key"}
GEMINI_PATH = "/v1beta/models/gemini-3.5-flash"

Raw = Callable[..., Any]


# ---------------------------------------------------------------- queue matching


def test_queue_matches_provider(server: FakeProviderServer, raw: Raw) -> None:
    server.queue(Reply("for claude"), provider="anthropic")
    chat = raw("POST", "/v1/chat/completions", CHAT, BEARER).json()
    assert chat["choices"][0]["message"]["content"].startswith("[gpt-4o-mini]")
    message = raw("POST", "/v1/messages", MESSAGES, ANTHROPIC).json()
    assert message["content"][0]["text"] == "for claude"
    message = raw("POST", "/v1/messages", MESSAGES, ANTHROPIC).json()
    assert message["content"][0]["text"].startswith("[claude-haiku-4-5]")


def test_queue_matches_model_and_keeps_order(server: FakeProviderServer, raw: Raw) -> None:
    server.queue(Reply("for gpt-4o"), model="gpt-4o")
    server.queue(Reply("for anyone"))
    first = raw("POST", "/v1/chat/completions", CHAT, BEARER).json()
    assert first["choices"][0]["message"]["content"] == "for anyone"  # skipped the gpt-4o item
    second = raw("POST", "/v1/chat/completions", {**CHAT, "model": "gpt-4o"}, BEARER).json()
    assert second["choices"][0]["message"]["content"] == "for gpt-4o"


def test_queue_times(server: FakeProviderServer, raw: Raw) -> None:
    server.queue(Fault.status(500), provider="google", times=2)
    statuses = [
        raw("POST", f"{GEMINI_PATH}:generateContent", GEMINI, GOOGLE).status for _ in range(3)
    ]
    assert statuses == [500, 500, 200]


def test_invalid_requests_do_not_consume_script(server: FakeProviderServer, raw: Raw) -> None:
    server.queue(Reply("scripted"))
    assert raw("POST", "/v1/chat/completions", CHAT, {"authorization": "Bearer no"}).status == 401
    assert raw("POST", "/v1/chat/completions", {**CHAT, "model": "o4-mini"}, BEARER).status == 404
    assert raw("GET", "/v1/models", None, BEARER).status == 200
    chat = raw("POST", "/v1/chat/completions", CHAT, BEARER).json()
    assert chat["choices"][0]["message"]["content"] == "scripted"


def test_clear_forgets_requests_and_script(server: FakeProviderServer, raw: Raw) -> None:
    server.queue(Fault.status(500))
    raw("GET", "/v1/models", None, BEARER)
    server.clear()
    assert server.requests == []
    assert raw("POST", "/v1/chat/completions", CHAT, BEARER).status == 200


def test_queue_arguments_are_validated(server: FakeProviderServer) -> None:
    with pytest.raises(ValueError, match="provider"):
        server.queue(Reply(), provider="mistral")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        server.queue(Reply(), times=0)
    with pytest.raises(TypeError):
        server.queue("hello")  # type: ignore[arg-type]


def test_reply_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="include cached_tokens"):
        Reply(input_tokens=5, cached_tokens=10)
    with pytest.raises(ValueError, match="include reasoning_tokens"):
        Reply(output_tokens=5, reasoning_tokens=10)
    with pytest.raises(ValueError):
        Reply(cached_tokens=-1)
    with pytest.raises(TypeError):
        Reply("text", 5)  # type: ignore[call-arg]


def test_same_reply_bills_the_same_everywhere(
    server: FakeProviderServer,
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
    gemini: genai.Client,
) -> None:
    reply = Reply(
        "Same.",
        input_tokens=1000,
        output_tokens=300,
        cached_tokens=600,
        cache_write_tokens=100,
        reasoning_tokens=200,
    )
    server.queue(reply, times=3)
    o = oai.chat.completions.create(model="gpt-5", messages=USER).usage
    a = claude.messages.create(model="claude-opus-4-8", max_tokens=1000, messages=USER).usage
    g = gemini.models.generate_content(
        model="gemini-3.1-pro-preview", contents="Hello"
    ).usage_metadata
    assert o is not None and g is not None
    assert o.prompt_tokens_details is not None
    prompts = [
        o.prompt_tokens,
        a.input_tokens + (a.cache_read_input_tokens or 0) + (a.cache_creation_input_tokens or 0),
        g.prompt_token_count,
    ]
    cached = [
        o.prompt_tokens_details.cached_tokens,
        a.cache_read_input_tokens,
        g.cached_content_token_count,
    ]
    outputs = [
        o.completion_tokens,
        a.output_tokens,
        (g.candidates_token_count or 0) + (g.thoughts_token_count or 0),
    ]
    assert prompts == [1000, 1000, 1000]
    assert cached == [600, 600, 600]
    assert outputs == [300, 300, 300]


# ---------------------------------------------------------------- request log


def test_recorded_requests(server: FakeProviderServer, raw: Raw) -> None:
    raw("POST", "/v1/chat/completions", {**CHAT, "stream": True}, BEARER)
    raw("POST", "/v1/messages", MESSAGES, ANTHROPIC)
    raw("POST", f"{GEMINI_PATH}:streamGenerateContent?alt=sse", GEMINI, GOOGLE)
    openai_req, anthropic_req, google_req = server.requests
    assert openai_req.provider == "openai"
    assert openai_req.method == "POST"
    assert openai_req.path == "/v1/chat/completions"
    assert openai_req.model == "gpt-4o-mini"
    assert openai_req.stream is True
    assert openai_req.body["messages"] == USER
    assert openai_req.headers["authorization"] == "Bearer test-key"
    assert anthropic_req.provider == "anthropic" and anthropic_req.stream is False
    assert anthropic_req.headers["anthropic-version"] == "2023-06-01"
    assert google_req.provider == "google"
    assert google_req.model == "gemini-3.5-flash"
    assert google_req.stream is True
    assert google_req.query == {"alt": "sse"}
    assert google_req.path == f"{GEMINI_PATH}:streamGenerateContent"


def test_requests_is_a_snapshot(server: FakeProviderServer, raw: Raw) -> None:
    before = server.requests
    raw("GET", "/v1/models", None, BEARER)
    assert before == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/chat/completions", {"authorization": "Bearer sk-secret-value"}),
        ("/v1/messages", {"x-api-key": "sk-secret-value", "anthropic-version": "2023-06-01"}),
        (f"{GEMINI_PATH}:generateContent", {"x-goog-api-key": "sk-secret-value"}),
        (f"{GEMINI_PATH}:generateContent?key=sk-secret-value", {}),
    ],
)
def test_repr_masks_keys(
    server: FakeProviderServer, raw: Raw, path: str, headers: dict[str, str]
) -> None:
    raw("POST", path, {**CHAT, **GEMINI}, headers)
    recorded = server.requests[-1]
    assert isinstance(recorded, RecordedRequest)
    assert "sk-secret-value" not in repr(recorded)
    assert "sk-secret-value" not in str([recorded])
    assert "***" in repr(recorded)
    assert "sk-secret-value" in str(recorded.headers) + str(recorded.query)  # data is kept


# ---------------------------------------------------------------- wire details


def test_non_streaming_replies_have_content_length(raw: Raw) -> None:
    response = raw("POST", "/v1/chat/completions", CHAT, BEARER)
    assert response.headers["content-length"] == str(len(response.body))
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")


def test_chat_stream_framing(raw: Raw) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = raw("POST", "/v1/chat/completions", body, BEARER)
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.body.decode()
    assert "event:" not in text
    assert text.endswith("data: [DONE]\n\n")
    frames = text.split("\n\n")[:-1]
    assert all(frame.startswith("data: ") for frame in frames)


def test_responses_stream_framing(raw: Raw) -> None:
    body = {"model": "gpt-4o", "input": "Hi there", "stream": True}
    text = raw("POST", "/v1/responses", body, BEARER).body.decode()
    assert "[DONE]" not in text
    for frame in text.split("\n\n")[:-1]:
        event, data = frame.split("\n")
        assert data.startswith('data: {"type":"' + event.removeprefix("event: ") + '"')


def test_anthropic_stream_framing(raw: Raw) -> None:
    text = raw("POST", "/v1/messages", {**MESSAGES, "stream": True}, ANTHROPIC).body.decode()
    frames = text.split("\n\n")[:-1]
    assert all(frame.startswith("event: ") for frame in frames)
    events = [frame.split("\n")[0].removeprefix("event: ") for frame in frames]
    assert "ping" in events
    assert events[0] == "message_start" and events[-1] == "message_stop"


def test_gemini_stream_framing(raw: Raw) -> None:
    path = f"{GEMINI_PATH}:streamGenerateContent?alt=sse"
    text = raw("POST", path, GEMINI, GOOGLE).body.decode()
    frames = text.split("\r\n\r\n")
    assert frames[-1] == ""
    assert len(frames[:-1]) >= 3
    assert all(f.startswith("data: {") and "\n" not in f for f in frames[:-1])


def test_gemini_stream_without_sse_is_a_json_array(raw: Raw) -> None:
    response = raw("POST", f"{GEMINI_PATH}:streamGenerateContent", GEMINI, GOOGLE)
    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) >= 3
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_raw_cut_stream_is_an_incomplete_chunked_body(server: FakeProviderServer, raw: Raw) -> None:
    server.queue(Fault.cut_stream(after_chunks=1))
    with pytest.raises(http.client.IncompleteRead):
        raw("POST", "/v1/chat/completions", {**CHAT, "stream": True}, BEARER)


def test_keep_alive_across_requests(server: FakeProviderServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for body in ({**CHAT, "stream": True}, CHAT, {**CHAT, "stream": True}):
            conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=BEARER)
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        sock = conn.sock
        conn.request("GET", "/v1/models", headers=BEARER)
        conn.getresponse().read()
        assert conn.sock is sock  # still the same connection
    finally:
        conn.close()


def test_provider_style_errors(raw: Raw) -> None:
    missing = raw("POST", "/v1/chat/completions", CHAT)
    assert missing.status == 401
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    bad_json = raw("POST", "/v1/messages", None, ANTHROPIC)
    assert bad_json.status == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    wrong = raw("POST", f"{GEMINI_PATH}:generateContent", GEMINI, {"x-goog-api-key": "nope"})
    assert wrong.status == 400
    assert wrong.json() == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key.",
                },
            ],
        }
    }
    no_key = raw("POST", f"{GEMINI_PATH}:generateContent", GEMINI)
    assert no_key.status == 403
    assert no_key.json()["error"]["status"] == "PERMISSION_DENIED"
    role = {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}
    assert raw("POST", f"{GEMINI_PATH}:generateContent", role, GOOGLE).status == 400


def test_gemini_key_in_query(raw: Raw) -> None:
    response = raw("POST", f"{GEMINI_PATH}:generateContent?key=test-key", GEMINI)
    assert response.status == 200


def test_unknown_paths_are_404(raw: Raw) -> None:
    response = raw("POST", "/v1/embeddings", {"model": "x"}, BEARER)
    assert response.status == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/embeddings)"
    assert raw("GET", "/v1/nothing", None, ANTHROPIC).json()["error"]["type"] == "not_found_error"
    assert raw("GET", "/v1beta/nothing", None, GOOGLE).json()["error"]["status"] == "NOT_FOUND"
    assert raw("GET", "/", None).status == 404


def test_context_window_is_enforced(raw: Raw) -> None:
    huge = [{"role": "user", "content": "x" * (4 * 128_001)}]
    response = raw("POST", "/v1/chat/completions", {**CHAT, "messages": huge}, BEARER)
    assert response.status == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_concurrent_requests(server: FakeProviderServer, raw: Raw) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        status = raw("POST", "/v1/chat/completions", CHAT, BEARER).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 12
    assert len(server.requests) == 12


# ---------------------------------------------------------------- lifecycle


def test_lifecycle_and_addresses() -> None:
    server = FakeProviderServer(api_key="k-123")
    with pytest.raises(RuntimeError):
        _ = server.url
    assert repr(server) == "FakeProviderServer(stopped)"
    server.start()
    try:
        with pytest.raises(RuntimeError):
            server.start()
        assert server.url.startswith("http://127.0.0.1:")
        assert server.openai_base_url == server.url + "/v1"
        assert server.anthropic_base_url == server.google_base_url == server.url
        assert server.api_key == "k-123"
        assert server.env() == {
            "OPENAI_BASE_URL": server.url + "/v1",
            "ANTHROPIC_BASE_URL": server.url,
            "GOOGLE_GEMINI_BASE_URL": server.url,
            "GOOGLE_GENAI_API_VERSION": "v1beta",
            "NO_PROXY": "127.0.0.1,localhost",
            "OPENAI_API_KEY": "k-123",
            "ANTHROPIC_API_KEY": "k-123",
            "GOOGLE_API_KEY": "k-123",
        }
        assert "k-123" not in repr(server)
    finally:
        server.stop()
    server.stop()  # idempotent
    with server:  # and restartable
        assert server.url


def test_stop_closes_idle_connections_and_interrupts_delays() -> None:
    server = FakeProviderServer().start()
    host, port = server.url.removeprefix("http://").split(":")
    idle = http.client.HTTPConnection(host, int(port), timeout=5)
    idle.request("GET", "/v1/models", headers=BEARER)
    idle.getresponse().read()
    server.queue(Fault.delay(30))
    outcome: list[object] = []

    def slow() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("POST", "/v1/chat/completions", body=json.dumps(CHAT), headers=BEARER)
            outcome.append(conn.getresponse().status)
        except (OSError, http.client.HTTPException) as error:
            outcome.append(error)
        finally:
            conn.close()

    waiter = threading.Thread(target=slow)
    waiter.start()
    deadline = time.monotonic() + 5
    while len(server.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.requests) == 2  # the delayed request has arrived
    started = time.monotonic()
    server.stop()
    waiter.join(timeout=5)
    assert time.monotonic() - started < 2
    assert outcome and not isinstance(outcome[0], int)
    with pytest.raises((OSError, http.client.HTTPException)):
        idle.request("GET", "/v1/models", headers=BEARER)
        idle.getresponse()
    idle.close()


# ---------------------------------------------------------------- entry points


def test_import_does_not_need_pytest() -> None:
    code = "import sys, orkestra.testing; assert 'pytest' not in sys.modules, 'pytest imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


# The command line run with SIGINT ignored from the start, as a background job of a
# non-interactive shell (a CI script's `cmd &`) inherits it.
_SIGINT_IGNORED = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.argv[0] = 'orkestra.testing'; runpy.run_module('orkestra.testing', run_name='__main__')"
)


@pytest.mark.parametrize("start", ["-m", "SIGINT ignored"])
def test_command_line_serves_until_interrupted(start: str) -> None:
    """Ctrl-C stops it, also when it was started with SIGINT ignored."""
    command = ["-m", "orkestra.testing"] if start == "-m" else ["-c", _SIGINT_IGNORED]
    process = subprocess.Popen(
        [sys.executable, *command, "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        exports = dict(
            process.stdout.readline().removeprefix("export ").strip().split("=", 1)
            for _ in range(8)
        )
        assert exports["OPENAI_API_KEY"] == "cli-key"
        assert exports["GOOGLE_GENAI_API_VERSION"] == "v1beta"
        host, port = exports["ANTHROPIC_BASE_URL"].removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", "/v1/models", headers={"authorization": "Bearer cli-key"})
        assert conn.getresponse().status == 200
        conn.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# ---------------------------------------------------------------- generator properties


@given(st.text(max_size=300))
def test_deltas_reassemble_the_text(text: str) -> None:
    deltas = split_deltas(text)
    assert "".join(deltas) == text
    if len(text) >= 3:
        assert len(deltas) >= 3
    assert all(deltas)


@given(
    text=st.text(max_size=200),
    cap=st.one_of(st.none(), st.integers(min_value=1, max_value=100)),
    cached=st.integers(0, 50),
    written=st.integers(0, 50),
    reasoning=st.integers(0, 80),
)
def test_generation_respects_the_cap_and_usage_rules(
    text: str, cap: int | None, cached: int, written: int, reasoning: int
) -> None:
    reply = Reply(
        text, cached_tokens=cached, cache_write_tokens=written, reasoning_tokens=reasoning
    )
    gen = generate("m", Prompt("some prompt text", "hi", cap), reply)
    assert gen.input_tokens >= cached + written
    assert 0 <= gen.reasoning_tokens <= gen.output_tokens
    assert "".join(gen.deltas) == gen.text
    assert gen.text == text[: len(gen.text)]
    wanted = math.ceil(len(text) / 4) + reasoning
    if cap is not None and wanted > cap:
        assert gen.finish == "length"
        assert gen.output_tokens == cap
    else:
        assert gen.finish == "stop"
        assert (gen.text, gen.output_tokens, gen.reasoning_tokens) == (text, wanted, reasoning)
