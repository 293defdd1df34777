"""The real openai SDK against the fake server: chat, responses, models, validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from orkestra.testing import FakeProviderServer, Reply

USER = [{"role": "user", "content": "Hello there, how are you doing today my friend?"}]
BEARER = {"authorization": "Bearer test-key"}
Raw = Callable[..., Any]


def test_chat_completion_text_usage_and_snapshot_model(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
    )
    choice = completion.choices[0]
    assert choice.message.content == "[gpt-4o-mini] Hello there, how are you doing today my friend?"
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    usage = completion.usage
    assert usage is not None
    # ceil(chars / 4) of "Be brief." + "\n" + the user text; the reply likewise.
    assert usage.prompt_tokens == 15
    assert usage.completion_tokens == 16
    assert usage.total_tokens == 31


def test_chat_is_deterministic(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="gpt-4.1", messages=USER)
    second = oai.chat.completions.create(model="gpt-4.1", messages=USER)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


def test_chat_stream_with_usage_chunk(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) >= 3
    assert "".join(deltas) == "[gpt-4o-mini] Hello there, how are you doing today my friend?"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None and final.usage.completion_tokens == 16
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_scripted_reply_usage_semantics(server: FakeProviderServer, oai: openai.OpenAI) -> None:
    server.queue(
        Reply(
            "Cached answer.",
            input_tokens=100,
            output_tokens=50,
            cached_tokens=40,
            cache_write_tokens=10,
            reasoning_tokens=20,
        )
    )
    completion = oai.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert completion.choices[0].message.content == "Cached answer."
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 100  # includes the cached tokens
    assert usage.completion_tokens == 50  # includes the reasoning tokens
    assert usage.total_tokens == 150
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 40
    assert usage.prompt_tokens_details.cache_write_tokens == 10
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 20


def test_max_completion_tokens_truncates_with_length(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-5-nano", messages=USER, max_completion_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert completion.choices[0].message.content == "[gpt-5-nano]"  # 3 tokens = 12 chars


def test_reasoning_model_rejects_max_tokens(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="o3", messages=USER, max_tokens=100)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "max_tokens"
    assert "Use 'max_completion_tokens' instead." in caught.value.message


def test_reasoning_model_rejects_non_default_temperature(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-5.6-sol", messages=USER, temperature=0.2)
    assert caught.value.code == "unsupported_value"
    oai.chat.completions.create(model="gpt-5.6-sol", messages=USER, temperature=1)
    oai.chat.completions.create(model="gpt-4o", messages=USER, temperature=0.2, max_tokens=50)


def test_max_tokens_above_the_model_limit(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=32000)
    assert caught.value.body["message"] == (  # type: ignore[index]
        "max_tokens is too large: 32000. This model supports at most 16384 completion tokens,"
        " whereas you provided 32000."
    )
    assert caught.value.param == "max_tokens"
    oai.chat.completions.create(model="gpt-5", messages=USER, max_completion_tokens=128_000)


def test_empty_messages(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.param == "messages"


@pytest.mark.parametrize("model", ["o4-mini", "gpt-4.1-nano", "gpt-9-imaginary"])
def test_retired_or_unknown_model_is_404(oai: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model=model, messages=USER)
    assert caught.value.code == "model_not_found"
    assert f"The model `{model}` does not exist" in caught.value.message


def test_wrong_key_is_authentication_error(server: FakeProviderServer) -> None:
    with (
        openai.OpenAI(api_key="sk-wrong-key-123456", base_url=server.openai_base_url) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in caught.value.message


def test_responses_reasoning_model(server: FakeProviderServer, oai: openai.OpenAI) -> None:
    server.queue(Reply("Sure.", cached_tokens=3, reasoning_tokens=64))
    response = oai.responses.create(
        model="gpt-5-mini", instructions="Be brief.", input="Hello", reasoning={"effort": "low"}
    )
    assert response.output_text == "Sure."
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.status == "completed"
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == 4  # ceil(len("Be brief.\nHello") / 4), cache included
    assert usage.input_tokens_details.cached_tokens == 3
    assert usage.output_tokens == 2 + 64
    assert usage.output_tokens_details.reasoning_tokens == 64


def test_responses_stream_events(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-4.1-mini", input="Stream this text", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 3
    assert "".join(deltas) == "[gpt-4.1-mini] Stream this text"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "[gpt-4.1-mini] Stream this text"
    assert final.usage is not None and final.usage.output_tokens == 8


def test_responses_stream_helper_and_incomplete(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="gpt-4o", input="Hi", max_output_tokens=16) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "[gpt-4o] Hi"
    long = oai.responses.create(model="gpt-4o", input="word " * 200, max_output_tokens=16)
    assert long.status == "incomplete"
    assert long.incomplete_details is not None
    assert long.incomplete_details.reason == "max_output_tokens"
    assert long.usage is not None and long.usage.output_tokens == 16


def test_responses_validation(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="gpt-5", input="Hi", temperature=0.3)
    assert caught.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="gpt-4o", input="Hi", reasoning={"effort": "low"})
    assert caught.value.param == "reasoning.effort"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="gpt-4o", input="Hi", max_output_tokens=5)
    assert caught.value.code == "integer_below_min_value"


def test_models_list_and_retrieve(oai: openai.OpenAI) -> None:
    ids = {m.id for m in oai.models.list()}
    assert {"gpt-4o-mini", "gpt-5", "o3", "gpt-5.6-luna"} <= ids
    assert "o4-mini" not in ids
    assert oai.models.retrieve("gpt-4.1").id == "gpt-4.1"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("gpt-4.1-nano")


# ---------------------------------------------------------------- tools, structured output, images

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def test_tool_call_reply_and_its_stream_in_the_real_shape(
    server: FakeProviderServer, raw: Raw
) -> None:
    body = {"model": "gpt-4o-mini", "messages": USER, "tools": [WEATHER_TOOL]}
    server.queue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]), times=2)
    choice = raw("POST", "/v1/chat/completions", body, BEARER).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}

    streamed = raw("POST", "/v1/chat/completions", {**body, "stream": True}, BEARER)
    frames = [
        json.loads(line[6:])
        for line in streamed.body.decode().split("\n")
        if line.startswith("data: {")
    ]
    deltas = [f["choices"][0]["delta"] for f in frames]
    first = deltas[0]["tool_calls"][0]  # the role chunk carries the call's head
    assert deltas[0]["role"] == "assistant" and deltas[0]["content"] is None
    assert first["index"] == 0 and first["id"] == call["id"] and first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1]]
    assert len(pieces) >= 2 and "".join(pieces) == '{"city": "Paris"}'
    assert all(set(d["tool_calls"][0]) == {"index", "function"} for d in deltas[1:-1])
    assert frames[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_result_answer_quotes_the_results(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            *USER,
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert completion.choices[0].message.content == "[gpt-4o-mini] tool results: sunny"
    assert completion.choices[0].message.tool_calls is None


def _refused(oai: openai.OpenAI, **params: Any) -> openai.BadRequestError:
    params = {"model": "gpt-4o-mini", "messages": USER, **params}
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(**params)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    return caught.value


def test_tool_turns_must_answer_the_calls_just_before_them(oai: openai.OpenAI) -> None:
    result = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    error = _refused(oai, messages=[*USER, result])
    assert "must be a response to a preceeding message with 'tool_calls'" in error.message
    assert error.param == "messages.[1].role"
    asked = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    error = _refused(oai, messages=[*USER, asked, *USER], tools=[WEATHER_TOOL])
    assert "did not have response messages: call_1" in error.message
    error = _refused(oai, messages=[*USER, asked, {**result, "tool_call_id": "call_9"}])
    assert error.param == "messages.[2].tool_call_id"


def test_tool_declarations_and_tool_choice_are_validated(oai: openai.OpenAI) -> None:
    error = _refused(oai, tool_choice="required")
    assert "only allowed when 'tools' are specified" in error.message
    error = _refused(oai, tools=[WEATHER_TOOL], tool_choice="sometimes")
    assert error.code == "invalid_value" and error.param == "tool_choice"
    error = _refused(
        oai, tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "nope"}}
    )
    assert error.param == "tool_choice" and "not found in 'tools'" in error.message
    listing = {"type": "function", "function": {"name": "ls", "parameters": {"type": "array"}}}
    error = _refused(oai, tools=[listing])
    assert error.code == "invalid_function_parameters"
    assert error.param == "tools[0].function.parameters"
    assert "schema must be a JSON Schema of 'type: \"object\"'" in error.message
    spaced = {"type": "function", "function": {"name": "get weather"}}
    assert _refused(oai, tools=[spaced]).param == "tools[0].function.name"
    strict = {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True}}
    assert "'additionalProperties' is required" in _refused(oai, tools=[strict]).message


def test_response_format_is_validated_and_followed(oai: openai.OpenAI) -> None:
    error = _refused(oai, response_format={"type": "json_object"})
    assert "must contain the word 'json'" in error.message
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "count", "schema": schema}}
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        response_format=fmt,
    )
    assert json.loads(completion.choices[0].message.content or "") == {"n": 1}
    strict = {"type": "json_schema", "json_schema": {**fmt["json_schema"], "strict": True}}
    error = _refused(oai, response_format=strict)
    assert error.code == "invalid_json_schema" and error.param == "response_format"
    array = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}
    assert "got 'type: \"array\"'" in _refused(oai, response_format=array).message


def test_images_only_in_user_turns(oai: openai.OpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
    )
    error = _refused(oai, messages=[{"role": "system", "content": [image]}, *USER])
    assert error.param == "messages[0].content[0].type"
    text_url = {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}
    error = _refused(oai, messages=[{"role": "user", "content": [text_url]}])
    assert "unsupported MIME type 'text/plain'" in error.message


def test_repeated_prefix_is_reported_as_cached(oai: openai.OpenAI) -> None:
    system = {"role": "system", "content": "Rules of the house. " * 220}  # over 1024 tokens
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=[system, *USER])
    second = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[system, *USER, {"role": "assistant", "content": "Fine."}, *USER],
    )
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens_details.cached_tokens >= 1024
    assert second.usage.prompt_tokens_details.cache_write_tokens == 0


# ---------------------------------------------------------------- the compatible local server


def test_compat_route_takes_any_model_and_no_key(server: FakeProviderServer, raw: Raw) -> None:
    body = {"model": "qwen2.5-coder:7b", "messages": USER}
    reply = raw("POST", "/compat/v1/chat/completions", body)  # no Authorization header at all
    assert reply.status == 200
    assert reply.json()["model"] == "qwen2.5-coder:7b"
    assert raw("GET", "/compat/v1/models/anything:1b").json()["id"] == "anything:1b"
    assert raw("POST", "/v1/chat/completions", body, BEARER).status == 404  # not at OpenAI
    assert raw("GET", "/compat/v1/nowhere").status == 404
    assert server.compat_base_url == server.url + "/compat/v1"
    assert [r.provider for r in server.requests] == ["openai"] * 4
