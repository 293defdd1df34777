"""The openai adapter end to end against the fake: tools, structured output, images, the prompt
cache hint, async calls, and the OpenAI-compatible local-server mode."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import jsonschema
import openai
import pytest
from samples import PNG, TIME, WEATHER

from orkestra._types import ToolCall
from orkestra.catalog import ModelInfo, default_catalog
from orkestra.errors import InvalidRequestError, ProviderConnectionError, RateLimitError
from orkestra.providers import make_adapter
from orkestra.providers._errors import map_error
from orkestra.providers.base import (
    Adapter,
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
    ToolChoice,
)
from orkestra.testing import FakeProviderServer, Fault, Reply

MODEL: ModelInfo = default_catalog().tier_model("openai", "budget")


@pytest.fixture
def adapter(fake: FakeProviderServer) -> Iterator[Adapter]:
    made = make_adapter("openai", ClientSettings(fake.api_key, fake.openai_base_url))
    yield made
    made.close()


def _request(*messages: Message, **options: Any) -> ChatRequest:
    return ChatRequest(MODEL, tuple(messages), options.pop("max_tokens", 200), None, **options)


def _body(fake: FakeProviderServer, index: int = -1) -> dict[str, Any]:
    body = fake.requests[index].body
    assert isinstance(body, dict)
    return body


def _split(events: list[StreamEvent]) -> tuple[str, Finished]:
    """A stream's text and its one Finished, which must come last."""
    *deltas, last = events
    assert isinstance(last, Finished)
    assert all(isinstance(d, TextDelta) for d in deltas)
    return "".join(d.text for d in deltas if isinstance(d, TextDelta)), last


def _with_result(request: ChatRequest, call: ToolCall, result: str) -> ChatRequest:
    """The next request of a tool round trip: the assistant's call, then its result."""
    turns = (
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", result, tool_call_id=call.id, name=call.name),
    )
    return ChatRequest(
        request.model, request.messages + turns, request.max_tokens, None, tools=request.tools
    )


# ---------------------------------------------------------------- conversation and tools


def test_multi_turn_with_a_system_prompt(fake: FakeProviderServer, adapter: Adapter) -> None:
    request = _request(
        Message("system", "Be brief."),
        Message("user", "Name a colour."),
        Message("assistant", "Blue."),
        Message("user", "Another one please"),
    )
    text, finished = adapter.complete(request)
    assert text == f"[{MODEL.id}] Another one please"
    assert finished.finish_reason == "stop"
    assert finished.tool_calls == ()
    assert _body(fake)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one please"},
    ]
    assert "tools" not in _body(fake) and "tool_choice" not in _body(fake)


def test_tool_call_round_trip(fake: FakeProviderServer, adapter: Adapter) -> None:
    fake.queue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    request = _request(Message("user", "Weather in Paris?"), tools=(WEATHER, TIME))
    text, finished = adapter.complete(request)
    assert text == ""
    assert finished.finish_reason == "tool_calls"
    (call,) = finished.tool_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"}
    assert call.id.startswith("call_") and call.signature is None
    assert _body(fake)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The current weather in a city.",
                "parameters": dict(WEATHER.parameters),
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": dict(TIME.parameters)}},
    ]

    text, finished = adapter.complete(_with_result(request, call, "18 C and sunny"))
    assert "18 C and sunny" in text
    assert finished.finish_reason == "stop" and finished.tool_calls == ()
    assert _body(fake)["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call.to_openai()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
    ]


def test_streamed_tool_calls_are_assembled(fake: FakeProviderServer, adapter: Adapter) -> None:
    fake.queue(
        Reply(
            "Checking both.",
            tool_calls=[("get_weather", {"city": "Oslo, Norway"}), ("get_time", {"zone": "CET"})],
        )
    )
    request = _request(Message("user", "Weather and time in Oslo?"), tools=(WEATHER, TIME))
    text, finished = _split(list(adapter.stream(request)))
    assert text == "Checking both."  # text still streams as deltas next to the calls
    assert finished.finish_reason == "tool_calls"
    assert [(c.name, c.args) for c in finished.tool_calls] == [
        ("get_weather", {"city": "Oslo, Norway"}),
        ("get_time", {"zone": "CET"}),
    ]
    assert len({c.id for c in finished.tool_calls}) == 2
    assert finished.usage.output_tokens > 0
    assert fake.requests[-1].stream


