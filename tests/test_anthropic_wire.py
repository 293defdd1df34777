"""The anthropic adapter posts the body it builds with the SDK's ``post`` (skipping the rest of
``messages.create``, and reading a whole answer as its JSON object rather than as the SDK's
Message). These tests hold that to the installed SDK: every request the adapter sends, sync or
async, streamed or not, reaches the fake exactly as ``create`` with the same arguments sends it
(method, path, query, every header, body), in a traced context too; and an answer read as JSON
gives what the SDK's typed Message (and the typed stream events) say."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anthropic
import pytest
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from samples import PLACE_SCHEMA, RICH_TURNS, TIME, WEATHER

from orkestra._request import ModelParams
from orkestra._types import ToolCall
from orkestra.catalog import ModelInfo, default_catalog
from orkestra.errors import MalformedResponseError
from orkestra.providers import make_adapter
from orkestra.providers.anthropic import NON_STREAMING_MAX_TOKENS, build_call, read_message
from orkestra.providers.base import (
    Adapter,
    ChatRequest,
    ClientSettings,
    Finished,
    ForcedTool,
    Message,
    ResponseFormat,
)
from orkestra.testing import FakeProviderServer, RecordedRequest, Reply

MODEL: ModelInfo = default_catalog().tier_model("anthropic", "budget")

RICH = ChatRequest(
    MODEL,
    RICH_TURNS,
    300,
    None,
    tools=(WEATHER, TIME),
    tool_choice=ForcedTool("get_time"),
    session="conv-7",
    params=ModelParams(stop=("END",), parallel_tool_calls=False),
)
REQUESTS = {
    "rich": RICH,
    "tools on auto": ChatRequest(
        MODEL, (Message("user", "Weather in Oslo?"),), 200, None, tools=(WEATHER,)
    ),
    "structured": ChatRequest(
        MODEL,
        (Message("system", "Answer in JSON."), Message("user", "Where and when?")),
        100,
        None,
        response_format=ResponseFormat("place", PLACE_SCHEMA, strict=True),
    ),
    "json mode": ChatRequest(
        MODEL, (Message("user", "A colour."),), 50, None, response_format=ResponseFormat()
    ),
}
SETTINGS = {"default timeout": {}, "own timeout": {"timeout": 30.0, "connect_timeout": 2.0}}


def _settings(fake: FakeProviderServer, which: str) -> ClientSettings:
    return ClientSettings(fake.api_key, fake.anthropic_base_url, **SETTINGS[which])


@pytest.fixture(params=list(SETTINGS))
def settings(request: pytest.FixtureRequest, fake: FakeProviderServer) -> ClientSettings:
    return _settings(fake, request.param)


@pytest.fixture
def adapter(settings: ClientSettings) -> Iterator[Adapter]:
    made = make_adapter("anthropic", settings)
    yield made
    made.close()


def _seen(request: RecordedRequest) -> tuple[Any, ...]:
    """Everything the fake received (no header here differs from one request to the next)."""
    return (
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        request.stream,
    )


def _client_options(settings: ClientSettings) -> dict[str, Any]:
    """The client options the adapter makes its clients with."""
    return {
        "api_key": settings.api_key,
        "base_url": settings.base_url,
        "timeout": anthropic.Timeout(settings.timeout, connect=settings.connect_timeout),
        "max_retries": settings.max_retries,
    }


def _by_create(settings: ClientSettings, request: ChatRequest, *, stream: bool) -> Any:
    """What ``create`` sends and answers for ``request``: the Message, or the stream's events."""
    params = build_call(request).params
    with anthropic.Anthropic(**_client_options(settings)) as client:
        if not stream:
            return client.messages.create(**params)
        with client.messages.create(**params, stream=True) as events:
            return list(events)


