"""The google adapter end to end against the fake: tools, structured output, images, the
implicit prompt cache and the async client, through the real google-genai SDK."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import warnings
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from google.genai import errors as genai_errors
from samples import WEATHER

from orkestra._types import ToolCall
from orkestra.catalog import ModelInfo, default_catalog
from orkestra.errors import (
    BadRequestError,
    InvalidRequestError,
    OrkestraError,
    ProviderConnectionError,
    RateLimitError,
)
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
    UsageReport,
)
from orkestra.testing import FakeProviderServer, Fault, Reply

LOOKUP = Tool(
    "lookup",
    "Look a word up.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)
ASK = (Message("system", "Answer briefly."), Message("user", "What is the weather in Paris?"))
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()


@pytest.fixture
def budget() -> ModelInfo:
    return default_catalog().tier_model("google", "budget")


@pytest.fixture
def gemini3() -> ModelInfo:
    """A Gemini 3 model: it returns call ids and insists on thought signatures."""
    return default_catalog().model("google", "gemini-3-flash-preview")


@pytest.fixture
def adapter(fake: FakeProviderServer) -> Iterator[Adapter]:
    adapter = make_adapter("google", ClientSettings(fake.api_key, fake.google_base_url))
    yield adapter
    adapter.close()


def _request(
    model: ModelInfo,
    messages: tuple[Message, ...] = ASK,
    *,
    tools: tuple[Tool, ...] = (),
    tool_choice: ToolChoice = "auto",
    response_format: ResponseFormat | None = None,
    session: str | None = None,
) -> ChatRequest:
    return ChatRequest(
        model,
        messages,
        max_tokens=400,
        temperature=None,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        session=session,
    )


def _body(fake: FakeProviderServer) -> dict[str, Any]:
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return body


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A wire field by its camelCase name or its snake_case twin (the SDK sends some so)."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj[camel] if camel in obj else obj.get(snake)


def _drain(events: Iterator[StreamEvent]) -> tuple[str, Finished]:
    collected = list(events)
    finished = collected[-1]
    assert isinstance(finished, Finished)
    assert not any(isinstance(e, Finished) for e in collected[:-1])
    return "".join(e.text for e in collected if isinstance(e, TextDelta)), finished


def _answer_turns(finished: Finished, result: str) -> tuple[Message, ...]:
    """The assistant turn that made the calls, and one tool turn per call answering it."""
    return (
        Message("assistant", "", tool_calls=finished.tool_calls),
        *(Message("tool", result, tool_call_id=c.id, name=c.name) for c in finished.tool_calls),
    )


# ---------------------------------------------------------------- conversations


def test_multi_turn_with_system_prompt(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    messages = (
        Message("system", "You are terse."),
        Message("user", "Name a colour."),
        Message("assistant", "Blue."),
        Message("user", "Now name a fruit please."),
    )
    text, finished = adapter.complete(_request(budget, messages))
    assert text == f"[{budget.id}] Now name a fruit please."
    assert finished.finish_reason == "STOP"
    assert finished.tool_calls == ()
    assert finished.usage.input_tokens > 0 and finished.usage.output_tokens > 0
    body = _body(fake)
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert [(c["role"], c["parts"]) for c in body["contents"]] == [
        ("user", [{"text": "Name a colour."}]),
        ("model", [{"text": "Blue."}]),
        ("user", [{"text": "Now name a fruit please."}]),
    ]
    assert "tools" not in body and "toolConfig" not in body


# ---------------------------------------------------------------- tools


def test_tool_call_round_trip(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    text, finished = adapter.complete(_request(budget, tools=(WEATHER,)))
    assert text == ""
    assert finished.finish_reason == "STOP"  # Gemini's raw value: it has no tool-call reason
    (call,) = finished.tool_calls
    assert (call.id, call.name, call.args) == ("call_0", "get_weather", {"city": "example city"})
    assert call.signature  # the fake signs every call, as thinking Gemini models do
    body = _body(fake)
    (declaration,) = body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert declaration["description"] == "The current weather in a city."
    assert _get(declaration, "parametersJsonSchema") == dict(WEATHER.parameters)
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    follow_up = ASK + _answer_turns(finished, "Sunny, 21 C")
    text, finished = adapter.complete(_request(budget, follow_up, tools=(WEATHER,)))
    assert "Sunny, 21 C" in text
    assert finished.tool_calls == ()
    model_turn, results = _body(fake)["contents"][1:]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "example city"}},
                "thoughtSignature": call.signature,
            }
        ],
    }  # no id: Gemini 2.5 sent none, and a made-up one is not sent as if Google issued it
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "Sunny, 21 C"}}}
        ],
    }


def test_tool_call_round_trip_streaming(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    events = list(adapter.stream(_request(budget, tools=(WEATHER,))))
    assert isinstance(events[0], UsageReport)
    text, finished = _drain(iter(events))
    assert text == ""
    assert [(c.id, c.name, c.args) for c in finished.tool_calls] == [
        ("call_0", "get_weather", {"city": "example city"})
    ]
    assert finished.finish_reason == "STOP"
    assert fake.requests[-1].stream

    follow_up = ASK + _answer_turns(finished, '{"sky": "clear", "celsius": 19}')
    text, finished = _drain(adapter.stream(_request(budget, follow_up, tools=(WEATHER,))))
    assert '"celsius":19' in text and '"sky":"clear"' in text
    assert finished.tool_calls == ()
    results = _body(fake)["contents"][-1]
    assert results["parts"][0]["functionResponse"]["response"] == {
        "result": {"sky": "clear", "celsius": 19}  # JSON results travel as JSON
    }


def test_parallel_calls_answered_in_one_content(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    fake.queue(Reply(tool_calls=[("get_weather", {"city": "Oslo"}), ("lookup", {"word": "fjord"})]))
    _, finished = _drain(adapter.stream(_request(budget, tools=(WEATHER, LOOKUP))))
    assert [(c.id, c.name) for c in finished.tool_calls] == [
        ("call_0", "get_weather"),
        ("call_1", "lookup"),
    ]
    follow_up = ASK + _answer_turns(finished, "done")
    text, _ = adapter.complete(_request(budget, follow_up, tools=(WEATHER, LOOKUP)))
    assert text.endswith("tool results: done; done")
    contents = _body(fake)["contents"]
    assert len(contents) == 3  # the fake (like Gemini) counts responses against the calls
    assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == [
        "get_weather",
        "lookup",
    ]


def test_gemini3_ids_and_signatures_travel_back(
    fake: FakeProviderServer, adapter: Adapter, gemini3: ModelInfo
) -> None:
    _, finished = adapter.complete(_request(gemini3, tools=(WEATHER,)))
    (call,) = finished.tool_calls
    assert call.id.startswith("call_") and call.id != "call_0"  # Gemini 3's own id
    assert call.signature

    follow_up = ASK + _answer_turns(finished, "Rain")
    text, _ = adapter.complete(_request(gemini3, follow_up, tools=(WEATHER,)))
    assert "Rain" in text
    model_turn, results = _body(fake)["contents"][1:]
    (call_part,) = model_turn["parts"]
    assert call_part["functionCall"]["id"] == call.id
    assert call_part["thoughtSignature"] == call.signature
    assert results["parts"][0]["functionResponse"]["id"] == call.id

    unsigned = ToolCall(call.id, call.name, call.arguments)  # a history that lost it
    lost = (*ASK, Message("assistant", "", tool_calls=(unsigned,)), follow_up[-1])
    with pytest.raises(genai_errors.ClientError) as info:
        adapter.complete(_request(gemini3, lost, tools=(WEATHER,)))
    error = map_error(info.value, provider="google", model=gemini3.id, api_key=fake.api_key)
    assert isinstance(error, BadRequestError) and error.status_code == 400
    assert "missing a thought_signature" in str(error)


@pytest.mark.parametrize(
    ("choice", "config", "called"),
    [
        (ForcedTool("lookup"), {"mode": "ANY", "allowedFunctionNames": ["lookup"]}, "lookup"),
        ("required", {"mode": "ANY"}, "get_weather"),
        ("none", {"mode": "NONE"}, None),
    ],
)
def test_tool_choice(
    fake: FakeProviderServer,
    adapter: Adapter,
    budget: ModelInfo,
    choice: ToolChoice,
    config: dict[str, Any],
    called: str | None,
) -> None:
    text, finished = adapter.complete(_request(budget, tools=(WEATHER, LOOKUP), tool_choice=choice))
    assert _get(_body(fake)["toolConfig"], "functionCallingConfig") == config
    if called is None:
        assert finished.tool_calls == () and text.startswith(f"[{budget.id}]")
    else:
        assert [c.name for c in finished.tool_calls] == [called]


def test_forced_tool_not_offered_is_refused_before_the_call(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    request = _request(budget, tools=(WEATHER,), tool_choice=ForcedTool("lookup"))
    with pytest.raises(InvalidRequestError, match="lookup"):
        adapter.complete(request)
    assert fake.requests == []


def test_unparseable_tool_arguments_are_refused_before_the_call(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    broken = ToolCall("call_0", "get_weather", "{not json")
    messages = (*ASK, Message("assistant", "", tool_calls=(broken,)))
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        adapter.complete(_request(budget, messages, tools=(WEATHER,)))
    assert fake.requests == []


# ---------------------------------------------------------------- structured output


def test_structured_output_schema(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
        "required": ["city", "celsius"],
    }
    text, _ = adapter.complete(
        _request(budget, response_format=ResponseFormat("weather", schema, strict=True))
    )
    jsonschema.validate(json.loads(text), schema)
    config = _body(fake)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


def test_json_mode_without_schema(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    text, _ = _drain(adapter.stream(_request(budget, response_format=ResponseFormat())))
    assert isinstance(json.loads(text), dict)
    config = _body(fake)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in config and "responseSchema" not in config


# ---------------------------------------------------------------- images


def test_image_parts_on_the_wire(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    images = (Image(f"data:image/png;base64,{PNG}"), Image("https://example.com/cat.JPG?x=1"))
    messages = (Message("user", "What is in these pictures?", images=images),)
    text, _ = adapter.complete(_request(budget, messages))
    assert text == f"[{budget.id}] What is in these pictures?"
    (content,) = _body(fake)["contents"]
    inline, web, question = content["parts"]
    assert _get(inline["inlineData"], "mimeType") == "image/png"
    assert base64.urlsafe_b64decode(inline["inlineData"]["data"]) == base64.b64decode(PNG)
    assert _get(web["fileData"], "mimeType") == "image/jpeg"
    assert _get(web["fileData"], "fileUri") == "https://example.com/cat.JPG?x=1"
    assert question == {"text": "What is in these pictures?"}  # after the images, as advised


def test_web_image_of_unknown_type_is_refused_before_the_call(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    messages = (Message("user", "What is this?", images=(Image("https://example.com/pic"),)),)
    with pytest.raises(InvalidRequestError, match="data: URL"):
        adapter.complete(_request(budget, messages))
    assert fake.requests == []


# ---------------------------------------------------------------- prompt cache


def test_session_sends_nothing_and_the_second_turn_reads_the_cache(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    handbook = "Rule: always cite the handbook section you rely on. " * 90  # ~1,200 tokens
    first = (Message("system", handbook), Message("user", "Summarise section one."))
    text, finished = adapter.complete(_request(budget, first, session="sess-42"))
    assert finished.usage.cache_read_tokens == 0
    assert set(_body(fake)) == {"contents", "systemInstruction", "generationConfig"}
    assert "sess-42" not in json.dumps(_body(fake))  # Gemini caches implicitly: no hint to send

    second = (*first, Message("assistant", text), Message("user", "And section two?"))
    _, finished = _drain(adapter.stream(_request(budget, second, session="sess-42")))
    assert finished.usage.cache_read_tokens >= 1024
    assert finished.usage.input_tokens > finished.usage.cache_read_tokens


# ---------------------------------------------------------------- async


def _sync_results(adapter: Adapter, requests: list[ChatRequest]) -> list[Any]:
    results: list[Any] = []
    for request in requests:
        text, finished = adapter.complete(request)
        streamed, streamed_finished = _drain(adapter.stream(request))
        results.append((text, finished.tool_calls, finished.usage, finished.finish_reason))
        results.append((streamed, streamed_finished.tool_calls, streamed_finished.usage))
    return results


async def _async_results(adapter: Adapter, requests: list[ChatRequest]) -> list[Any]:
    results: list[Any] = []
    for request in requests:
        text, finished = await adapter.acomplete(request)
        events = [event async for event in adapter.astream(request)]
        streamed, streamed_finished = _drain(iter(events))
        results.append((text, finished.tool_calls, finished.usage, finished.finish_reason))
        results.append((streamed, streamed_finished.tool_calls, streamed_finished.usage))
    return results


def test_async_matches_sync_on_fresh_loops(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo, gemini3: ModelInfo
) -> None:
    requests = [
        _request(budget),
        _request(budget, tools=(WEATHER,)),
        _request(gemini3, tools=(WEATHER,), tool_choice=ForcedTool("get_weather")),
    ]
    expected = _sync_results(adapter, requests)
    assert expected[2][1] and expected[4][1]  # the tool requests did call
    gc.collect()  # earlier tests' garbage is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Each asyncio.run is a new loop: the adapter must not reuse the last loop's client,
        # and asyncio.run's shutdown must close the client it made.
        assert asyncio.run(_async_results(adapter, requests)) == expected
        assert asyncio.run(_async_results(adapter, requests)) == expected
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(fake.requests) == 3 * len(expected)


def test_async_close_and_reuse(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    async def twice() -> list[str]:
        first, _ = await adapter.acomplete(_request(budget))
        await adapter.aclose()  # closes this loop's client; the next call makes a new one
        second, _ = await adapter.acomplete(_request(budget))
        await adapter.aclose()
        return [first, second]

    assert asyncio.run(twice()) == [f"[{budget.id}] What is the weather in Paris?"] * 2


def test_async_errors_map_like_sync(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    async def fail() -> list[BaseException]:
        raised: list[BaseException] = []
        fake.queue(Fault.status(429, retry_after=2), provider="google", times=2)
        with pytest.raises(genai_errors.ClientError) as plain:
            await adapter.acomplete(_request(budget))
        raised.append(plain.value)
        with pytest.raises(genai_errors.ClientError) as streamed:
            async for _ in adapter.astream(_request(budget)):
                pass
        raised.append(streamed.value)
        return raised

    for exc in asyncio.run(fail()):
        error = map_error(exc, provider="google", model=budget.id, api_key=fake.api_key)
        assert isinstance(error, RateLimitError)
        assert (error.status_code, error.retry_after) == (429, 2.0)
        assert fake.api_key not in str(error)


def test_async_stream_cut_short_is_a_connection_error(
    fake: FakeProviderServer, adapter: Adapter, budget: ModelInfo
) -> None:
    async def cut() -> tuple[list[StreamEvent], BaseException]:
        fake.queue(Fault.cut_stream(1), provider="google")
        events: list[StreamEvent] = []
        try:
            async for event in adapter.astream(_request(budget)):
                events.append(event)
        except Exception as exc:
            return events, exc
        raise AssertionError("the cut stream ended normally")

    events, exc = asyncio.run(cut())
    assert not any(isinstance(e, Finished) for e in events)
    error = (
        exc
        if isinstance(exc, OrkestraError)
        else map_error(exc, provider="google", model=budget.id, api_key=fake.api_key)
    )
    assert isinstance(error, ProviderConnectionError)


def test_close_reaches_the_async_client_of_an_idle_loop(
    fake: FakeProviderServer, budget: ModelInfo
) -> None:
    adapter = make_adapter("google", ClientSettings(fake.api_key, fake.google_base_url))
    loop = asyncio.new_event_loop()  # driven by hand: no asyncio.run shutdown to close clients
    try:
        text, _ = loop.run_until_complete(adapter.acomplete(_request(budget)))
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            adapter.close()  # the loop is idle, not closed: the client is closed on it
            loop.close()
            del adapter  # whatever close() did not close is garbage now
            gc.collect()
    finally:
        loop.close()
    assert text == f"[{budget.id}] What is the weather in Paris?"
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
