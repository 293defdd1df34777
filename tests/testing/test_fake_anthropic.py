"""The real anthropic SDK (2.x) against the fake server, plus 1.x-style raw requests."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from orkestra.testing import FakeProviderServer, Reply

USER = [{"role": "user", "content": "Hello there, how are you doing today my friend?"}]
V1_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


def test_message_text_and_usage(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=256, system="Be brief.", messages=USER
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == (
        "[claude-haiku-4-5] Hello there, how are you doing today my friend?"
    )
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-haiku-4-5"
    assert message.usage.input_tokens == 15
    assert message.usage.output_tokens == 17
    assert message.usage.cache_read_input_tokens == 0


def test_stream_events_and_cumulative_usage(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(model="claude-opus-4-7", max_tokens=256, messages=USER, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    assert delta.type == "message_delta"
    assert delta.usage.output_tokens == 17
    assert delta.delta.stop_reason == "end_turn"
    texts = [
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]
    assert len(texts) >= 3
    assert "".join(texts) == "[claude-opus-4-7] Hello there, how are you doing today my friend?"


def test_stream_helper_accumulates(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == 17


def test_scripted_reply_usage_semantics(
    server: FakeProviderServer, claude: anthropic.Anthropic
) -> None:
    reply = Reply(
        "Cached answer.",
        input_tokens=100,
        output_tokens=50,
        cached_tokens=40,
        cache_write_tokens=10,
        reasoning_tokens=20,
    )
    server.queue(reply, times=2)
    usage = claude.messages.create(model="claude-opus-4-6", max_tokens=256, messages=USER).usage
    assert usage.input_tokens == 50  # excludes cache reads and writes
    assert usage.cache_read_input_tokens == 40
    assert usage.cache_creation_input_tokens == 10
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == 10
    assert usage.output_tokens == 50  # includes thinking
    assert usage.output_tokens_details is not None
    assert usage.output_tokens_details.thinking_tokens == 20
    with claude.messages.stream(model="claude-opus-4-6", max_tokens=256, messages=USER) as s:
        streamed = s.get_final_message().usage
    assert streamed.input_tokens == 50
    assert streamed.cache_read_input_tokens == 40
    assert streamed.output_tokens == 50


def test_max_tokens_truncates(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="claude-haiku-4-5", max_tokens=2, messages=USER)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_temperature_rejected_under_sdk_2(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=USER,
            extra_body={"temperature": 0.5},
        )
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_old_api_version_with_x_api_key_accepts_temperature(
    server: FakeProviderServer, raw: Callable[..., object]
) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": USER, "temperature": 0.5}
    response = raw("POST", "/v1/messages", body, V1_HEADERS)
    assert response.status == 200  # type: ignore[attr-defined]
    assert response.json()["type"] == "message"  # type: ignore[attr-defined]
    assert server.requests[-1].headers["anthropic-version"] == "2023-06-01"


def test_version_header_required(raw: Callable[..., object]) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": USER}
    response = raw("POST", "/v1/messages", body, {"x-api-key": "test-key"})
    assert response.status == 400  # type: ignore[attr-defined]
    error = response.json()  # type: ignore[attr-defined]
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["request_id"] == response.headers["request-id"]  # type: ignore[attr-defined]


def test_max_tokens_required_and_limited(
    claude: anthropic.Anthropic, raw: Callable[..., object]
) -> None:
    response = raw(
        "POST", "/v1/messages", {"model": "claude-haiku-4-5", "messages": USER}, V1_HEADERS
    )
    assert response.status == 400  # type: ignore[attr-defined]
    assert "max_tokens" in response.json()["error"]["message"]  # type: ignore[attr-defined]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=64_001, messages=USER, timeout=30
        )
    assert caught.value.body["error"]["message"] == (  # type: ignore[index]
        "max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for"
        " claude-haiku-4-5-20251001"
    )


@pytest.mark.parametrize(
    "model", ["claude-3-5-haiku-20241022", "claude-opus-4-0", "claude-opus-4-1", "claude-haiku-4"]
)
def test_retired_or_unknown_model_is_404(claude: anthropic.Anthropic, model: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model=model, max_tokens=100, messages=USER)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_wrong_key(server: FakeProviderServer) -> None:
    with (
        anthropic.Anthropic(api_key="wrong", base_url=server.anthropic_base_url) as client,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert server.requests[-1].headers["authorization"] == "Bearer wrong"


def test_count_tokens_and_models(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="claude-haiku-4-5", messages=USER)
    assert counted.input_tokens == 12
    ids = [m.id for m in claude.models.list()]
    assert "claude-haiku-4-5-20251001" in ids
    assert "claude-opus-4-8" in ids
    assert "claude-opus-4-1-20250805" not in ids


# ---------------------------------------------------------------- tools, structured output, cache

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
ASK_WEATHER = [{"role": "user", "content": "Weather in Oslo?"}]
TOOL_ID = re.compile(r"^toolu_01[0-9A-Za-z]{22}$")


def test_tool_use_block_and_stop_reason(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=ASK_WEATHER, tools=[WEATHER_TOOL]
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use"
    assert TOOL_ID.match(block.id)
    assert (block.name, block.input) == ("get_weather", {"city": "example city"})


def test_streamed_tool_use_events(server: FakeProviderServer, claude: anthropic.Anthropic) -> None:
    server.queue(Reply("Checking.", tool_calls=[("get_weather", {"city": "Oslo"})]))
    events = list(
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=ASK_WEATHER,
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )
    starts = [e for e in events if e.type == "content_block_start"]
    assert [s.content_block.type for s in starts] == ["text", "tool_use"]
    tool_start = starts[1]
    assert tool_start.index == 1
    assert tool_start.content_block.type == "tool_use"
    assert tool_start.content_block.input == {}
    pieces = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert pieces[0] == "" and len(pieces) > 2
    assert json.loads("".join(pieces)) == {"city": "Oslo"}
    stop = next(e for e in events if e.type == "message_delta")
    assert stop.delta.stop_reason == "tool_use"
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=ASK_WEATHER, tools=[WEATHER_TOOL]
    ) as stream:
        final = stream.get_final_message()  # the SDK's accumulator assembles the same call
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"city": "example city"}


def test_tool_result_answer_quotes_the_results(claude: anthropic.Anthropic) -> None:
    call = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=ASK_WEATHER, tools=[WEATHER_TOOL]
    ).content[0]
    assert call.type == "tool_use"
    messages: list[Any] = [
        *ASK_WEATHER,
        {"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Rain, 4C"}],
        },
    ]
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=messages, tools=[WEATHER_TOOL]
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == "[claude-haiku-4-5] tool results: Rain, 4C"


def test_structured_output_answers_with_the_schema(claude: anthropic.Anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    message = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].type == "text"
    assert json.loads(message.content[0].text) == {"name": "example name", "age": 1}


_SCHEMA_NO_EXTRA = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("options", "messages", "error"),
    [
        (
            {"tools": [WEATHER_TOOL]},
            [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}],
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks:"
            " toolu_x. Each `tool_result` block must have a corresponding `tool_use` block in"
            " the previous message.",
        ),
        (
            {"tools": [WEATHER_TOOL]},
            [
                *ASK_WEATHER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_y", "name": "get_weather", "input": {}}
                    ],
                },
                {"role": "user", "content": "never mind"},
            ],
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately"
            " after: toolu_y. Each `tool_use` block must have a corresponding `tool_result`"
            " block in the next message.",
        ),
        (
            {"tools": [WEATHER_TOOL], "tool_choice": {"type": "tool", "name": "get_time"}},
            ASK_WEATHER,
            "tool_choice.tool.name: Tool 'get_time' not found in tools",
        ),
        (
            {"tools": [{**WEATHER_TOOL, "input_schema": {"type": "array"}}]},
            ASK_WEATHER,
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (
            {"tools": [{**WEATHER_TOOL, "input_schema": {"type": "object", "required": "city"}}]},
            ASK_WEATHER,
            "tools.0.custom.input_schema: JSON schema is invalid. It must match JSON Schema"
            " draft 2020-12 (https://json-schema.org/draft/2020-12).",
        ),
        (
            {"tools": [{**WEATHER_TOOL, "name": "get.weather"}]},
            ASK_WEATHER,
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
        ),
        (
            {"tools": [WEATHER_TOOL, WEATHER_TOOL]},
            ASK_WEATHER,
            "tools: Tool names must be unique.",
        ),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": _SCHEMA_NO_EXTRA}}},
            USER,
            "output_config.format.schema: For 'object' type, 'additionalProperties' must be"
            " explicitly set to false",
        ),
        (
            {
                "system": [
                    {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
                    for i in range(5)
                ]
            },
            USER,
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            {},
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0="},
                        }
                    ],
                }
            ],
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg',"
            " 'image/png', 'image/gif' or 'image/webp'",
        ),
    ],
    ids=[
        "orphan-result",
        "unanswered-call",
        "unknown-forced-tool",
        "schema-not-object",
        "schema-invalid",
        "tool-name",
        "duplicate-tools",
        "structured-additional-properties",
        "five-breakpoints",
        "image-media-type",
    ],
)
def test_malformed_tool_and_format_requests_are_400(
    claude: anthropic.Anthropic,
    options: dict[str, Any],
    messages: list[Any],
    error: str,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=messages, **options
        )
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["error"] == {"type": "invalid_request_error", "message": error}
    assert body["request_id"] == caught.value.response.headers["request-id"]


LONG = "The operator checks every valve before the morning shift starts. " * 70


def _usage(claude: anthropic.Anthropic, **options: Any) -> anthropic.types.Usage:
    messages = options.pop("messages", [{"role": "user", "content": "Which valve first?"}])
    return claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, messages=messages, **options
    ).usage


def test_cache_follows_the_breakpoints(claude: anthropic.Anthropic) -> None:
    # No breakpoint: Anthropic caches nothing, however often the prompt repeats.
    for _ in range(2):
        usage = _usage(claude, system=LONG)
        assert usage.cache_read_input_tokens == usage.cache_creation_input_tokens == 0
    # A breakpoint on the system prompt: the first call writes it, the next reads it; the
    # turns after the breakpoint are billed as plain input.
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    written = _usage(claude, system=system)
    assert written.cache_creation_input_tokens > 1024 and written.cache_read_input_tokens == 0
    read = _usage(claude, system=system, messages=[{"role": "user", "content": "And then?"}])
    assert read.cache_read_input_tokens == written.cache_creation_input_tokens
    assert read.cache_creation_input_tokens == 0 and read.input_tokens > 0
    # A top-level cache_control marks the last block: the whole prompt.
    whole = _usage(claude, system=LONG + " v2", cache_control={"type": "ephemeral"})
    assert whole.cache_creation_input_tokens > 1024 and whole.input_tokens <= 1
