"""Tools, tool results, images and response_format through the proxy: the real ``openai``
client against a real proxy server (a ``python -m orkestra.server`` process, or uvicorn in a
thread for a custom catalog), upstream the fake provider server; and the request checks."""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import openai
import pydantic
import pytest
import uvicorn
from proxy_helpers import CLIENT_KEY, AppClient, LiveServer, make_config, sse_events

import orkestra as o
from orkestra._types import ToolCall
from orkestra.catalog import Catalog, default_catalog
from orkestra.providers.base import Image, Message
from orkestra.server import ProviderConfig, create_app
from orkestra.server.call_ids import parse_call_id, wire_call_id
from orkestra.server.errors import ProxyError
from orkestra.server.request import ChatParams, parse_chat_request
from orkestra.testing import FakeProviderServer, Reply

PROVIDERS = ("openai", "anthropic", "google")
QUESTION = "What is the weather in Paris today? Please check it for me."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CAPITAL_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
# A 1x1 transparent PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
PNG_URL = f"data:image/png;base64,{PNG}"


def ask(text: str = QUESTION) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def stored_row(live: LiveServer, request_id: str, timeout: float = 10.0) -> sqlite3.Row:
    """The usage log's row for a request, once the server's writer has written it."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(live.db) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM calls WHERE id = ?", (request_id,)).fetchone()
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"no usage row for {request_id}"
        time.sleep(0.05)


def tool_names_sent(provider: str, body: dict[str, Any]) -> list[str]:
    """The tool names a provider request declares, in that provider's own format."""
    if provider == "openai":
        return [t["function"]["name"] for t in body["tools"]]
    if provider == "anthropic":
        return [t["name"] for t in body["tools"]]
    return [d["name"] for t in body["tools"] for d in t["functionDeclarations"]]


# -- the real client against a real server process ---------------------------------------------


