"""``POST /v1/responses`` with the real ``openai`` client (``responses.create``, ``.stream``,
async), LangChain's ``use_responses_api`` and openai-agents, against a real ``python -m
orkestra.server`` process; and the wire's details in process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import agents
import langchain_openai
import openai
import pydantic
import pytest
from proxy_helpers import CLIENT_KEY, AppClient, LiveServer, is_openai_error

from orkestra.testing import FakeProviderServer, Reply

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


class City(pydantic.BaseModel):
    name: str
    country: str


@pytest.fixture
def client(live: LiveServer, upstream: FakeProviderServer) -> Iterator[openai.OpenAI]:
    upstream.clear()
    with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


@pytest.mark.slow
def test_responses_create_answers_text_with_usage(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    raw = client.responses.with_raw_response.create(
        model="orkestra-auto", instructions="Be brief.", input="What is the capital of Japan?"
    )
    response = raw.parse()
    assert response.status == "completed" and response.object == "response"
    assert response.output_text.startswith(f"[{response.model}]")
    assert response.model == upstream.requests[-1].model
    assert response.usage is not None and response.usage.total_tokens > 0
    assert raw.headers["x-orkestra-provider"] == upstream.requests[-1].provider
    sent = upstream.requests[-1].body
    system = sent.get("system") or sent.get("systemInstruction") or sent.get("messages")
    assert "Be brief." in json.dumps(system)


@pytest.mark.slow
def test_responses_stream_events_and_final_response(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    for model in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-3.5-flash"):
        with client.responses.stream(model=model, input="What is the capital of Japan?") as stream:
            kinds = []
            text = []
            for event in stream:
                kinds.append(event.type)
                if event.type == "response.output_text.delta":
                    text.append(event.delta)
            final = stream.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed", model
        assert "".join(text) == final.output_text
        assert final.output_text.startswith(f"[{model}]")
        assert final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.slow
def test_function_calls_round_trip(client: openai.OpenAI, upstream: FakeProviderServer) -> None:
    for model in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-3.5-flash"):
        first = client.responses.create(
            model=model,
            input="Weather in Paris?",
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="required",
        )
        call = next(item for item in first.output if item.type == "function_call")
        assert call.name == "get_weather" and "city" in json.loads(call.arguments), model
        second = client.responses.create(
            model=model,
            tools=[WEATHER],  # type: ignore[list-item]
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                *[item.model_dump(exclude_none=True) for item in first.output],  # type: ignore[list-item]
                {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"},
            ],
        )
        assert "Sunny" in second.output_text, model


@pytest.mark.slow
def test_structured_output_parses(client: openai.OpenAI, upstream: FakeProviderServer) -> None:
    for model in ("gpt-4o-mini", "claude-haiku-4-5"):
        parsed = client.responses.parse(
            model=model, input="The capital of Japan?", text_format=City
        )
        assert isinstance(parsed.output_parsed, City), model


@pytest.mark.slow
def test_async_client_streams(live: LiveServer, upstream: FakeProviderServer) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0
        ) as client:
            stream = await client.responses.create(
                model="orkestra-cheapest", input="What is the capital of Japan?", stream=True
            )
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            return "".join(deltas)

    assert asyncio.run(run()).startswith("[")


@pytest.mark.slow
def test_langchain_use_responses_api(live: LiveServer, upstream: FakeProviderServer) -> None:
    upstream.clear()
    llm = langchain_openai.ChatOpenAI(
        model="orkestra-auto",
        base_url=live.base_url,
        api_key=CLIENT_KEY,
        use_responses_api=True,
        max_retries=0,
    )
    message = llm.invoke("What is the capital of Japan?")
    assert message.text.startswith("[")
    city = llm.with_structured_output(City).invoke("The capital of Japan?")
    assert isinstance(city, City)
    chunks = list(llm.stream("What is the capital of Japan?"))
    assert "".join(c.text for c in chunks).startswith("[")


@pytest.mark.slow
def test_openai_agents_runs_on_the_proxy(live: LiveServer, upstream: FakeProviderServer) -> None:
    """openai-agents as its docs set it up for another endpoint: a default client and a model
    name, so its default model class (OpenAIResponsesModel) speaks the Responses API."""
    upstream.clear()

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0)
        agents.set_default_openai_client(client, use_for_tracing=False)
        agent = agents.Agent(
            name="weather",
            instructions="Use the tool.",
            model="orkestra-openai",
            tools=[get_weather],
        )
        try:
            return await agents.Runner.run(agent, "Weather in Paris?")
        finally:
            agents.set_default_openai_client(None, use_for_tracing=False)  # type: ignore[arg-type]
            await client.close()

    agents.set_tracing_disabled(True)
    result = asyncio.run(run())
    # The fake calls the tool first, then answers with its result.
    assert "Sunny in" in result.final_output
    kinds = [type(item).__name__ for item in result.new_items]
    assert "ToolCallItem" in kinds and "ToolCallOutputItem" in kinds
    # Both turns went through /v1/responses (a Chat Completions model would have no ids).
    assert [r.response_id[:5] for r in result.raw_responses] == ["resp_", "resp_"]
    assert {r.provider for r in upstream.requests} == {"openai"}


# -- in process: the wire's details --------------------------------------------------------


def test_stream_framing_is_event_and_data_with_sequence_numbers(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    response = app_client().post(
        "/v1/responses", json={"model": "gpt-4o-mini", "input": "Hi", "stream": True}
    )
    assert response.status_code == 200
    blocks = [b for b in response.text.split("\n\n") if b]
    numbers = []
    for block in blocks:
        event, data = block.split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert payload["type"] == event.removeprefix("event: ")
        numbers.append(payload["sequence_number"])
    assert numbers == list(range(len(blocks)))
    assert "[DONE]" not in response.text


def test_a_cut_answer_is_incomplete(app_client: AppClient, fake: FakeProviderServer) -> None:
    fake.queue(Reply(text="word " * 50))
    response = app_client().post(
        "/v1/responses", json={"model": "gpt-4o-mini", "input": "Hi", "max_output_tokens": 16}
    )
    body = response.json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"model": "gpt-4o-mini", "input": "x", "previous_response_id": "resp_1"},
            "previous_response_id",
        ),
        (
            {"model": "gpt-4o-mini", "input": "x", "tools": [{"type": "web_search"}]},
            "tools[0].type",
        ),
        ({"model": "gpt-4o-mini"}, "input"),
        (
            {"model": "gpt-4o-mini", "input": "x", "reasoning": {"effort": "max"}},
            "reasoning.effort",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "input": [{"type": "function_call_output", "call_id": "c1", "output": "x"}],
            },
            "input[0].call_id",
        ),
        ({"model": "gpt-4o-mini", "input": "x", "frobnicate": 1}, "frobnicate"),
    ],
)
def test_what_cannot_be_served_is_a_400_naming_it(
    app_client: AppClient, fake: FakeProviderServer, body: dict[str, Any], param: str
) -> None:
    response = app_client().post("/v1/responses", json=body)
    assert response.status_code == 400 and is_openai_error(response)
    assert response.json()["error"]["param"] == param
    assert fake.requests == []
