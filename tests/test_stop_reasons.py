"""Each adapter maps its provider's own finish reasons to one vocabulary (OpenAI's names), so a
Response says why it ended the same way whichever provider answered (the proxy sends it on)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

import orkestra as o
from orkestra.providers import anthropic, google, openai
from orkestra.providers.base import StopReason, stop_reason
from orkestra.testing import FakeProviderServer, Reply

TABLES: dict[str, Mapping[str, StopReason]] = {
    "openai": openai.STOP_REASONS,
    "anthropic": anthropic.STOP_REASONS,
    "google": google.STOP_REASONS,
}


@pytest.mark.parametrize(
    ("provider", "native", "common"),
    [
        *((p, None, "stop") for p in TABLES),
        ("openai", "stop", "stop"),
        ("openai", "length", "length"),
        ("openai", "content_filter", "content_filter"),
        ("openai", "function_call", "stop"),  # a legacy call without any call made
        ("anthropic", "end_turn", "stop"),
        ("anthropic", "max_tokens", "length"),
        ("anthropic", "refusal", "content_filter"),
        ("google", "STOP", "stop"),
        ("google", "MAX_TOKENS", "length"),
        ("google", "SAFETY", "content_filter"),
        ("google", "max_tokens", "length"),  # the SDK's enum value in another case
        *((p, "something_new", "stop") for p in TABLES),
    ],
)
def test_finish_reasons(provider: str, native: str | None, common: str) -> None:
    assert stop_reason(native, TABLES[provider], tool_calls=False) == common


@pytest.mark.parametrize(
    ("provider", "native", "calls", "common"),
    [
        ("google", "STOP", True, "tool_calls"),  # Gemini has no tool-call reason
        ("anthropic", "tool_use", True, "tool_calls"),
        ("openai", "tool_calls", True, "tool_calls"),
        ("anthropic", "end_turn", True, "tool_calls"),
        ("google", "MAX_TOKENS", True, "length"),
        ("anthropic", "tool_use", False, "stop"),
        ("openai", "tool_calls", False, "stop"),
        ("google", "STOP", False, "stop"),
    ],
)
def test_finish_reasons_with_tool_calls(
    provider: str, native: str, calls: bool, common: str
) -> None:
    assert stop_reason(native, TABLES[provider], tool_calls=calls) == common


@pytest.mark.parametrize("provider", list(TABLES))
@pytest.mark.parametrize("streaming", [False, True])
def test_a_response_says_why_it_ended_in_common_terms(
    fake: FakeProviderServer, provider: str, streaming: bool
) -> None:
    p = o.Provider(provider, fake.api_key)
    fake.queue(Reply("cut short", finish_reason="length"), provider=provider)
    fake.queue(Reply("done"), provider=provider)
    if streaming:
        stream = p.stream("Write a long story")
        "".join(stream)
        assert stream.response is not None
        cut = stream.response
    else:
        cut = p.chat("Write a long story")
    done = p.chat("Say done")
    assert (cut.stop_reason, done.stop_reason) == ("length", "stop")
    assert cut.finish_reason != "length" or provider == "openai"  # the provider's own stays
    p.close()