@pytest.fixture
def client(live: LiveServer, upstream: FakeProviderServer) -> Iterator[openai.OpenAI]:
    upstream.clear()
    with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_tool_call_round_trip(
    client: openai.OpenAI, upstream: FakeProviderServer, provider: str
) -> None:
    messages: list[Any] = ask()
    raw = client.chat.completions.with_raw_response.create(
        model=f"orkestra/{provider}", messages=messages, tools=[WEATHER]
    )
    first = raw.parse()
    choice = first.choices[0]
    assert raw.headers["x-orkestra-provider"] == provider
    assert tool_names_sent(provider, upstream.requests[-1].body) == ["get_weather"]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)

    messages += [
        choice.message,  # the assistant turn as the client got it, sent back as is
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(
        model=f"orkestra/{provider}", messages=messages, tools=[WEATHER]
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None
    assert "18C and sunny" in (second.choices[0].message.content or "")
    assert upstream.requests[-1].provider == provider
    assert "18C and sunny" in json.dumps(upstream.requests[-1].body)


@pytest.mark.slow
def test_gemini_3s_thought_signature_rides_in_the_call_id(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    """Gemini 3 rejects a replayed call without its signature: the proxy carries it in the id
    the client echoes back."""
    messages: list[Any] = ask()
    first = client.chat.completions.create(
        model="gemini-3-flash-preview", messages=messages, tools=[WEATHER]
    )
    (call,) = first.choices[0].message.tool_calls or []
    call_id, signature = parse_call_id(call.id)
    assert call_id and signature
    assert call.id == f"{call_id}~{signature}"
    base64.b64decode(signature, validate=True)  # the API's base64, as it came

    messages += [
        first.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(
        model="gemini-3-flash-preview", messages=messages, tools=[WEATHER]
    )
    assert "18C and sunny" in (second.choices[0].message.content or "")
    sent = upstream.requests[-1].body["contents"]
    replayed = [p for c in sent for p in c["parts"] if "functionCall" in p]
    assert [p["thoughtSignature"] for p in replayed] == [signature]


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_tool_calls_come_after_the_text_as_openai_streams_them(
    client: openai.OpenAI, upstream: FakeProviderServer, provider: str
) -> None:
    upstream.queue(Reply("Let me check.", tool_calls=[("get_weather", {"city": "Paris"})]))
    stream = client.chat.completions.create(
        model=f"orkestra/{provider}", messages=ask(), tools=[WEATHER], stream=True
    )
    text, calls, reasons, order = "", {}, [], []
    with stream:
        for chunk in stream:
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    text += delta.content
                    order.append("text")
                for part in delta.tool_calls or ():
                    order.append("call")
                    entry = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    entry["id"] += part.id or ""
                    entry["name"] += (part.function and part.function.name) or ""
                    entry["arguments"] += (part.function and part.function.arguments) or ""
                if choice.finish_reason:
                    reasons.append(choice.finish_reason)
    assert text == "Let me check."
    assert order[-1] == "call" and order.index("call") > order.index("text")
    assert reasons == ["tool_calls"]
    (only,) = calls.values()
    assert only["name"] == "get_weather" and json.loads(only["arguments"]) == {"city": "Paris"}
    assert only["id"]


@pytest.mark.slow
def test_the_openai_stream_helper_assembles_the_tool_calls(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    upstream.queue(
        Reply(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})])
    )
    with client.chat.completions.stream(
        model="orkestra/anthropic", messages=ask(), tools=[WEATHER]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [json.loads(c.function.arguments)["city"] for c in message.tool_calls or []] == [
        "Paris",
        "Rome",
    ]
    assert len({c.id for c in message.tool_calls or []}) == 2


class Capital(pydantic.BaseModel):
    city: str
    population: int


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_json_schema_answer_parses_to_the_schema(
    client: openai.OpenAI, upstream: FakeProviderServer, provider: str
) -> None:
    completion = client.chat.completions.create(
        model=f"orkestra/{provider}",
        messages=ask("What is the capital of Japan, and how many people live there?"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "capital", "schema": CAPITAL_SCHEMA, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), CAPITAL_SCHEMA)
    assert completion.choices[0].finish_reason == "stop"
    assert upstream.requests[-1].provider == provider
    assert '"population"' in json.dumps(upstream.requests[-1].body)  # the schema was sent


@pytest.mark.slow
def test_the_openai_parse_helper_gets_its_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="orkestra/auto",
        messages=ask("What is the capital of Japan, and how many people live there?"),
        response_format=Capital,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Capital) and isinstance(parsed.population, int)


@pytest.mark.slow
def test_json_mode_answers_a_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="orkestra/google",
        messages=ask("Give the capital of Japan as JSON."),
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


@pytest.mark.slow
def test_an_answer_that_fails_its_schema_is_a_502_with_the_raw_text_and_its_cost(
    client: openai.OpenAI, live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.queue(Reply("Tokyo, I believe."))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=ask("What is the capital of Japan?"),
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "capital", "schema": CAPITAL_SCHEMA},
            },
        )
    error = caught.value
    assert error.status_code == 502
    assert error.code == "invalid_model_output" and error.type == "invalid_model_output"
    body = error.response.json()
    assert body["orkestra"]["text"] == "Tokyo, I believe."
    assert body["orkestra"]["model"] == "gpt-4o-mini" and body["orkestra"]["cost_usd"] > 0
    headers = error.response.headers
    assert float(headers["x-orkestra-cost-usd"]) == pytest.approx(body["orkestra"]["cost_usd"])
    row = stored_row(live, headers["x-request-id"])
    assert row["status"] == "StructuredOutputError"
    assert row["cost"] == pytest.approx(body["orkestra"]["cost_usd"])
    assert row["model"] == "gpt-4o-mini" and row["output_tokens"] > 0


