"""messages=[...] conversations on the wire, and every call landing in the usage log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer

CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": [{"type": "text", "text": "What is the capital of Japan?"}]},
]


def _body(fake: FakeProviderServer) -> dict[str, object]:
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return body


def test_openai_gets_the_roles(fake: FakeProviderServer) -> None:
    response = o.Provider("openai", fake.api_key).chat(messages=CONVERSATION)
    assert response.text
    assert _body(fake)["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "What is the capital of Japan?"},
    ]


def test_anthropic_gets_a_top_level_system(fake: FakeProviderServer) -> None:
    o.Provider("anthropic", fake.api_key).chat(messages=CONVERSATION)
    body = _body(fake)
    assert body["system"] == "Answer in one word."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]  # type: ignore[index,union-attr]


def test_gemini_gets_system_instruction_and_model_role(fake: FakeProviderServer) -> None:
    stream = o.Provider("google", fake.api_key).stream(messages=CONVERSATION)
    assert "".join(stream)
    body = _body(fake)
    assert body["systemInstruction"]["parts"][0]["text"] == "Answer in one word."  # type: ignore[index]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]  # type: ignore[index,union-attr]


def test_routing_reads_the_last_user_turn(fake: FakeProviderServer) -> None:
    provider = o.Provider("google", fake.api_key)
    question = "Which city is the capital of Japan, and since when has it been?"
    by_messages = provider.route(
        messages=[*CONVERSATION[:3], {"role": "user", "content": question}]
    )
    by_prompt = provider.route(question)
    assert (by_messages.model, by_messages.scores) == (by_prompt.model, by_prompt.scores)


def test_a_short_follow_up_is_routed_with_the_turn_it_follows(fake: FakeProviderServer) -> None:
    provider = o.Provider("google", fake.api_key)
    by_messages = provider.route(messages=CONVERSATION)
    by_both = provider.route("Name a colour.\nWhat is the capital of Japan?")
    assert by_messages.scores == by_both.scores
    multi = o.MultiProvider([provider, o.Provider("openai", fake.api_key)])
    assert multi.chat(messages=CONVERSATION, strategy="cheapest").text


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([{"role": "tool", "content": "x"}], "tool_call_id"),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "tool", "content": "x", "tool_call_id": "c1"},
            ],
            "no earlier assistant turn",
        ),
        ([{"role": "system", "content": "x"}], "user turn"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "url"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], "input_audio"),
        ("just a string", "list"),
    ],
)
def test_bad_conversations_fail_before_the_network(
    fake: FakeProviderServer, messages: object, match: str
) -> None:
    with pytest.raises(o.InvalidRequestError, match=match):
        o.Provider("openai", fake.api_key).chat(messages=messages)  # type: ignore[arg-type]
    with pytest.raises(o.InvalidRequestError, match="not both"):
        o.Provider("openai", fake.api_key).chat("hi", messages=CONVERSATION)
    assert fake.requests == []


@pytest.fixture
def usage_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[object]:
    """The process's usage log, freshly opened in a temp ORKESTRA_HOME."""
    from orkestra import usage

    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path))
    monkeypatch.setenv("ORKESTRA_USAGE_LOG", "on")
    old = usage._default_log
    usage._default_log = None
    log = usage.default_usage_log()
    yield log
    if log is not None:
        log.close()
    usage._default_log = old


def test_every_call_is_in_the_usage_log(fake: FakeProviderServer, usage_log: object) -> None:
    from orkestra.testing import Fault

    provider = o.Provider("openai", fake.api_key, max_retries=0)
    response = provider.chat("What is the capital of Japan?")
    "".join(provider.stream("Write a poem"))
    fake.queue(Fault.status(400), provider="openai")
    with pytest.raises(o.BadRequestError):
        provider.chat("hello")
    usage_log.flush()  # type: ignore[attr-defined]
    records = usage_log.query()  # type: ignore[attr-defined]
    assert [r.status for r in records] == ["ok", "ok", "BadRequestError"]
    first = records[0]
    assert (first.provider, first.model, first.tier) == ("openai", response.model, response.tier)
    assert first.cost == pytest.approx(response.cost)
    assert first.key_id == provider.key_id and fake.api_key not in repr(records)
    assert first.prompt is None  # prompts only when the user opts in
