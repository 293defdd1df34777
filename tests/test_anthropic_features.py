"""The anthropic adapter end to end against the fake: tool calls, structured output, images,
the session prompt-cache hint and async calls, all through the real ``anthropic`` SDK."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import pytest
from samples import PNG, TIME, WEATHER

from orkestra._types import ToolCall
from orkestra.catalog import ModelInfo, default_catalog
from orkestra.errors import InvalidRequestError, ProviderConnectionError, RateLimitError
from orkestra.providers import make_adapter
from orkestra.providers._errors import map_error
from orkestra.providers.anthropic import AnthropicAdapter
from orkestra.providers.base import (
    ChatRequest,
    ClientSettings,
    Finished,
    ForcedTool,
    Image,
    Message,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    Tool,
    UsageReport,
)
from orkestra.testing import FakeProviderServer, Fault, Reply

MODEL: ModelInfo = default_catalog().tier_model("anthropic", "budget")
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
}
# Over 1024 fake tokens (4 characters each): long enough for the prompt cache.
MANUAL = "Section: the operator checks every valve before the morning shift starts. " * 60
BREAKPOINT = {"type": "ephemeral"}


@pytest.fixture
def adapter(fake: FakeProviderServer) -> Iterator[AnthropicAdapter]:
    made = make_adapter("anthropic", ClientSettings(fake.api_key, fake.anthropic_base_url))
    assert isinstance(made, AnthropicAdapter)
    yield made
    made.close()


def _request(*messages: Message, **options: Any) -> ChatRequest:
    return ChatRequest(MODEL, tuple(messages), options.pop("max_tokens", 200), None, **options)


def _streamed(events: list[StreamEvent]) -> tuple[str, Finished]:
    assert isinstance(events[-1], Finished)
    assert not any(isinstance(e, Finished) for e in events[:-1])
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events[-1]


def _body(fake: FakeProviderServer) -> dict[str, Any]:
    body: dict[str, Any] = fake.requests[-1].body
    return body


def _wire(value: object) -> str:
    return json.dumps(value)


# ---------------------------------------------------------------- conversations and tools


def test_repr_hides_the_key(adapter: AnthropicAdapter, fake: FakeProviderServer) -> None:
    assert fake.api_key not in repr(adapter) and "***" in repr(adapter)


def test_multi_turn_with_a_system_prompt(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    request = _request(
        Message("system", "Be brief."),
        Message("user", "Name a colour."),
        Message("assistant", "Blue."),
        Message("user", "Name a fruit that has that colour"),
    )
    text, finished = adapter.complete(request)
    assert text == "[claude-haiku-4-5] Name a fruit that has that colour"
    assert finished.finish_reason == "end_turn"
    assert finished.tool_calls == ()
    body = _body(fake)
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Name a fruit that has that colour"},
    ]
    assert "temperature" not in body and "tools" not in body and "cache_control" not in _wire(body)


def _tool_round_trip(adapter: AnthropicAdapter, *, stream: bool) -> tuple[ToolCall, str]:
    ask = (Message("system", "Use tools."), Message("user", "What is the weather in Paris?"))

    def run(request: ChatRequest) -> tuple[str, Finished]:
        if stream:
            return _streamed(list(adapter.stream(request)))
        return adapter.complete(request)

    text, finished = run(_request(*ask, tools=(WEATHER, TIME)))
    assert text == ""
    assert finished.finish_reason == "tool_use"
    (call,) = finished.tool_calls
    assert call.name == "get_weather" and call.args == {"city": "example city"}
    assert call.id.startswith("toolu_01") and call.signature is None
    answer = Message("tool", "18 degrees and sunny", tool_call_id=call.id, name=call.name)
    follow_up = (*ask, Message("assistant", "", tool_calls=(call,)), answer)
    text, finished = run(_request(*follow_up, tools=(WEATHER, TIME)))
    assert finished.finish_reason == "end_turn" and finished.tool_calls == ()
    return call, text


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_tool_call_round_trip(
    adapter: AnthropicAdapter, fake: FakeProviderServer, stream: bool
) -> None:
    call, text = _tool_round_trip(adapter, stream=stream)
    assert text == "[claude-haiku-4-5] tool results: 18 degrees and sunny"
    first, second = fake.requests[-2].body, fake.requests[-1].body
    assert first.get("stream", False) is stream
    assert first["tools"] == [
        {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "input_schema": WEATHER.parameters,
        },
        {"name": "get_time", "input_schema": TIME.parameters},
    ]
    assert "tool_choice" not in first  # "auto" is the API's default
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": call.id, "name": "get_weather", "input": call.args}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees and sunny"}
            ],
        },
    ]


def test_streamed_tool_calls_arrive_on_finished_only(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    fake.queue(
        Reply("Checking both.", tool_calls=[("get_weather", {"city": "Oslo"}), ("get_time", {})]),
        provider="anthropic",
    )
    events = list(
        adapter.stream(_request(Message("user", "Weather and time?"), tools=(WEATHER, TIME)))
    )
    assert isinstance(events[0], UsageReport)
    text, finished = _streamed(events)
    assert text == "Checking both."
    assert [(c.name, c.args) for c in finished.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {}),
    ]
    assert finished.finish_reason == "tool_use"


def test_parallel_tool_results_share_one_user_turn(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    calls = (
        ToolCall("toolu_a", "get_weather", '{"city": "Oslo"}'),
        ToolCall("toolu_b", "get_time"),
    )
    request = _request(
        Message("user", "Weather and time in Oslo?"),
        Message("assistant", "Let me check.", tool_calls=calls),
        Message("tool", "Rain", tool_call_id="toolu_a", name="get_weather"),
        Message("tool", "09:00", tool_call_id="toolu_b", name="get_time"),
        tools=(WEATHER, TIME),
    )
    text, _ = adapter.complete(request)
    assert text == "[claude-haiku-4-5] tool results: Rain; 09:00"
    messages = _body(fake)["messages"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
    ]
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "Rain"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": "09:00"},
        ],
    }
    assert len(messages) == 3


def test_forced_tool_choice(adapter: AnthropicAdapter, fake: FakeProviderServer) -> None:
    request = _request(
        Message("user", "What time is it in Tokyo?"),
        tools=(WEATHER, TIME),
        tool_choice=ForcedTool("get_time"),
    )
    _, finished = adapter.complete(request)
    assert [c.name for c in finished.tool_calls] == ["get_time"]
    assert _body(fake)["tool_choice"] == {"type": "tool", "name": "get_time"}


@pytest.mark.parametrize(
    ("choice", "wire", "calls"),
    [("required", {"type": "any"}, ["get_weather"]), ("none", {"type": "none"}, [])],
)
def test_required_and_none_tool_choice(
    adapter: AnthropicAdapter, fake: FakeProviderServer, choice: Any, wire: object, calls: object
) -> None:
    request = _request(Message("user", "Weather?"), tools=(WEATHER,), tool_choice=choice)
    text, finished = adapter.complete(request)
    assert [c.name for c in finished.tool_calls] == calls
    assert (text == "") is bool(calls)
    assert _body(fake)["tool_choice"] == wire


# ---------------------------------------------------------------- structured output


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_structured_output_sends_the_schema_and_answers_matching_json(
    adapter: AnthropicAdapter, fake: FakeProviderServer, stream: bool
) -> None:
    request = _request(
        Message("user", "Describe Ada Lovelace."), response_format=ResponseFormat("person", PERSON)
    )
    if stream:
        text, finished = _streamed(list(adapter.stream(request)))
    else:
        text, finished = adapter.complete(request)
    jsonschema.validate(json.loads(text), PERSON)
    assert finished.finish_reason == "end_turn"
    fmt = _body(fake)["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["schema"]
    assert schema["additionalProperties"] is False  # what Anthropic requires of every object
    assert schema["required"] == ["name", "age", "tags"]
    assert set(schema["properties"]) == {"name", "age", "tags"}
    assert "minimum" not in schema["properties"]["age"]  # unsupported: moved to the description
    assert "tools" not in _body(fake)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_json_mode_is_a_forced_answer_tool(
    adapter: AnthropicAdapter, fake: FakeProviderServer, stream: bool
) -> None:
    fake.queue(Reply(tool_calls=[("answer", {"city": "Paris", "rank": 1})]), provider="anthropic")
    request = _request(
        Message("user", "The biggest French city, as JSON."),
        response_format=ResponseFormat("answer"),
    )
    if stream:
        text, finished = _streamed(list(adapter.stream(request)))
    else:
        text, finished = adapter.complete(request)
    assert json.loads(text) == {"city": "Paris", "rank": 1}
    assert finished.tool_calls == ()
    assert finished.finish_reason == "end_turn"
    body = _body(fake)
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert body["tools"][0]["name"] == "answer"
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert "output_config" not in body


def test_json_mode_with_tools_lets_the_model_call_them(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    request = _request(
        Message("user", "Weather in Rome, as JSON."),
        tools=(WEATHER,),
        response_format=ResponseFormat(),
    )
    _, finished = adapter.complete(request)
    assert [c.name for c in finished.tool_calls] == ["get_weather"]
    body = _body(fake)
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["get_weather", "response"]


# ---------------------------------------------------------------- images


def test_image_parts_on_the_wire(adapter: AnthropicAdapter, fake: FakeProviderServer) -> None:
    request = _request(
        Message(
            "user",
            "What is in these pictures?",
            images=(Image(PNG), Image("https://example.com/cat.jpg")),
        )
    )
    text, _ = adapter.complete(request)
    assert text == "[claude-haiku-4-5] What is in these pictures?"
    assert _body(fake)["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",")[1]},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is in these pictures?"},
    ]


def test_a_tool_result_can_carry_an_image(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    call = ToolCall("toolu_s", "screenshot")
    shot = Tool("screenshot", "Take a screenshot.")
    request = _request(
        Message("user", "Show me the screen."),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "Here it is", tool_call_id="toolu_s", images=(Image(PNG),)),
        tools=(shot,),
    )
    text, _ = adapter.complete(request)
    assert text == "[claude-haiku-4-5] tool results: Here it is"
    (result,) = _body(fake)["messages"][-1]["content"]
    assert result["content"] == [
        {"type": "text", "text": "Here it is"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",")[1]},
        },
    ]


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://example.com/cat.jpg", "https only"),
        ("data:image/bmp;base64,Qk0=", "not image/bmp"),
        ("data:image/png;base64,@@@", "invalid base64"),
        ("ftp://example.com/cat.jpg", "data: URL or an http"),
    ],
)
def test_images_anthropic_cannot_take_fail_before_the_call(
    adapter: AnthropicAdapter, fake: FakeProviderServer, url: str, match: str
) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        adapter.complete(_request(Message("user", "Look", images=(Image(url),))))
    assert fake.requests == []


# ---------------------------------------------------------------- prompt cache


def test_session_marks_cache_breakpoints_and_the_second_turn_reads_the_cache(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    first_turn = (Message("system", MANUAL), Message("user", "What is checked first?"))
    text, first = adapter.complete(_request(*first_turn, session="s-1"))
    body = _body(fake)
    assert body["system"] == [{"type": "text", "text": MANUAL, "cache_control": BREAKPOINT}]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is checked first?", "cache_control": BREAKPOINT}
            ],
        }
    ]
    assert first.usage.cache_read_tokens == 0
    assert first.usage.cache_write_tokens == first.usage.input_tokens > 1024

    second_turn = (*first_turn, Message("assistant", text), Message("user", "And after that?"))
    _, second = adapter.complete(_request(*second_turn, session="s-1"))
    messages = _body(fake)["messages"]
    assert messages[0] == {"role": "user", "content": "What is checked first?"}  # moved on
    assert messages[-1]["content"][-1]["cache_control"] == BREAKPOINT
    assert second.usage.cache_read_tokens == first.usage.input_tokens
    assert 0 < second.usage.cache_write_tokens < 100  # only the new turns are written
    assert second.usage.input_tokens > second.usage.cache_read_tokens


def test_no_session_no_breakpoints_no_cache(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    request = _request(Message("system", MANUAL), Message("user", "What is checked first?"))
    for _ in range(2):
        _, finished = adapter.complete(request)
        assert "cache_control" not in _wire(_body(fake))
        assert finished.usage.cache_read_tokens == finished.usage.cache_write_tokens == 0


def test_session_breakpoint_on_a_tool_result(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    call = ToolCall("toolu_x", "get_weather", '{"city": "Oslo"}')
    adapter.complete(
        _request(
            Message("user", "Weather in Oslo?"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "Rain", tool_call_id="toolu_x"),
            tools=(WEATHER,),
            session="s-2",
        )
    )
    body = _body(fake)
    assert "system" not in body
    assert body["messages"][-1]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_x",
            "content": "Rain",
            "cache_control": BREAKPOINT,
        }
    ]


# ---------------------------------------------------------------- long requests


def test_long_max_tokens_goes_through_the_stream_with_tools(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    request = _request(Message("user", "Weather in Lima?"), tools=(WEATHER,), max_tokens=30_000)
    text, finished = adapter.complete(request)
    assert _body(fake)["stream"] is True
    assert text == "" and [c.name for c in finished.tool_calls] == ["get_weather"]
    text, finished = asyncio.run(adapter.acomplete(request))
    assert _body(fake)["stream"] is True
    assert [c.name for c in finished.tool_calls] == ["get_weather"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("messages", "options", "match"),
    [
        (
            (Message("assistant", "", tool_calls=(ToolCall("t1", "get_weather", "{oops"),)),),
            {},
            "must be a JSON object",
        ),
        ((Message("tool", "Rain"),), {}, "tool_call_id"),
        ((Message("user", "Hi"),), {"tool_choice": ForcedTool("nope")}, "not one of"),
        ((Message("user", "Hi"),), {"tool_choice": "required"}, "needs tools"),
        (
            (Message("user", "Hi"),),
            {"tools": (WEATHER,), "response_format": ResponseFormat("get_weather")},
            "another name",
        ),
        (
            (Message("assistant", "Look", images=(Image(PNG),)),),
            {},
            "user turns only",
        ),
    ],
)
def test_bad_requests_fail_before_any_call(
    adapter: AnthropicAdapter,
    fake: FakeProviderServer,
    messages: tuple[Message, ...],
    options: dict[str, Any],
    match: str,
) -> None:
    request = _request(Message("user", "Start"), *messages, **options)
    with pytest.raises(InvalidRequestError, match=match):
        adapter.complete(request)
    with pytest.raises(InvalidRequestError, match=match):
        asyncio.run(adapter.acomplete(request))
    assert fake.requests == []


# ---------------------------------------------------------------- async


async def _async_results(
    adapter: AnthropicAdapter, request: ChatRequest
) -> tuple[tuple[str, Finished], list[StreamEvent]]:
    completed = await adapter.acomplete(request)
    streamed = [event async for event in adapter.astream(request)]
    return completed, streamed


@pytest.mark.parametrize(
    "request_",
    [
        _request(Message("system", "Be brief."), Message("user", "Say something nice")),
        _request(Message("user", "Weather in Bergen?"), tools=(WEATHER,)),
    ],
    ids=["text", "tools"],
)
def test_async_gives_what_sync_gives(
    adapter: AnthropicAdapter, fake: FakeProviderServer, request_: ChatRequest
) -> None:
    sync_text, sync_finished = adapter.complete(request_)
    sync_events = list(adapter.stream(request_))
    for _ in range(2):  # a new event loop each time: a new async client, the old one closed
        (text, finished), events = asyncio.run(_async_results(adapter, request_))
        assert (text, finished.tool_calls, finished.usage) == (
            sync_text,
            sync_finished.tool_calls,
            sync_finished.usage,
        )
        assert finished.finish_reason == sync_finished.finish_reason
        assert [e for e in events if not isinstance(e, Finished)] == [
            e for e in sync_events if not isinstance(e, Finished)
        ]
        assert _streamed(events)[0] == sync_text
        last = events[-1]
        assert isinstance(last, Finished) and last.tool_calls == sync_finished.tool_calls
        assert last.usage == sync_finished.usage
    assert len(fake.requests) == 6


def test_each_loop_gets_its_own_client_closed_when_the_loop_ends(
    adapter: AnthropicAdapter,
) -> None:
    async def client_pair() -> tuple[anthropic.AsyncAnthropic, anthropic.AsyncAnthropic]:
        return await adapter.async_client(), await adapter.async_client()

    first, again = asyncio.run(client_pair())
    assert first is again  # one client per loop
    assert first.is_closed()  # closed from inside its loop as asyncio.run finished
    second, _ = asyncio.run(client_pair())
    assert second is not first and second.is_closed()


def test_aclose_and_close_close_the_async_client(adapter: AnthropicAdapter) -> None:
    async def use_then_aclose() -> anthropic.AsyncAnthropic:
        client = await adapter.async_client()
        await adapter.aclose()
        assert client.is_closed()
        return client

    asyncio.run(use_then_aclose())
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(adapter.async_client())
        adapter.close()  # the loop is idle, not closed: close() runs the client's close in it
        assert client.is_closed()
    finally:
        loop.close()


def test_async_errors_map_like_sync_ones(
    adapter: AnthropicAdapter, fake: FakeProviderServer
) -> None:
    request = _request(Message("user", "Hello"))

    async def streamed() -> list[StreamEvent]:
        return [event async for event in adapter.astream(request)]

    for call in (lambda: asyncio.run(adapter.acomplete(request)), lambda: asyncio.run(streamed())):
        fake.queue(Fault.status(429, retry_after=2), provider="anthropic")
        with pytest.raises(anthropic.RateLimitError) as raised:
            call()
        mapped = map_error(raised.value, provider="anthropic", model=MODEL.id, api_key=fake.api_key)
        assert isinstance(mapped, RateLimitError)
        assert mapped.status_code == 429 and mapped.retry_after == 2.0
        assert fake.api_key not in str(mapped)


# ---------------------------------------------------------------- a stream without its end


class _EndlessStartHandler(http.server.BaseHTTPRequestHandler):
    """Answers every message request with a stream that ends cleanly before message_stop."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": MODEL.id,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        }
        events = [
            start,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ]
        body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def unfinished_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessStartHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_stream_ending_before_message_stop_is_a_connection_error(unfinished_server: str) -> None:
    adapter = make_adapter("anthropic", ClientSettings("k", unfinished_server))
    request = _request(Message("user", "hi"))
    seen: list[StreamEvent] = []

    async def drain() -> None:
        async for event in adapter.astream(request):
            seen.append(event)

    try:
        for run in (lambda: seen.extend(adapter.stream(request)), lambda: asyncio.run(drain())):
            seen.clear()
            with pytest.raises(ProviderConnectionError, match="before message_stop"):
                run()
            assert seen[1:] == [TextDelta("Hi")]
    finally:
        adapter.close()
