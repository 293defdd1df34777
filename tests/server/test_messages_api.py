"""``POST /v1/messages`` with the real ``anthropic`` SDK (sync, async, streaming) against a real
``python -m orkestra.server`` process, and its wire details in process: Anthropic's shapes for
answers, usage, stream events and errors, whatever model answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from proxy_helpers import CLIENT_KEY, AppClient, LiveServer, client_key

from orkestra.testing import FakeProviderServer, Reply

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HELLO = [{"role": "user", "content": "What is the capital of Japan?"}]


@pytest.fixture
def claude(live: LiveServer, upstream: FakeProviderServer) -> Iterator[anthropic.Anthropic]:
    upstream.clear()
    base = live.base_url.removesuffix("/v1")
    with anthropic.Anthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


@pytest.mark.slow
def test_the_anthropic_sdk_gets_a_routed_message(
    claude: anthropic.Anthropic, upstream: FakeProviderServer
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="orkestra-auto", max_tokens=256, system="Be brief.", messages=HELLO
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith(f"[{message.model}]")
    assert message.model == upstream.requests[-1].model
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-orkestra-provider"] == upstream.requests[-1].provider
    assert float(raw.headers["x-orkestra-cost-usd"]) > 0


@pytest.mark.slow
def test_the_anthropic_sdk_streams_from_any_provider(
    claude: anthropic.Anthropic, upstream: FakeProviderServer
) -> None:
    for model in ("claude-haiku-4-5", "gpt-4o-mini", "gemini-3.5-flash"):
        with claude.messages.stream(model=model, max_tokens=256, messages=HELLO) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == final.content[0].text  # type: ignore[union-attr]
        assert text.startswith(f"[{model}]"), model
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


@pytest.mark.slow
def test_a_tool_round_trip_through_the_anthropic_sdk(
    claude: anthropic.Anthropic, upstream: FakeProviderServer
) -> None:
    for model in ("claude-haiku-4-5", "gemini-3.5-flash"):
        first = claude.messages.create(
            model=model,
            max_tokens=256,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "any"},
        )
        assert first.stop_reason == "tool_use", model
        use = next(b for b in first.content if b.type == "tool_use")
        assert use.name == "get_weather" and "city" in use.input  # type: ignore[operator]
        second = claude.messages.create(
            model=model,
            max_tokens=256,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21C"}
                    ],
                },
            ],
        )
        assert second.stop_reason == "end_turn"
        assert "Sunny, 21C" in second.content[0].text  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_streamed_tool_call_arrives_as_a_tool_use_block(
    claude: anthropic.Anthropic, upstream: FakeProviderServer
) -> None:
    with claude.messages.stream(
        model="gpt-4o-mini",
        max_tokens=256,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        final = stream.get_final_message()
    use = final.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather"
    assert isinstance(use.input, dict) and "city" in use.input
    assert final.stop_reason == "tool_use"


@pytest.mark.slow
def test_async_client_and_the_sdk_errors(live: LiveServer, upstream: FakeProviderServer) -> None:
    base = live.base_url.removesuffix("/v1")

    async def run() -> None:
        async with anthropic.AsyncAnthropic(
            base_url=base, api_key=CLIENT_KEY, max_retries=0
        ) as client:
            message = await client.messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=HELLO
            )
            assert message.content[0].text.startswith("[claude-haiku-4-5]")  # type: ignore[union-attr]
            async with client.messages.stream(
                model="orkestra-auto", max_tokens=64, messages=HELLO
            ) as stream:
                streamed = "".join([text async for text in stream.text_stream])
                final = await stream.get_final_message()
            assert streamed.startswith("[") and final.usage.output_tokens > 0
            assert final.content[0].text == streamed  # type: ignore[union-attr]
            with pytest.raises(anthropic.NotFoundError) as missing:
                await client.messages.create(model="claude-9", max_tokens=64, messages=HELLO)
            assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
            with pytest.raises(anthropic.BadRequestError):
                await client.messages.create(model="claude-haiku-4-5", max_tokens=0, messages=HELLO)
        async with anthropic.AsyncAnthropic(
            base_url=base, api_key="wrong-key-0123456789abcdef", max_retries=0
        ) as wrong:
            with pytest.raises(anthropic.AuthenticationError) as denied:
                await wrong.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=HELLO)
            assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]

    asyncio.run(run())


# -- in process: the wire's details --------------------------------------------------------


def post(client: Any, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/v1/messages", json=body, headers=headers)


def test_x_api_key_authenticates_like_a_bearer_key(app_client: AppClient) -> None:
    client = app_client(keys=(client_key(),))
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": HELLO}
    assert post(client, body, **{"x-api-key": CLIENT_KEY}).status_code == 200
    assert post(client, body, authorization=f"Bearer {CLIENT_KEY}").status_code == 200
    denied = post(client, body, **{"x-api-key": "nope-0123456789abcdef0123"})
    assert denied.status_code == 401
    assert denied.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": denied.json()["error"]["message"]},
    }


def test_usage_is_anthropic_shaped_and_cache_control_is_named(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    fake.queue(Reply(input_tokens=1200, cached_tokens=1000, output_tokens=7))
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": HELLO,
        "metadata": {"user_id": "u-1"},
    }
    response = post(app_client(), body)
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert usage == {
        "input_tokens": 200,  # Anthropic's input_tokens leave the cache out
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1000,
        "output_tokens": 7,
    }
    assert response.headers["x-orkestra-ignored-params"] == "cache_control"
    assert fake.requests[-1].body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_stop_sequences_thinking_and_one_call_at_most_reach_the_library(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    body = {
        "model": "gpt-5.6-luna",
        "max_tokens": 20000,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "thinking": {"type": "enabled", "budget_tokens": 16000},
        "tools": [WEATHER],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    response = post(app_client(), body)
    assert response.status_code == 200, response.text
    sent = fake.requests[-1].body
    assert sent["reasoning_effort"] == "high" and sent["parallel_tool_calls"] is False
    fake.queue(Reply(text="one two STOP three"))
    stopped = post(
        app_client(),
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 64,
            "messages": HELLO,
            "stop_sequences": ["STOP"],
        },
    )
    assert stopped.json()["content"][0]["text"] == "one two "
    assert fake.requests[-1].body["stop_sequences"] == ["STOP"]


def test_the_stream_events_are_anthropics(app_client: AppClient, fake: FakeProviderServer) -> None:
    body = {"model": "gemini-3.5-flash", "max_tokens": 64, "messages": HELLO, "stream": True}
    response = post(app_client(), body)
    assert response.status_code == 200
    blocks = [b for b in response.text.split("\n\n") if b]
    kinds = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    assert kinds[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for block in blocks:
        event, data = block.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == event.removeprefix("event: ")
    assert "[DONE]" not in response.text


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": "claude-haiku-4-5", "messages": HELLO}, 400, "invalid_request_error"),
        ({"model": "nope", "max_tokens": 5, "messages": HELLO}, 404, "not_found_error"),
        (
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 5,
                "messages": HELLO,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            400,
            "invalid_request_error",
        ),
        (
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "x", "content": "y"}],
                    }
                ],
            },
            400,
            "invalid_request_error",
        ),
    ],
)
def test_errors_have_anthropics_shape(
    app_client: AppClient, fake: FakeProviderServer, body: dict[str, Any], status: int, kind: str
) -> None:
    response = post(app_client(), body)
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == kind
    assert error["error"]["message"]
    assert response.headers["request-id"] == response.headers["x-request-id"]
    assert fake.requests == []


def test_metrics_count_each_api_under_its_route(app_client: AppClient) -> None:
    client = app_client()
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": HELLO}
    assert post(client, body).status_code == 200
    response = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "Hi"})
    assert response.status_code == 200
    exposition = client.get("/metrics").text
    for route in ("/v1/messages", "/v1/responses"):
        upstream = [
            line
            for line in exposition.splitlines()
            if line.startswith("orkestra_added_duration_seconds_count")
            and f'route="{route}"' in line
        ]
        assert upstream, route
