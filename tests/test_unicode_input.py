"""Text that is not valid Unicode (a lone surrogate) is refused, named, before any network call."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import orkestra as o
from orkestra._unicode import find_lone_surrogate
from orkestra.routing.embedder import StaticEmbedder
from orkestra.testing import FakeProviderServer

PROVIDERS = ("google", "anthropic", "openai")
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}


def with_tool_turn(arguments: str) -> list[dict[str, Any]]:
    call = {**CALL, "function": {"name": "weather", "arguments": arguments}}
    return [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


# (call arguments, where the bad character is reported, its position)
CASES: list[tuple[dict[str, Any], str, int]] = [
    ({"prompt": "Explain \ud800 please"}, "prompt", 8),
    ({"messages": [{"role": "user", "content": "a\udc00"}]}, "messages[0].content", 1),
    (
        {
            "messages": [
                {"role": "system", "content": "Be \ud83d brief."},
                {"role": "user", "content": "hi"},
            ]
        },
        "messages[0].content",
        3,
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]},
        "messages[0].content",
        0,
    ),
    (
        {"messages": with_tool_turn('{"city": "Par\ud800is"}'), "tools": [WEATHER]},
        "messages[1].tool_calls[0].arguments",
        13,
    ),
    (
        {
            "prompt": "hi",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string", "description": "\ud800"}},
                        },
                    },
                }
            ],
        },
        "tools[0].parameters.properties.city.description",
        0,
    ),
    (
        {
            "prompt": "hi",
            "response_format": {
                "type": "object",
                "properties": {"x\ud800": {"type": "string"}},
            },
        },
        "a key of response_format.schema.properties",
        1,
    ),
    ({"prompt": "hi", "session_id": "s\ud800"}, "session_id", 1),
]


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(("kwargs", "where", "index"), CASES)
def test_a_lone_surrogate_is_an_invalid_request_naming_where(
    name: str, kwargs: dict[str, Any], where: str, index: int, fake: FakeProviderServer
) -> None:
    provider = o.Provider(name, fake.api_key)
    with pytest.raises(o.InvalidRequestError) as caught:
        provider.chat(**kwargs)
    message = str(caught.value)
    assert message.startswith(f"{where}: character {index} is a lone surrogate (U+")
    assert "not valid Unicode" in message
    message.encode("utf-8")  # the message itself is printable
    assert fake.requests == []


@pytest.mark.parametrize(("kwargs", "where", "index"), CASES[:3])
def test_every_entry_point_checks_before_routing_or_sending(
    kwargs: dict[str, Any], where: str, index: int, fake: FakeProviderServer
) -> None:
    provider = o.Provider("openai", fake.api_key)
    multi = o.MultiProvider([provider, o.Provider("google", fake.api_key)])
    calls = [
        lambda: provider.route(**kwargs),
        lambda: list(provider.stream_text(**kwargs)),
        lambda: list(provider.stream(**kwargs)),
        lambda: asyncio.run(provider.achat(**kwargs)),
        lambda: multi.chat(**kwargs),
        lambda: multi.route(**kwargs),
    ]
    for call in calls:
        with pytest.raises(
            o.InvalidRequestError, match=rf"^{re.escape(where)}: character {index} "
        ):
            call()
    assert fake.requests == []


def test_a_conversation_system_prompt_is_checked_and_history_kept(
    fake: FakeProviderServer,
) -> None:
    chat = o.Conversation(o.Provider("anthropic", fake.api_key), system="Answer \ud800 briefly.")
    with pytest.raises(o.InvalidRequestError, match=r"^messages\[0\]\.content: character 7 "):
        chat.chat("What is the capital of Japan?")
    assert [m["role"] for m in chat.messages] == ["system"]
    assert fake.requests == []


def test_the_embedder_refuses_with_the_same_typed_error() -> None:
    with pytest.raises(o.InvalidRequestError, match=r"^texts\[1\]: character 2 "):
        StaticEmbedder.default().encode(["fine", "ok\ud800"])


def test_valid_unicode_is_untouched() -> None:
    text = "naïve café 東京 😀 \U0010ffff"
    assert find_lone_surrogate({"a": [text, (text,)], text: text}) is None


def test_deep_nesting_is_walked_without_recursion() -> None:
    value: Any = "\ud800"
    for _ in range(100_000):
        value = [value]
    found = find_lone_surrogate(value)
    assert found is not None and found.path == "[0]" * 100_000
