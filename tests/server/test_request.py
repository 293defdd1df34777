"""OpenAI request fields in, the library's terms out: every field translated, recorded, accepted
at its default or refused by name; finish reasons and usage out."""

from __future__ import annotations

from typing import Any

import pytest

from orkestra import Usage
from orkestra.providers.base import Message
from orkestra.server.errors import ProxyError
from orkestra.server.request import ChatParams, parse_chat_request
from orkestra.server.response import usage_json

USER = [{"role": "user", "content": "hi"}]


def parse(**fields: Any) -> ChatParams:
    return parse_chat_request({"model": "orkestra/auto", "messages": USER, **fields})


def refusal(**fields: Any) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        parse(**fields)
    assert caught.value.status == 400
    return caught.value


def test_the_minimal_request() -> None:
    params = parse()
    assert params.model == "orkestra/auto"
    assert params.conversation() == {"prompt": "hi"}
    assert params.options() == {}
    assert not params.stream and not params.include_usage and params.user is None


def test_a_conversation_keeps_its_turns_with_developer_as_system() -> None:
    params = parse(
        messages=[
            {"role": "system", "content": "s"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": "c", "refusal": None, "tool_calls": []},
            {"role": "developer", "content": "d"},
            {"role": "user", "content": "e"},
        ]
    )
    assert params.conversation() == {
        "messages": [
            Message("system", "s"),
            Message("user", "ab"),
            Message("assistant", "c"),
            Message("system", "d"),
            Message("user", "e"),
        ]
    }
    assert params.last_user_text == "e"


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({"max_tokens": 5}, {"max_tokens": 5}),
        ({"max_completion_tokens": 6}, {"max_tokens": 6}),
        ({"max_tokens": 7, "max_completion_tokens": 7}, {"max_tokens": 7}),
        ({"temperature": 0}, {"temperature": 0.0}),
        ({"temperature": 1.5, "max_tokens": None}, {"temperature": 1.5}),
    ],
)
def test_max_tokens_and_temperature(fields: dict[str, Any], options: dict[str, Any]) -> None:
    assert parse(**fields).options() == options


def test_stream_options_and_user() -> None:
    params = parse(stream=True, stream_options={"include_usage": True}, user="alice")
    assert params.stream and params.include_usage and params.user == "alice"
    assert parse(safety_identifier="h-123").user == "h-123"


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"top_p": 1},
        {"stop": []},
        {"presence_penalty": 0},
        {"frequency_penalty": 0.0},
        {"logprobs": False},
        {"tools": []},
        {"tool_choice": "none"},
        {"tool_choice": "auto"},
        {"parallel_tool_calls": True},
        {"parallel_tool_calls": False},  # no tools: nothing to call in parallel
        {"response_format": {"type": "text"}},
        {"store": False},
        {"service_tier": "auto"},
        {"modalities": ["text"]},
        {"seed": None, "tools": None, "stop": None, "metadata": None},
    ],
)
def test_defaults_of_unsupported_parameters_are_accepted(fields: dict[str, Any]) -> None:
    parse(**fields)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools[0].type"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"response_format": {"type": "grammar"}}, "response_format.type"),
        ({"n": 3}, "n"),
        ({"n": True}, "n"),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"messages": [{"role": "function", "content": "x", "name": "f"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [*USER, {"role": "assistant", "content": "x", "refusal": "no"}]},
            "messages[1].refusal",
        ),
    ],
)
def test_what_orkestra_cannot_honour_is_refused_by_name(fields: dict[str, Any], param: str) -> None:
    error = refusal(**fields)
    assert error.param == param
    assert error.code == "unsupported_parameter"
    assert "does not support" in error.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": 5}, "model"),
        ({"model": None}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        ({"messages": [{"role": "boss", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "extra": 1}]}, "messages[0].extra"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages[0].content"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_completion_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": False}, "temperature"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": []}, "stream_options"),
        ({"stream": True, "stream_options": {"x": 1}}, "stream_options.x"),
        ({"user": 5}, "user"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_malformed_fields_are_400s_naming_the_param(fields: dict[str, Any], param: str) -> None:
    assert refusal(**fields).param == param


@pytest.mark.parametrize("body", [None, [], "x", 5])
def test_a_body_that_is_not_an_object(body: object) -> None:
    with pytest.raises(ProxyError):
        parse_chat_request(body)


def test_usage_counts_cached_and_reasoning_tokens_inside_the_totals() -> None:
    usage = Usage(input_tokens=100, output_tokens=40, cache_read_tokens=60, reasoning_tokens=25)
    assert usage_json(usage) == {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 60},
        "completion_tokens_details": {"reasoning_tokens": 25},
    }


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def test_optional_parameters_are_handed_to_the_library_by_its_names() -> None:
    params = parse(
        stop="END",
        top_p=0.5,
        seed=7,
        presence_penalty=-1,
        frequency_penalty=0.25,
        logit_bias={"50256": -100},
        reasoning_effort="low",
        parallel_tool_calls=False,
        tools=[TOOL],
    )
    assert params.params == {
        "stop": ["END"],
        "top_p": 0.5,
        "seed": 7,
        "presence_penalty": -1.0,
        "frequency_penalty": 0.25,
        "logit_bias": {"50256": -100.0},
        "reasoning_effort": "low",
        "parallel_tool_calls": False,
    }
    assert params.options()["stop"] == ["END"] and params.options()["seed"] == 7
    # Nothing asked: a plain library call.
    assert parse(stop=[], logit_bias={}, parallel_tool_calls=False).params == {}


def test_logprobs_are_reported_ignored_and_unserved() -> None:
    params = parse(logprobs=True, top_logprobs=2)
    assert params.unserved == ("logprobs", "top_logprobs")
    assert set(params.unserved) <= set(params.ignored)
    assert parse(logprobs=False).unserved == ()


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
        ({"stop": [""]}, "stop[0]", "invalid_value"),
        ({"stop": 3}, "stop", "invalid_type"),
        ({"top_p": 1.5}, "top_p", "invalid_value"),
        ({"top_p": "high"}, "top_p", "invalid_type"),
        ({"seed": 1.5}, "seed", "invalid_type"),
        ({"seed": 2**70}, "seed", "invalid_value"),
        ({"presence_penalty": 3}, "presence_penalty", "invalid_value"),
        ({"logit_bias": {"token": 1}}, "logit_bias", "invalid_value"),
        ({"logit_bias": {"1": 101}}, "logit_bias.1", "invalid_value"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "invalid_value"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "invalid_type"),
        ({"logprobs": "yes"}, "logprobs", "invalid_type"),
        ({"top_logprobs": 3}, "top_logprobs", "invalid_value"),
    ],
)
def test_bad_optional_parameters_are_refused_by_name(
    fields: dict[str, Any], param: str, code: str
) -> None:
    error = refusal(**fields)
    assert (error.status, error.param, error.code) == (400, param, code)