async def _by_acreate(settings: ClientSettings, request: ChatRequest, *, stream: bool) -> None:
    """The same with the async client (whose headers say so)."""
    params = build_call(request).params
    async with anthropic.AsyncAnthropic(**_client_options(settings)) as client:
        if not stream:
            await client.messages.create(**params)
            return
        async with await client.messages.create(**params, stream=True) as events:
            async for _ in events:
                pass


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_call_sends_what_create_sends(
    fake: FakeProviderServer, adapter: Adapter, settings: ClientSettings, name: str
) -> None:
    request = REQUESTS[name]
    adapter.complete(request)
    _by_create(settings, request, stream=False)
    assert not fake.requests[0].stream
    assert _seen(fake.requests[0]) == _seen(fake.requests[1])

    asyncio.run(adapter.acomplete(request))
    asyncio.run(_by_acreate(settings, request, stream=False))
    assert _seen(fake.requests[2]) == _seen(fake.requests[3])
    assert fake.requests[2].body == fake.requests[0].body


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_stream_sends_what_create_sends(
    fake: FakeProviderServer, adapter: Adapter, settings: ClientSettings, name: str
) -> None:
    request = REQUESTS[name]
    events = list(adapter.stream(request))
    sdk_events = _by_create(settings, request, stream=True)
    assert fake.requests[0].stream
    assert _seen(fake.requests[0]) == _seen(fake.requests[1])
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.usage.output_tokens == sdk_events[-2].usage.output_tokens

    async def read() -> list[Any]:
        return [event async for event in adapter.astream(request)]

    assert replace(asyncio.run(read())[-1], response_id=finished.response_id) == finished
    asyncio.run(_by_acreate(settings, request, stream=True))
    assert _seen(fake.requests[2]) == _seen(fake.requests[3])
    assert fake.requests[2].body == fake.requests[0].body


def _refused_by_create(fake: FakeProviderServer, request: ChatRequest) -> None:
    client = anthropic.Anthropic(api_key=fake.api_key, base_url=fake.anthropic_base_url)
    with client, pytest.raises(ValueError, match="Streaming is required"):
        client.messages.create(**build_call(request).params)


def test_a_long_call_streams_as_create_requires(fake: FakeProviderServer, adapter: Adapter) -> None:
    """``create`` refuses a non-streaming call it expects to outlast its 10-minute timeout."""
    model = default_catalog().tier_model("anthropic", "premium")
    request = ChatRequest(
        model, (Message("user", "Write a lot."),), NON_STREAMING_MAX_TOKENS + 1, None
    )
    _refused_by_create(fake, request)
    text, finished = adapter.complete(request)
    assert text and finished.stop_reason == "stop"
    assert [r.stream for r in fake.requests] == [True]


@pytest.fixture
def traced() -> Iterator[str]:
    """A current span context, as inside a traced request of an application (the global tracer
    provider stays the no-op one: create's span then carries that context on)."""
    parent = SpanContext(0x5EED, 0xFACE, is_remote=False, trace_flags=TraceFlags(1))
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    yield f"00-{0x5EED:032x}-{0xFACE:016x}-01"
    context.detach(token)


def test_a_traced_call_propagates_its_trace_as_create_does(
    fake: FakeProviderServer, adapter: Adapter, settings: ClientSettings, traced: str
) -> None:
    request = REQUESTS["structured"]
    adapter.complete(request)
    _by_create(settings, request, stream=False)
    list(adapter.stream(request))
    _by_create(settings, request, stream=True)
    assert [r.headers.get("traceparent") for r in fake.requests] == [traced] * 4
    assert _seen(fake.requests[0]) == _seen(fake.requests[1])
    assert _seen(fake.requests[2]) == _seen(fake.requests[3])