def test_streamed_tool_round_trip(fake: FakeProviderServer, adapter: Adapter) -> None:
    request = _request(Message("user", "Weather in Rome?"), tools=(WEATHER,))
    text, finished = _split(list(adapter.stream(request)))
    assert text == ""
    (call,) = finished.tool_calls
    assert call.name == "get_weather" and isinstance(call.args["city"], str)

    text, finished = _split(list(adapter.stream(_with_result(request, call, "rain, 12 C"))))
    assert text.endswith("rain, 12 C")
    assert finished.tool_calls == () and finished.finish_reason == "stop"


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ForcedTool("get_time"), {"type": "function", "function": {"name": "get_time"}}),
        ("required", "required"),
        ("none", "none"),
    ],
)
def test_tool_choice_on_the_wire(
    fake: FakeProviderServer, adapter: Adapter, choice: ToolChoice, wire: object
) -> None:
    request = _request(
        Message("user", "What time is it?"), tools=(WEATHER, TIME), tool_choice=choice
    )
    text, finished = adapter.complete(request)
    assert _body(fake)["tool_choice"] == wire
    if choice == "none":
        assert text and finished.tool_calls == ()
    else:
        expected = "get_time" if isinstance(choice, ForcedTool) else "get_weather"
        assert [c.name for c in finished.tool_calls] == [expected]


def test_forced_tool_is_called_even_after_a_result(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    request = _request(
        Message("user", "Time?"), tools=(WEATHER, TIME), tool_choice=ForcedTool("get_time")
    )
    _, first = adapter.complete(request)
    follow = _with_result(request, first.tool_calls[0], "12:00")
    _, second = adapter.complete(replace(follow, tool_choice=ForcedTool("get_time")))
    assert [c.name for c in second.tool_calls] == ["get_time"]


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (_request(Message("user", "hi"), tool_choice="required"), "needs tools"),
        (_request(Message("user", "hi"), tools=(WEATHER,), tool_choice=ForcedTool("x")), "x"),
        (_request(Message("user", "hi"), tools=(Tool("get weather"),)), "tool name"),
        (_request(Message("user", "hi"), Message("tool", "42")), "tool_call_id"),
        (_request(Message("user", "hi", images=(Image("data:text/plain;base64,aGk="),))), "image"),
        (_request(Message("user", "hi", images=(Image("ftp://x/y.png"),))), "http"),
        (_request(Message("system", "hi", images=(Image(PNG),))), "user turns"),
        (
            _request(Message("user", "hi"), response_format=ResponseFormat("my schema", {})),
            "response_format name",
        ),
    ],
)
def test_bad_input_fails_before_any_call(
    fake: FakeProviderServer, adapter: Adapter, request_: ChatRequest, match: str
) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        adapter.complete(request_)
    with pytest.raises(InvalidRequestError, match=match):
        list(adapter.stream(request_))
    assert fake.requests == []


# ---------------------------------------------------------------- structured output and images

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("strict", [True, False])
def test_structured_output_sends_the_schema_and_gets_matching_json(
    fake: FakeProviderServer, adapter: Adapter, strict: bool
) -> None:
    request = _request(
        Message("user", "Describe a person."),
        response_format=ResponseFormat("person", PERSON, strict=strict),
    )
    text, finished = adapter.complete(request)
    assert _body(fake)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": strict},
    }
    jsonschema.validate(json.loads(text), PERSON)
    assert finished.finish_reason == "stop"
    streamed, _ = _split(list(adapter.stream(request)))
    assert streamed == text