@pytest.mark.slow
def test_a_stream_that_fails_its_schema_ends_with_the_error(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    upstream.queue(Reply("Tokyo, I believe."))
    stream = client.chat.completions.create(
        model="orkestra/openai",
        messages=ask("What is the capital of Japan?"),
        response_format={"type": "json_object"},
        stream=True,
    )
    text = ""
    with stream, pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "Tokyo, I believe."
    assert "did not match the response_format" in caught.value.message


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_image_reaches_the_provider(
    client: openai.OpenAI, upstream: FakeProviderServer, provider: str
) -> None:
    completion = client.chat.completions.create(
        model=f"orkestra/{provider}",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture? Describe it in detail."},
                    {"type": "image_url", "image_url": {"url": PNG_URL}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content
    assert PNG in json.dumps(upstream.requests[-1].body)


@pytest.mark.slow
def test_a_tool_result_for_no_call_is_a_400_naming_it(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="orkestra/auto",
            messages=[*ask(), {"role": "tool", "tool_call_id": "call_1", "content": "18C"}],
            tools=[WEATHER],
        )
    assert caught.value.param == "messages[1].tool_call_id"
    assert upstream.requests == []


# -- a proxy whose catalog lacks a capability ------------------------------------------------------


def without(capability: str, provider: str, catalog: Catalog) -> Catalog:
    """The catalog with ``capability`` taken from every model of ``provider``."""
    models = {
        key: (
            dataclasses.replace(m, capabilities=m.capabilities - {capability})
            if m.provider == provider
            else m
        )
        for key, m in catalog.models.items()
    }
    return dataclasses.replace(catalog, models=models)


Lacking = Callable[[str], openai.OpenAI]


@pytest.fixture
def lacking(fake: FakeProviderServer) -> Iterator[Lacking]:
    """``lacking("tools")``: the real client against a proxy (uvicorn, in a thread) serving
    OpenAI from a catalog in which no OpenAI model has that capability."""
    servers: list[tuple[uvicorn.Server, threading.Thread, openai.OpenAI]] = []

    def start(capability: str) -> openai.OpenAI:
        app = create_app(
            make_config(providers=(ProviderConfig("openai"),), usage_log=False),
            catalog=without(capability, "openai", default_catalog()),
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0
        )
        servers.append((server, thread, client))
        return client

    yield start
    for server, thread, client in servers:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


IMAGE_QUESTION = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": PNG_URL}},
        ],
    }
]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["orkestra/openai", "orkestra/auto", "gpt-4o-mini"])
@pytest.mark.parametrize(
    ("capability", "request_", "param"),
    [
        ("tools", {"messages": ask(), "tools": [WEATHER]}, "tools"),
        ("vision", {"messages": IMAGE_QUESTION}, "messages"),
        (
            "json",
            {"messages": ask(), "response_format": {"type": "json_object"}},
            "response_format",
        ),
    ],
)
def test_a_request_no_model_of_the_destination_can_serve_is_a_400_before_any_call(
    lacking: Lacking,
    fake: FakeProviderServer,
    model: str,
    capability: str,
    request_: dict[str, Any],
    param: str,
) -> None:
    client = lacking(capability)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, **request_)
    assert caught.value.code == "no_capable_model"
    assert caught.value.param == param
    assert capability in caught.value.message
    assert fake.requests == []
    answer = client.chat.completions.create(model=model, messages=ask())  # without: served
    assert answer.choices[0].message.content


# -- the request checks --------------------------------------------------------------------------


def parse(**fields: Any) -> ChatParams:
    return parse_chat_request({"model": "orkestra/auto", "messages": ask(), **fields})


def refused(**fields: Any) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        parse(**fields)
    assert caught.value.status == 400
    return caught.value


def test_tools_choice_and_format_reach_the_library_typed() -> None:
    """The proxy parses the wire into the library's vocabulary and hands that over: the library
    takes it as it is (nothing is checked twice)."""
    params = parse(
        tools=[{"type": "function", "function": {**WEATHER["function"], "strict": True}}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=True,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "capital", "schema": CAPITAL_SCHEMA, "description": "d"},
        },
    )
    function = WEATHER["function"]
    assert params.options() == {
        # strict: no provider is sent it, and it is reported
        "tools": (o.Tool("get_weather", function["description"], function["parameters"]),),
        "tool_choice": o.ForcedTool("get_weather"),
        "response_format": o.ResponseFormat("capital", CAPITAL_SCHEMA, strict=False),
    }
    assert params.ignored == ("tools.function.strict", "response_format.json_schema.description")
    assert parse(response_format={"type": "json_object"}).options() == {
        "response_format": o.ResponseFormat(schema=None)
    }
    assert parse(tool_choice="auto").options() == {}  # no tools: nothing to choose