def test_client_headers_from_the_environment_go_as_with_create(
    fake: FakeProviderServer,
    adapter: Adapter,
    settings: ClientSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``create`` drops its unset per-call workspace header so that a client-level one stays."""
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "anthropic-workspace-id: wrkspc_7\nx-team: a")
    adapter.complete(REQUESTS["tools on auto"])
    _by_create(settings, REQUESTS["tools on auto"], stream=False)
    assert fake.requests[0].headers["anthropic-workspace-id"] == "wrkspc_7"
    assert _seen(fake.requests[0]) == _seen(fake.requests[1])


# ---------------------------------------------------------------- reading the answer

ANSWERS = {
    "cached text": (
        REQUESTS["tools on auto"],
        Reply(
            "Cloudy.",
            input_tokens=1500,
            cached_tokens=1024,
            cache_write_tokens=300,
            reasoning_tokens=12,
        ),
    ),
    "tool calls": (
        REQUESTS["tools on auto"],
        Reply(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {})]),
    ),
    "forced tool": (RICH, Reply(tool_calls=[("get_time", {"zone": "CET"})])),
    "cut short": (REQUESTS["tools on auto"], Reply("a b c d e f", finish_reason="length")),
    "refused": (REQUESTS["tools on auto"], Reply("No.", finish_reason="refusal")),
    "json mode": (REQUESTS["json mode"], Reply(tool_calls=[("response", {"colour": "red"})])),
    "structured": (REQUESTS["structured"], None),
}


def _sdk_reading(message: anthropic.types.Message, format_tool: str | None) -> dict[str, Any]:
    """What the SDK's typed Message says: text (a JSON-mode answer's tool input included), the
    other tool calls, usage and stop reason."""
    texts, calls = [], []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use" and block.name == format_tool:
            texts.append(json.dumps(block.input))
        elif block.type == "tool_use":
            calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
    usage = message.usage
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    details = getattr(usage, "output_tokens_details", None)
    return {
        "text": "".join(texts),
        "calls": tuple(calls),
        "usage": (
            usage.input_tokens + read + written,
            usage.output_tokens,
            read,
            written,
            getattr(details, "thinking_tokens", None) or 0,
        ),
        "stop": message.stop_reason,
        "model": message.model,
    }


@pytest.mark.parametrize("name", list(ANSWERS))
def test_an_answer_read_as_json_says_what_the_sdk_message_says(
    fake: FakeProviderServer, adapter: Adapter, settings: ClientSettings, name: str
) -> None:
    request, reply = ANSWERS[name]
    call = build_call(request)
    for _ in range(3):
        if reply is not None:
            fake.queue(reply, provider="anthropic")
    text, finished = adapter.complete(request)
    sdk = _sdk_reading(_by_create(settings, request, stream=False), call.format_tool)
    usage = finished.usage
    assert text == sdk["text"] and finished.tool_calls == sdk["calls"]
    assert text or finished.tool_calls  # every answer here says something
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    ) == sdk["usage"]
    assert finished.model_version == sdk["model"]
    if call.format_tool is None:  # a JSON-mode answer ends like text (see _finish_reason)
        assert finished.finish_reason == sdk["stop"]
    # The typed stream events give the same Finished.
    streamed = list(adapter.stream(request))
    assert "".join(getattr(e, "text", "") for e in streamed) == text
    assert replace(streamed[-1], response_id=finished.response_id) == finished


def test_the_expected_stop_reasons_and_a_json_mode_answer_as_text(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    for name, expected in [("cut short", "length"), ("refused", "content_filter")]:
        request, reply = ANSWERS[name]
        fake.queue(reply, provider="anthropic")
        assert adapter.complete(request)[1].stop_reason == expected
    request, reply = ANSWERS["json mode"]
    fake.queue(reply, provider="anthropic")
    text, finished = adapter.complete(request)
    assert json.loads(text) == {"colour": "red"} and finished.tool_calls == ()
    assert finished.stop_reason == "stop" and finished.finish_reason == "end_turn"


ANSWER: dict[str, Any] = {
    "id": "msg_9",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [
        {"type": "thinking", "thinking": "hm", "signature": "x"},
        {"type": "text", "text": "Checking. "},
        {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "answer", "input": {"a": [1, "é"]}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": None,
        "output_tokens": 30,
    },
}


@pytest.mark.parametrize("shape", ["json object", "json text"])
def test_a_whole_answer_is_read_from_its_json(shape: str) -> None:
    """``post`` hands back the JSON object (or, sent as another content type, its text)."""
    answer = ANSWER if shape == "json object" else json.dumps(ANSWER)
    text, finished = read_message(answer, "answer", "claude-haiku-4-5")
    assert text == 'Checking. {"a": [1, "\\u00e9"]}'
    assert finished.tool_calls == (ToolCall("toolu_1", "get_time", "{}"),)
    assert finished.stop_reason == "tool_calls" and finished.finish_reason == "tool_use"
    assert (finished.response_id, finished.model_version) == ("msg_9", ANSWER["model"])
    usage = finished.usage
    assert (usage.input_tokens, usage.output_tokens) == (2010, 30)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (
        2000,
        0,
        0,
    )


def test_an_answer_without_usage_or_blocks_is_empty() -> None:
    text, finished = read_message({"id": "x", "content": []}, None, "m")
    assert text == "" and finished.tool_calls == () and finished.usage.input_tokens == 0


@pytest.mark.parametrize(
    "body", [{"id": "x", "type": "message"}, {}, {"content": "hi"}, {"content": 3}, [], "[1]", 7]
)
def test_an_answer_without_a_content_list_is_malformed(body: object) -> None:
    """Not an empty answer: nothing says the model answered at all."""
    with pytest.raises(MalformedResponseError, match="anthropic/m: got 200 OK without an answer"):
        read_message(body, None, "m")
