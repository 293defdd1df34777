"""The fake providers take and enforce the optional parameters as the real APIs do: stop
sequences end the answer, ranges and counts are checked, and each API refuses what it refuses
(OpenAI's reasoning models: sampling controls and ``stop``; the others: ``reasoning_effort``;
Anthropic's 2026-10-21 version: ``top_p``)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from orkestra.testing import FakeProviderServer, Reply

HELLO = [{"role": "user", "content": "Hello"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def test_openai_stops_at_a_stop_sequence_and_answers_n_choices(
    oai: openai.OpenAI, server: FakeProviderServer
) -> None:
    server.queue(Reply(text="red green STOP blue"))
    completion = oai.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stop=["STOP"], n=2, seed=1, top_p=0.5
    )
    assert [c.message.content for c in completion.choices] == ["red green ", "red green "]
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("model", "fields", "param", "code"),
    [
        ("o3", {"top_p": 0.5}, "top_p", "unsupported_parameter"),
        ("o3", {"stop": ["x"]}, "stop", "unsupported_parameter"),
        ("gpt-5-mini", {"presence_penalty": 1}, "presence_penalty", "unsupported_parameter"),
        ("gpt-4o-mini", {"reasoning_effort": "low"}, "reasoning_effort", "unsupported_parameter"),
        ("gpt-4o-mini", {"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
        ("gpt-4o-mini", {"top_p": 1.5}, "top_p", "decimal_above_max_value"),
        ("gpt-4o-mini", {"n": 0}, "n", "integer_below_min_value"),
        ("o3", {"reasoning_effort": "max"}, "reasoning_effort", "invalid_value"),
        ("gpt-4o-mini", {"parallel_tool_calls": False}, "parallel_tool_calls", None),
    ],
)
def test_openai_refuses_what_the_api_refuses(
    oai: openai.OpenAI, model: str, fields: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=model, messages=HELLO, **fields)
    error = caught.value.body
    assert isinstance(error, dict) and (error["param"], error["code"]) == (param, code)


def test_openai_takes_parallel_tool_calls_with_tools_and_effort_on_reasoning_models(
    oai: openai.OpenAI,
) -> None:
    oai.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, tools=[TOOL], parallel_tool_calls=False
    )
    oai.chat.completions.create(model="o3", messages=HELLO, reasoning_effort="high", seed=2)


def test_anthropic_stops_at_a_stop_sequence_and_names_it(
    claude: anthropic.Anthropic, server: FakeProviderServer
) -> None:
    server.queue(Reply(text="red green STOP blue"))
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=HELLO, stop_sequences=["STOP"]
    )
    assert message.content[0].text == "red green "  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "STOP")


def test_anthropic_refuses_top_p_and_checks_one_call_at_most(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="top_p"):
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=HELLO, extra_body={"top_p": 0.5}
        )
    with pytest.raises(anthropic.BadRequestError, match="disable_parallel_tool_use"):
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=HELLO,
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
            tool_choice={"type": "none", "disable_parallel_tool_use": True},  # type: ignore[typeddict-item]
        )


def test_gemini_stops_and_checks_its_generation_config(
    gemini: genai.Client, server: FakeProviderServer
) -> None:
    server.queue(Reply(text="red green STOP blue"))
    answer = gemini.models.generate_content(
        model="gemini-3.5-flash",
        contents="Hello",
        config=types.GenerateContentConfig(stop_sequences=["STOP"], seed=3, top_p=0.2),
    )
    assert answer.text == "red green "
    for config in (
        types.GenerateContentConfig(stop_sequences=["a", "b", "c", "d", "e", "f"]),
        types.GenerateContentConfig(top_p=1.5),
        types.GenerateContentConfig(candidate_count=9),
        types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=99_999)),
    ):
        with pytest.raises(genai_errors.ClientError) as caught:
            gemini.models.generate_content(model="gemini-3.5-flash", contents="Hi", config=config)
        assert caught.value.code == 400
