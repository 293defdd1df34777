"""The openai adapter posts the body it builds with the SDK's ``post`` (skipping
``chat.completions.create``'s walk of the arguments, which costs CPU and changes nothing for
Chat Completions). These tests hold that "changes nothing" to the installed SDK: every request
the adapter sends, sync or async, streamed or not, reaches the fake exactly as ``create`` with
the same arguments sends it (body, path, query and headers), and answers the same; and a
whole answer, read as its JSON object rather than as the SDK's ChatCompletion, gives the same
result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import openai
import pytest
from samples import PLACE_SCHEMA, RICH_TURNS, TIME, WEATHER

from orkestra._request import ModelParams
from orkestra._types import ToolCall
from orkestra.catalog import ModelInfo, default_catalog
from orkestra.errors import MalformedResponseError
from orkestra.providers import make_adapter
from orkestra.providers.base import (
    Adapter,
    ChatRequest,
    ClientSettings,
    Finished,
    ForcedTool,
    Message,
    ResponseFormat,
)
from orkestra.providers.openai import build_params, parse_completion
from orkestra.testing import FakeProviderServer, RecordedRequest

MODEL: ModelInfo = default_catalog().tier_model("openai", "budget")
REASONING: ModelInfo = next(m for m in default_catalog().provider_models("openai") if m.reasoning)
# Headers that differ from one request to the next whoever sends it.
VOLATILE = frozenset({"content-length", "x-stainless-retry-count", "x-stainless-read-timeout"})

RICH = ChatRequest(
    MODEL,
    RICH_TURNS,
    300,
    0.2,
    tools=(WEATHER, TIME),
    tool_choice=ForcedTool("get_time"),
    session="conv-7",
    params=ModelParams(
        stop=("END",),
        top_p=0.9,
        seed=7,
        parallel_tool_calls=False,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"50256": -100.0},
    ),
)
REQUESTS = {
    "rich": RICH,
    "structured": ChatRequest(
        MODEL,
        (Message("user", "Where and when?"),),
        100,
        None,
        response_format=ResponseFormat("place", PLACE_SCHEMA, strict=True),
    ),
    "json mode": ChatRequest(
        MODEL, (Message("user", "A colour."),), 50, 1.0, response_format=ResponseFormat()
    ),
    "reasoning": ChatRequest(
        REASONING,
        (Message("user", "Think about it."),),
        500,
        None,
        params=ModelParams(reasoning_effort="low"),
    ),
}


@pytest.fixture
def adapter(fake: FakeProviderServer) -> Iterator[Adapter]:
    made = make_adapter("openai", ClientSettings(fake.api_key, fake.openai_base_url))
    yield made
    made.close()


def _seen(request: RecordedRequest) -> tuple[Any, ...]:
    headers = {k: v for k, v in request.headers.items() if k not in VOLATILE}
    return (request.method, request.path, request.query, headers, request.body, request.stream)


def _by_create(fake: FakeProviderServer, request: ChatRequest, *, stream: bool) -> Any:
    """What ``create`` sends and answers for ``request`` (a client made as the adapter makes
    its own)."""
    params = build_params(request, ClientSettings(fake.api_key, fake.openai_base_url))
    with openai.OpenAI(api_key=fake.api_key, base_url=fake.openai_base_url) as client:
        if not stream:
            return client.chat.completions.create(**params)
        chunks = client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        with chunks:
            return [chunk.to_dict() for chunk in chunks]


async def _by_acreate(fake: FakeProviderServer, request: ChatRequest, *, stream: bool) -> None:
    """The same with the async client (whose headers say so)."""
    params = build_params(request, ClientSettings(fake.api_key, fake.openai_base_url))
    async with openai.AsyncOpenAI(api_key=fake.api_key, base_url=fake.openai_base_url) as client:
        if not stream:
            await client.chat.completions.create(**params)
            return
        chunks = await client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        async with chunks:
            async for _ in chunks:
                pass


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_call_sends_what_create_sends(
    fake: FakeProviderServer, adapter: Adapter, name: str
) -> None:
    request = REQUESTS[name]
    text, finished = adapter.complete(request)
    completion = _by_create(fake, request, stream=False)
    assert _seen(fake.requests[0]) == _seen(fake.requests[1])
    choice = completion.choices[0]
    assert text == (choice.message.content or "")
    assert finished.finish_reason == choice.finish_reason
    assert finished.usage.output_tokens == completion.usage.completion_tokens
    assert len(finished.tool_calls) == len(choice.message.tool_calls or [])

    asyncio.run(adapter.acomplete(request))
    asyncio.run(_by_acreate(fake, request, stream=False))
    assert _seen(fake.requests[2]) == _seen(fake.requests[3])
    assert fake.requests[2].body == fake.requests[0].body


@pytest.mark.parametrize("name", list(REQUESTS))
def test_a_stream_sends_what_create_sends(
    fake: FakeProviderServer, adapter: Adapter, name: str
) -> None:
    request = REQUESTS[name]
    events = list(adapter.stream(request))
    chunks = _by_create(fake, request, stream=True)
    assert fake.requests[0].stream
    assert _seen(fake.requests[0]) == _seen(fake.requests[1])
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.usage.output_tokens == chunks[-1]["usage"]["completion_tokens"]

    async def read() -> list[Any]:
        return [event async for event in adapter.astream(request)]

    assert replace(asyncio.run(read())[-1], response_id=finished.response_id) == finished
    asyncio.run(_by_acreate(fake, request, stream=True))
    assert _seen(fake.requests[2]) == _seen(fake.requests[3])
    assert fake.requests[2].body == fake.requests[0].body


def test_the_api_key_goes_as_a_bearer_token_only(
    fake: FakeProviderServer, adapter: Adapter
) -> None:
    adapter.complete(REQUESTS["rich"])
    headers = fake.requests[0].headers
    assert headers["authorization"] == f"Bearer {fake.api_key}"
    assert not any("admin" in name for name in headers)


ANSWER: dict[str, Any] = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 12},
    },
}


@pytest.mark.parametrize("shape", ["json object", "json text"])
def test_a_whole_answer_is_read_from_its_json(shape: str) -> None:
    """``post`` hands back the JSON object (or, sent as another content type, its text)."""
    answer = ANSWER if shape == "json object" else json.dumps(ANSWER)
    text, finished = parse_completion(answer, "gpt-4o")
    assert text == ""
    assert finished.tool_calls == (ToolCall("call_9", "get_time", "{}"),)
    assert finished.stop_reason == "tool_calls" and finished.finish_reason == "tool_calls"
    assert (finished.response_id, finished.model_version) == ("chatcmpl-9", ANSWER["model"])
    usage = finished.usage
    assert (usage.input_tokens, usage.output_tokens) == (1200, 40)
    assert (usage.cache_read_tokens, usage.reasoning_tokens, usage.cache_write_tokens) == (
        1024,
        12,
        0,
    )


def test_an_answer_without_usage_or_content_is_empty() -> None:
    choice = {"index": 0, "message": {"role": "assistant", "content": None}}
    text, finished = parse_completion({"id": "x", "model": "m", "choices": [choice]}, "m")
    assert text == "" and finished.tool_calls == () and finished.usage.input_tokens == 0


@pytest.mark.parametrize(
    "body", [{"id": "x", "choices": []}, {}, {"choices": 3}, {"choices": [[]]}, [], "[1]"]
)
def test_an_answer_without_a_choice_is_malformed(body: object) -> None:
    """Not an empty answer: nothing says the model answered at all."""
    with pytest.raises(MalformedResponseError, match="openai/m: got 200 OK without an answer"):
        parse_completion(body, "m")