def test_a_tool_conversation_becomes_library_turns_with_signatures_decoded() -> None:
    params = parse(
        messages=[
            {"role": "developer", "content": "Be brief."},
            *ask(),
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "fc_1~c2lnbmF0dXJl",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_2", "content": "noon"},
            {
                "role": "tool",
                "tool_call_id": "fc_1~c2lnbmF0dXJl",
                "content": [{"type": "text", "text": "18C"}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
                ],
            },
        ],
        tools=[WEATHER],
    )
    assert params.conversation() == {
        "messages": [
            Message("system", "Be brief."),
            Message("user", QUESTION),
            Message(
                "assistant",
                "",
                tool_calls=(
                    ToolCall("fc_1", "get_weather", '{"city": "Paris"}', "c2lnbmF0dXJl"),
                    ToolCall("toolu_2", "get_time", ""),
                ),
            ),
            Message("tool", "noon", tool_call_id="toolu_2", name="get_time"),
            Message("tool", "18C", tool_call_id="fc_1", name="get_weather"),
            Message("user", "And this?", images=(Image(PNG_URL),)),
        ]
    }
    assert params.ignored == ("image_url.detail",)
    assert parse(messages=[{"role": "user", "content": [{"type": "text", "text": "x"}]}]).prompt
    image_only = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}
    ]
    assert parse(messages=image_only).prompt is None  # an image goes as a message


@pytest.mark.parametrize(
    ("call_id", "signature"),
    [("call_1", None), ("fc_1", "c2ln/bmF0+dXJl=="), ("a~b", None), ("a~b", "c2ln"), ("", "x")],
)
def test_a_call_id_comes_back_as_it_left(call_id: str, signature: str | None) -> None:
    wire = wire_call_id(ToolCall(call_id, "f", "{}", signature))
    assert parse_call_id(wire) == (call_id, signature)
    assert (wire == call_id) == (signature is None and "~" not in call_id)


ASSISTANT_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ],
}


def with_call(*after: dict[str, Any], call: dict[str, Any] = ASSISTANT_CALL) -> dict[str, Any]:
    return {"messages": [*ask(), call, *after], "tools": [WEATHER]}


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"tools": {"type": "function"}}, "tools", "invalid_type"),
        ({"tools": [{"function": {"name": "f"}}]}, "tools[0].type", "missing_required"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", None),
        (
            {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
            "tools[0].function.name",
            "invalid_value",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "x": 1}}]},
            "tools[0].function.x",
            "unknown_parameter",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
                ]
            },
            "tools[0].function.parameters",
            "invalid_value",
        ),
        ({"tools": [WEATHER, WEATHER]}, "tools", "invalid_value"),
        ({"tools": [WEATHER] * 129}, "tools", "invalid_value"),
        ({"tools": [{"type": "custom", "custom": {}}]}, "tools[0].type", "unsupported_parameter"),
        ({"tools": [WEATHER], "tool_choice": "any"}, "tool_choice", "invalid_value"),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "g"}}},
            "tool_choice.function.name",
            "invalid_value",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "allowed_tools"}},
            "tool_choice.type",
            "unsupported_parameter",
        ),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_type"),
        ({"response_format": "json"}, "response_format", "invalid_type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", None),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
            "missing_required",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "array"}},
                }
            },
            "response_format.json_schema.schema",
            "invalid_value",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object", "minProperties": -1}},
                }
            },
            "response_format.json_schema.schema",
            "invalid_value",
        ),
        (
            {"response_format": {"type": "json_object", "schema": {}}},
            "response_format.schema",
            "unknown_parameter",
        ),
        (with_call(), "messages[1].tool_calls", "invalid_value"),  # never answered
        (with_call(*ask()), "messages[1].tool_calls", "invalid_value"),
        (
            with_call({"role": "tool", "tool_call_id": "c2", "content": "x"}),
            "messages[2].tool_call_id",
            "invalid_value",
        ),
        (
            with_call(
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
            ),
            "messages[3].tool_call_id",
            "invalid_value",
        ),
        (
            with_call({"role": "tool", "content": "x"}),
            "messages[2].tool_call_id",
            "missing_required",
        ),
        (
            with_call({"role": "tool", "tool_call_id": "c1"}),
            "messages[2].content",
            None,
        ),
        (
            with_call(
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
                call={
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        }
                    ],
                },
            ),
            "messages[1].tool_calls[0].function.arguments",
            "invalid_value",
        ),
        (
            with_call(
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
                call={
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
                },
            ),
            "messages[1].tool_calls[0].function.arguments",
            "missing_required",
        ),
        (
            {"messages": [*ask(), {"role": "assistant", "tool_calls": "c1"}]},
            "messages[1].tool_calls",
            "invalid_type",
        ),
        (
            {"messages": [{"role": "user", "content": "x", "tool_calls": []}]},
            "messages[0].tool_calls",
            "unknown_parameter",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            },
            "messages[0].content[0].image_url.url",
            "invalid_value",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:text/plain;base64,eA=="},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "invalid_value",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
            "missing_required",
        ),
        (
            {
                "messages": [
                    *ask(),
                    {"role": "assistant", "content": [{"type": "image_url", "image_url": {}}]},
                ]
            },
            "messages[1].content[0].type",
            "unsupported_parameter",
        ),
    ],
)
def test_a_malformed_tool_or_format_request_is_a_400_naming_it(
    fields: dict[str, Any], param: str, code: str | None
) -> None:
    error = refused(**fields)
    assert error.param == param
    if code is not None:
        assert error.code == code