def test_json_mode_asks_for_json_when_no_message_does(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    text, _ = adapter.complete(
        _request(Message("user", "Give me a colour."), response_format=ResponseFormat())
    )
    body = _body(fake)
    assert body["response_format"] == {"type": "json_object"}
    # The API refuses JSON mode unless a message mentions JSON: the adapter adds that.
    assert "json" in body["messages"][0]["content"].lower()
    assert isinstance(json.loads(text), dict)

    adapter.complete(
        _request(Message("user", "A colour, as JSON."), response_format=ResponseFormat())
    )
    assert _body(fake)["messages"] == [{"role": "user", "content": "A colour, as JSON."}]


def test_strict_schema_that_is_not_closed_is_refused_by_the_api(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    loose = {"type": "object", "properties": {"name": {"type": "string"}}}
    request = _request(
        Message("user", "Name?"), response_format=ResponseFormat("person", loose, strict=True)
    )
    with pytest.raises(openai.BadRequestError) as caught:
        adapter.complete(request)
    assert "additionalProperties" in str(caught.value)


def test_image_parts_on_the_wire(fake: FakeProviderServer, adapter: Adapter) -> None:
    images = (Image(PNG), Image("https://example.com/cat.jpg"))
    text, _ = adapter.complete(_request(Message("user", "What is in these?", images=images)))
    assert text == f"[{MODEL.id}] What is in these?"
    assert _body(fake)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": PNG}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


# ---------------------------------------------------------------- prompt cache

LONG_SYSTEM = "You are a patient assistant. " * 150  # 4,350 characters, about 1,088 fake tokens


def test_session_sends_the_cache_key_and_the_second_turn_reads_the_cache(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    first = _request(
        Message("system", LONG_SYSTEM), Message("user", "Hello there"), session="conv-42"
    )
    answer, turn1 = adapter.complete(first)
    assert _body(fake)["prompt_cache_key"] == "conv-42"
    assert turn1.usage.cache_read_tokens == 0

    second = _request(
        *first.messages,
        Message("assistant", answer),
        Message("user", "And now?"),
        session="conv-42",
    )
    _, turn2 = adapter.complete(second)
    assert _body(fake)["prompt_cache_key"] == "conv-42"
    assert turn2.usage.cache_read_tokens >= 1024
    assert turn2.usage.cache_read_tokens < turn2.usage.input_tokens
    assert turn2.usage.cache_write_tokens == 0  # OpenAI does not bill cache writes


def test_no_cache_key_without_a_session_or_for_a_compatible_server(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    adapter.complete(_request(Message("user", "hi")))
    assert "prompt_cache_key" not in _body(fake)
    compatible = make_adapter(
        "openai", ClientSettings("unused", fake.compat_base_url, compatible=True)
    )
    try:
        local = ModelInfo("openai", "llama3.2:3b", 128_000, 16_384)
        text, _ = compatible.complete(
            ChatRequest(local, (Message("user", "hi"),), 100, None, session="conv-1")
        )
    finally:
        compatible.close()
    assert text == "[llama3.2:3b] hi"
    assert "prompt_cache_key" not in _body(fake)


# ---------------------------------------------------------------- async


def _tool_request() -> ChatRequest:
    return _request(
        Message("system", "Use tools."),
        Message("user", "Weather in Lima?"),
        tools=(WEATHER,),
        max_tokens=300,
    )


async def _both(adapter: Adapter, request: ChatRequest) -> tuple[Any, list[StreamEvent]]:
    result = await adapter.acomplete(request)
    events = [event async for event in adapter.astream(request)]
    return result, events


def _same(a: Finished, b: Finished) -> None:
    assert (a.usage, a.finish_reason, a.model_version) == (
        b.usage,
        b.finish_reason,
        b.model_version,
    )
    assert a.tool_calls == b.tool_calls


def test_async_gives_what_sync_gives_on_fresh_loops(adapter: Adapter) -> None:
    plain = _request(Message("user", "Tell me about the sea"))
    for request in (plain, _tool_request()):
        text, finished = adapter.complete(request)
        streamed, stream_finished = _split(list(adapter.stream(request)))
        for _ in range(2):  # two asyncio.run calls: two loops, one async client each
            (atext, afinished), events = asyncio.run(_both(adapter, request))
            astreamed, astream_finished = _split(events)
            assert (atext, astreamed) == (text, streamed)
            _same(afinished, finished)
            _same(astream_finished, stream_finished)


def test_async_clients_are_closed_with_their_loops(adapter: Adapter) -> None:
    gc.collect()  # finalise what earlier tests left, so only this test's leaks are caught
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            asyncio.run(_both(adapter, _request(Message("user", "hi"))))
        adapter.close()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_aclose_then_more_calls(adapter: Adapter) -> None:
    async def run() -> str:
        first, _ = await adapter.acomplete(_request(Message("user", "one")))
        await adapter.aclose()
        second, _ = await adapter.acomplete(_request(Message("user", "two")))  # a new client
        await adapter.aclose()
        return first + " / " + second

    assert asyncio.run(run()) == f"[{MODEL.id}] one / [{MODEL.id}] two"


@pytest.mark.parametrize("streaming", [False, True])
def test_async_errors_map_like_sync_ones(
    fake: FakeProviderServer, adapter: Adapter, streaming: bool
) -> None:
    fake.queue(Fault.status(429))

    async def call() -> object:
        request = _request(Message("user", "hi"))
        if streaming:
            return [event async for event in adapter.astream(request)]
        return await adapter.acomplete(request)

    with pytest.raises(openai.RateLimitError) as caught:
        asyncio.run(call())
    mapped = map_error(caught.value, provider="openai", model=MODEL.id, api_key=fake.api_key)
    assert isinstance(mapped, RateLimitError)
    assert mapped.status_code == 429 and fake.api_key not in str(mapped)


def test_async_bad_input_fails_before_any_call(fake: FakeProviderServer, adapter: Adapter) -> None:
    bad = _request(Message("user", "hi"), tool_choice="required")

    async def run() -> None:
        with pytest.raises(InvalidRequestError):
            await adapter.acomplete(bad)
        with pytest.raises(InvalidRequestError):
            [event async for event in adapter.astream(bad)]

    asyncio.run(run())
    assert fake.requests == []


# ---------------------------------------------------------------- a stream without its usage


@pytest.fixture
def usageless_server() -> Iterator[str]:
    """A server whose chat stream ends with [DONE] but no usage chunk (like an interrupted
    stream whose last frames were lost): the base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    chunk = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
    }
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # a timeout: look at the stop flag again
                continue
            conn.settimeout(5)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                headers, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                conn.sendall(head + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_stream_without_final_usage_is_a_connection_error(usageless_server: str) -> None:
    adapter = make_adapter("openai", ClientSettings("k", usageless_server))
    request = _request(Message("user", "hi"))
    seen: list[StreamEvent] = []

    async def drain() -> None:
        async for event in adapter.astream(request):
            seen.append(event)

    try:
        runs: list[Callable[[], object]] = [
            lambda: seen.extend(adapter.stream(request)),
            lambda: asyncio.run(drain()),
        ]
        for run in runs:
            seen.clear()
            with pytest.raises(ProviderConnectionError, match="final usage"):
                run()
            assert seen == [TextDelta("Hi")]
    finally:
        adapter.close()


# ---------------------------------------------------------------- compatible local server


def test_compat_server_serves_any_model_with_any_key(fake: FakeProviderServer) -> None:
    with openai.OpenAI(api_key="ollama", base_url=fake.compat_base_url, max_retries=0) as client:
        completion = client.chat.completions.create(
            model="llama3.2:3b", messages=[{"role": "user", "content": "Hello local model"}]
        )
        assert completion.choices[0].message.content == "[llama3.2:3b] Hello local model"
        assert completion.model == "llama3.2:3b"
        chunks = list(
            client.chat.completions.create(
                model="llama3.2:3b",
                messages=[{"role": "user", "content": "Stream please"}],
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=16_000,
            )
        )
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        assert [m.id for m in client.models.list()] == ["llama3.2:3b"]
        with pytest.raises(openai.BadRequestError, match="max_tokens is too large"):
            client.chat.completions.create(
                model="llama3.2:3b", messages=[{"role": "user", "content": "x"}], max_tokens=20_000
            )
    assert {r.provider for r in fake.requests} == {"openai"}
    assert [r.path for r in fake.requests][:2] == ["/compat/v1/chat/completions"] * 2
    assert fake.requests[0].model == "llama3.2:3b"


def test_adapter_repr_hides_the_key(fake: FakeProviderServer, adapter: Adapter) -> None:
    assert fake.api_key not in repr(adapter)
