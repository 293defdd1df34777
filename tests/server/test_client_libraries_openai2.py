"""LlamaIndex and instructor, for real, against a real ``python -m orkestra.server`` process
(upstream the fake providers).

Both need an ``openai`` older than the one dev installs (llama-index-llms-openai: ``openai<3``;
instructor: ``jiter<0.15``), so they live in the ``clients-openai2`` extra, which CI installs in a
venv of its own (``.venv-clients``) and runs this file there with
``ORKESTRA_REQUIRE_CLIENT_LIBRARIES=1``: there a missing library fails the run. In the dev venv
the module is skipped, saying where it runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from proxy_helpers import CLIENT_KEY, LiveServer

from orkestra.testing import FakeProviderServer

try:
    import httpx  # openai<3's HTTP client
    import instructor
    from llama_index.core.tools import FunctionTool
    from llama_index.llms.openai import OpenAI as LlamaOpenAI
    from llama_index.llms.openai_like import OpenAILike
except ImportError:
    if os.environ.get("ORKESTRA_REQUIRE_CLIENT_LIBRARIES") == "1":
        raise
    pytest.skip(
        "LlamaIndex and instructor need openai<3: .ci/run runs this file in .venv-clients "
        '(pip install -e ".[server,clients-openai2]")',
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow


class City(pydantic.BaseModel):
    name: str
    country: str


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@pytest.fixture
def sdk(live: LiveServer, upstream: FakeProviderServer) -> Iterator[openai.OpenAI]:
    upstream.clear()
    with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


def llama_like(live: LiveServer, model: str, **kwargs: Any) -> Any:
    """LlamaIndex's class for OpenAI-compatible servers: any model name, routed ones included."""
    return OpenAILike(
        model=model,
        api_base=live.base_url,
        api_key=CLIENT_KEY,
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=128_000,
        max_retries=0,
        **kwargs,
    )


def test_llamaindex_predict_and_call_runs_the_tool(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    """``predict_and_call`` sends the tool with ``parallel_tool_calls: false`` and runs the one
    call it gets back: on a routed name (OpenAILike) and on OpenAI's own class."""
    tool = FunctionTool.from_defaults(fn=get_weather)
    for llm in (
        llama_like(live, "orkestra-auto"),
        llama_like(live, "claude-haiku-4-5"),
        llama_like(live, "gemini-3.5-flash"),
        LlamaOpenAI(model="gpt-4o-mini", api_base=live.base_url, api_key=CLIENT_KEY, max_retries=0),
    ):
        upstream.clear()
        response = llm.predict_and_call([tool], user_msg="What is the weather in Paris?")
        assert response.response.startswith("Sunny in"), llm.model
        assert [s.tool_name for s in response.sources] == ["get_weather"]
        assert len(upstream.requests) == 1
        sent = upstream.requests[0]
        if sent.provider == "openai":
            assert sent.body["parallel_tool_calls"] is False
        elif sent.provider == "anthropic":
            assert sent.body["tool_choice"]["disable_parallel_tool_use"] is True


def test_llamaindex_chat_and_stream(live: LiveServer, upstream: FakeProviderServer) -> None:
    from llama_index.core.llms import ChatMessage

    upstream.clear()
    llm = llama_like(live, "orkestra-auto")
    answer = llm.chat([ChatMessage(role="user", content="What is the capital of Japan?")])
    assert answer.message.content.startswith(f"[{upstream.requests[-1].model}]")
    streamed = "".join(d.delta or "" for d in llm.stream_complete("What is the capital of Japan?"))
    assert streamed.startswith("[")

    async def achat() -> str:
        # Our own HTTP client, closed here: LlamaIndex keeps its async client open.
        async with httpx.AsyncClient() as http:
            allm = llama_like(live, "orkestra-auto", async_http_client=http)
            reply = await allm.achat([ChatMessage(role="user", content="Hi")])
        return str(reply.message.content)

    assert asyncio.run(achat()).startswith("[")


@pytest.mark.parametrize("model", ["orkestra-auto", "claude-haiku-4-5", "gemini-3.5-flash"])
def test_instructor_tools_mode_returns_the_model(
    sdk: openai.OpenAI, upstream: FakeProviderServer, model: str
) -> None:
    """instructor's default (TOOLS) forces one function and sends ``parallel_tool_calls``
    only where it is off; every provider answers with arguments that validate."""
    client = instructor.from_openai(sdk)
    city = client.chat.completions.create(
        model=model,
        response_model=City,
        max_retries=0,
        messages=[{"role": "user", "content": "Which city is the capital of Japan?"}],
    )
    assert isinstance(city, City)
    sent = upstream.requests[-1].body
    assert "City" in str(sent.get("tool_choice") or sent.get("toolConfig"))


def test_instructor_json_schema_mode_and_async(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.clear()
    client = instructor.from_openai(
        openai.AsyncOpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0),
        mode=instructor.Mode.JSON_SCHEMA,
    )

    async def run() -> City:
        try:
            return await client.chat.completions.create(
                model="gpt-4o-mini",
                response_model=City,
                max_retries=0,
                messages=[{"role": "user", "content": "Which city is the capital of Japan?"}],
            )
        finally:
            await client.client.close()

    assert isinstance(asyncio.run(run()), City)
    assert upstream.requests[-1].body["response_format"]["type"] == "json_schema"