def test_what_no_provider_is_sent_is_named_in_the_ignored_params(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    response = app_client().post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": ask(), "tools": [strict]},
    )
    assert response.status_code == 200
    assert response.headers["x-orkestra-ignored-params"] == "tools.function.strict"
    body = response.json()
    assert body["orkestra"]["ignored_params"] == ["tools.function.strict"]
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert "strict" not in json.dumps(fake.requests[-1].body["tools"])


def test_a_streamed_answer_of_only_tool_calls_has_openais_event_shapes(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    fake.queue(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    response = app_client().post(
        "/v1/chat/completions",
        json={
            "model": "gemini-3-flash-preview",
            "messages": ask(),
            "tools": [WEATHER],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    role, call, finish, usage = events[:-1]
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": None}
    (part,) = call["choices"][0]["delta"]["tool_calls"]
    assert set(part) == {"index", "id", "type", "function"}
    assert part["index"] == 0 and part["type"] == "function"
    assert part["function"]["name"] == "get_weather"
    assert json.loads(part["function"]["arguments"]) == {"city": "Paris"}
    assert "~" in part["id"]  # Gemini 3's thought signature rides along
    assert call["choices"][0]["finish_reason"] is None
    assert finish["choices"][0]["finish_reason"] == "tool_calls"  # Gemini said STOP
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0


@pytest.mark.slow
def test_prompt_cache_key_keeps_a_conversation_on_its_model(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    turns: list[Any] = [{"role": "system", "content": "You are a careful travel agent. " * 160}]

    def say(text: str) -> tuple[str, Any]:
        turns.extend(ask(text))
        raw = client.chat.completions.with_raw_response.create(
            model="orkestra/openai", messages=turns, prompt_cache_key="conv-1"
        )
        completion = raw.parse()
        turns.append({"role": "assistant", "content": completion.choices[0].message.content})
        assert upstream.requests[-1].body["prompt_cache_key"] == "conv-1"
        return raw.headers["x-orkestra-tier"], completion.usage

    assert say("What is the capital of Japan?")[0] == "budget"
    tier, usage = say("What is the capital of France?")
    assert tier == "budget"
    assert usage.prompt_tokens_details.cached_tokens > 0  # same model: the cache is warm
    escalated = say("Explain how a hash table handles collisions")[0]
    assert escalated in ("balanced", "premium")
    assert say("Thanks! And which city is the capital of Italy?")[0] == escalated  # never down


def test_prompt_cache_key_becomes_the_session() -> None:
    params = parse_chat_request(
        {"model": "orkestra/openai", "messages": ask(), "prompt_cache_key": "abc"}
    )
    assert params.options()["session_id"] == "abc"
    with pytest.raises(ProxyError, match="prompt_cache_key"):
        parse_chat_request({"model": "orkestra/openai", "messages": ask(), "prompt_cache_key": 3})
