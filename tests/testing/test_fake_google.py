"""The real google-genai SDK (3.x) against the fake server, on v1beta and v1."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from orkestra.testing import FakeProviderServer, Reply

PROMPT = "Hello there, how are you doing today my friend?"


def test_generate_content_text_and_usage(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model="gemini-3.5-flash",
        contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2),
    )
    assert response.text == "[gemini-3.5-flash] Hello there, how are you doing today my friend?"
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == "gemini-3.5-flash"
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 15
    assert usage.candidates_token_count == 17
    assert usage.total_token_count == 32
    assert usage.thoughts_token_count is None


def test_stream_deltas_and_final_usage(gemini: genai.Client) -> None:
    chunks = list(gemini.models.generate_content_stream(model="gemini-3.5-flash", contents=PROMPT))
    assert len(chunks) >= 3
    assert "".join(c.text or "" for c in chunks) == (
        "[gemini-3.5-flash] Hello there, how are you doing today my friend?"
    )
    middle, last = chunks[0].usage_metadata, chunks[-1].usage_metadata
    assert middle is not None and middle.candidates_token_count is None
    assert middle.prompt_token_count == 12
    assert last is not None and last.candidates_token_count == 17
    assert last.total_token_count == 12 + 17
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[0].candidates is not None
    assert chunks[0].candidates[0].finish_reason is None


def test_scripted_reply_usage_semantics(server: FakeProviderServer, gemini: genai.Client) -> None:
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
    usage = gemini.models.generate_content(model="gemini-3.5-flash", contents=PROMPT).usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 100  # includes the cached tokens
    assert usage.cached_content_token_count == 40
    assert usage.candidates_token_count == 30  # visible output only
    assert usage.thoughts_token_count == 20
    assert usage.total_token_count == 150


def test_max_output_tokens_truncates(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents=PROMPT,
        config=types.GenerateContentConfig(
            max_output_tokens=4, thinking_config=types.ThinkingConfig(thinking_budget=0)
        ),
    )
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata is not None
    assert response.usage_metadata.candidates_token_count == 4


def test_max_output_tokens_above_limit(gemini: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(
            model="gemini-3.5-flash",
            contents=PROMPT,
            config=types.GenerateContentConfig(max_output_tokens=65_537),
        )
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"


def test_wrong_key_is_400_api_key_invalid(
    make_gemini: Callable[..., genai.Client],
) -> None:
    client = make_gemini(api_key="wrong-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3.5-flash", contents=PROMPT)
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    details = caught.value.details["error"]["details"]
    assert details[0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-1.5-flash", "gemini-9-ultra"])
def test_retired_or_unknown_model_is_404(gemini: genai.Client, model: str) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(model=model, contents=PROMPT)
    assert caught.value.code == 404
    assert caught.value.status == "NOT_FOUND"
    assert f"models/{model} is not found for API version v1beta" in str(caught.value.message)


def test_preview_model_on_v1_is_404(make_gemini: Callable[..., genai.Client]) -> None:
    v1 = make_gemini(api_version="v1")
    with pytest.raises(errors.ClientError) as caught:
        v1.models.generate_content(model="gemini-3-flash-preview", contents=PROMPT)
    assert caught.value.code == 404
    assert "is not found for API version v1," in str(caught.value.message)
    # The same id works on v1beta, and a stable id works on v1.
    assert make_gemini().models.generate_content(model="gemini-3-flash-preview", contents="x").text
    assert v1.models.generate_content(model="gemini-3.5-flash", contents="x").text


def test_thinking_budget_zero_rejected_by_pro(
    gemini: genai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", "2026-11-30")  # gemini-2.5-pro shut down 2026-12-01
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    with pytest.raises(errors.ClientError):
        gemini.models.generate_content(model="gemini-2.5-pro", contents=PROMPT, config=config)
    gemini.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=config)


def test_multi_turn_contents_with_roles(server: FakeProviderServer, gemini: genai.Client) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="First question")]),
        types.Content(role="model", parts=[types.Part(text="First answer")]),
        types.Content(role="user", parts=[types.Part(text="Second question")]),
    ]
    response = gemini.models.generate_content(model="gemini-3.1-flash-lite", contents=contents)
    assert response.text == "[gemini-3.1-flash-lite] Second question"
    assert server.requests[-1].model == "gemini-3.1-flash-lite"


def test_count_tokens_and_models(gemini: genai.Client) -> None:
    counted = gemini.models.count_tokens(model="gemini-3.5-flash", contents=PROMPT)
    assert counted.total_tokens == 12
    names = {m.name for m in gemini.models.list()}
    assert "models/gemini-3.1-pro-preview" in names
    assert "models/gemini-3-pro-preview" not in names
    model = gemini.models.get(model="gemini-3.1-pro-preview")
    assert model.output_token_limit == 65_536


# ---------------------------------------------------------------- function calling

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
)
WEATHER_TOOLS = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])


@pytest.mark.parametrize(
    ("model", "has_id"), [("gemini-3-flash-preview", True), ("gemini-2.5-flash-lite", False)]
)
def test_function_call_parts(gemini: genai.Client, model: str, has_id: bool) -> None:
    response = gemini.models.generate_content(model=model, contents=PROMPT, config=WEATHER_TOOLS)
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP  # no tool reason
    assert response.candidates[0].content is not None
    (part,) = response.candidates[0].content.parts or []
    assert part.function_call is not None
    assert part.function_call.name == "get_weather"
    assert part.function_call.args == {"city": "example city"}
    assert bool(part.function_call.id) is has_id  # Gemini 3 always returns an id
    assert part.thought_signature  # issued on every call


def test_streamed_function_calls_come_whole_one_per_chunk(
    server: FakeProviderServer, gemini: genai.Client
) -> None:
    server.queue(
        Reply(
            "Checking.",
            tool_calls=[("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Oslo"})],
        )
    )
    chunks = list(
        gemini.models.generate_content_stream(
            model="gemini-3.5-flash", contents=PROMPT, config=WEATHER_TOOLS
        )
    )
    calls = [
        p.function_call.args
        for c in chunks
        for p in (
            c.candidates[0].content.parts or [] if c.candidates and c.candidates[0].content else []
        )
        if p.function_call is not None
    ]
    assert calls == [{"city": "Rome"}, {"city": "Oslo"}]
    assert "".join(c.text or "" for c in chunks if c.text) == "Checking."
    last = chunks[-1]
    assert (
        last.candidates is not None and last.candidates[0].finish_reason == types.FinishReason.STOP
    )
    assert last.candidates[0].content is not None
    assert last.candidates[0].content.parts and last.candidates[0].content.parts[0].function_call


def _generate(model: str) -> str:
    return f"/v1beta/models/{model}:generateContent"


def _turns(call_part: Mapping[str, object]) -> list[dict[str, object]]:
    return [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [call_part]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "Sun"}}}],
        },
    ]


def test_gemini3_rejects_a_replayed_call_without_its_signature(
    server: FakeProviderServer, raw: Callable[..., Any]
) -> None:
    headers = {"x-goog-api-key": server.api_key}
    tools = [{"functionDeclarations": [{"name": "get_weather"}]}]
    first = raw(
        "POST",
        _generate("gemini-3-flash-preview"),
        {"contents": _turns({})[:1], "tools": tools},
        headers,
    )
    assert first.status == 200
    issued = first.json()["candidates"][0]["content"]["parts"][0]
    assert issued["thoughtSignature"] and issued["functionCall"]["id"]

    signed = {"contents": _turns(issued), "tools": tools}
    answer = raw("POST", _generate("gemini-3-flash-preview"), signed, headers)
    assert answer.status == 200
    assert answer.json()["candidates"][0]["content"]["parts"][0]["text"].endswith(
        "tool results: Sun"
    )

    unsigned = {"contents": _turns({"functionCall": issued["functionCall"]}), "tools": tools}
    refused = raw("POST", _generate("gemini-3-flash-preview"), unsigned, headers)
    assert refused.status == 400
    error = refused.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("Function call is missing a thought_signature")
    # Gemini 2.5 does not enforce it; neither does Gemini 3 for a call it never issued.
    assert raw("POST", _generate("gemini-2.5-flash-lite"), unsigned, headers).status == 200
    foreign = {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}
    assert (
        raw(
            "POST",
            _generate("gemini-3-flash-preview"),
            {"contents": _turns(foreign), "tools": tools},
            headers,
        ).status
        == 200
    )


_ASK = _turns({})[:1]
_CALLED = _turns({"functionCall": {"name": "get_weather", "args": {}}})
_RESULT = {"functionResponse": {"name": "get_weather", "response": {}}}


def _declare(**declaration: object) -> list[dict[str, object]]:
    return [{"functionDeclarations": [{"name": "f", **declaration}]}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"contents": _turns({"text": "no call here"})},
            "Please ensure that function response turn comes immediately after a function call"
            " turn.",
        ),
        (
            {"contents": [*_CALLED[:2], _CALLED[1]]},
            "Please ensure that function call turn comes immediately after a user turn or after a"
            " function response turn.",
        ),
        (
            {"contents": [*_CALLED[:2], {"role": "user", "parts": [_RESULT, _RESULT]}]},
            "Please ensure that the number of function response parts is equal to the number of"
            " function call parts of the function call turn.",
        ),
        (
            {"contents": _ASK, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
            "Function calling config is set without function_declarations.",
        ),
        (
            {
                "contents": _ASK,
                "tools": _declare(),
                "toolConfig": {
                    "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["nope"]}
                },
            },
            "allowed_function_names[0]: 'nope' is not the name of a declared function.",
        ),
        (
            {"contents": _ASK, "tools": _declare(name="9 lives")},
            "tools[0].function_declarations[0].name: Invalid function name.",
        ),
        (
            {"contents": _ASK, "tools": _declare(parametersJsonSchema={"type": "string"})},
            "tools[0].function_declarations[0].parameters_json_schema: the schema must describe",
        ),
        (
            {"contents": _ASK, "tools": _declare(parameters={"$schema": "x", "type": "OBJECT"})},
            'Invalid JSON payload received. Unknown name "$schema" at'
            " 'tools[0].function_declarations[0].parameters': Cannot find field.",
        ),
        (
            {"contents": _ASK, "generationConfig": {"responseJsonSchema": {"type": "object"}}},
            "a response schema needs response_mime_type application/json",
        ),
        (
            {"contents": _ASK, "generationConfig": {"responseMimeType": "text/html"}},
            "allowed mimetypes are `text/plain`, `application/json`",
        ),
    ],
)
def test_malformed_tool_and_output_requests_are_400(
    server: FakeProviderServer, raw: Callable[..., Any], body: dict[str, Any], message: str
) -> None:
    reply = raw("POST", _generate("gemini-3.5-flash"), body, {"x-goog-api-key": server.api_key})
    assert reply.status == 400
    error = reply.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert message in error["message"]
    assert server.requests[-1].model == "gemini-3.5-flash"


def test_structured_output_answers_schema_json(gemini: genai.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}}}
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema
    )
    response = gemini.models.generate_content(
        model="gemini-3.5-flash", contents=PROMPT, config=config
    )
    assert json.loads(response.text or "") == {"ok": True, "n": 1}
    legacy = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=types.Schema(
            type=types.Type.OBJECT, properties={"word": types.Schema(type=types.Type.STRING)}
        ),
    )
    response = gemini.models.generate_content(
        model="gemini-3.5-flash", contents=PROMPT, config=legacy
    )
    assert json.loads(response.text or "") == {"word": "example word"}
