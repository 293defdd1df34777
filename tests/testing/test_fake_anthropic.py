"""The real anthropic SDK (2.x) against the fake server, plus 1.x-style raw requests."""

from __future__ import annotations

from collections.abc import Callable

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
