"""Client libraries people point at the proxy, for real, against a real ``python -m
orkestra.server`` process (upstream the fake providers): LangChain's ``ChatOpenAI``, and the
``openai`` client sending what LlamaIndex and instructor send (``parallel_tool_calls: false``
with a forced or automatic tool choice), provider by provider.

LangChain is a dev dependency (imported, not skipped when missing). LlamaIndex and instructor
themselves need ``openai<3``: they run in test_client_libraries_openai2.py, in a venv of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import langchain_openai
import openai
import pydantic
import pytest
from proxy_helpers import CLIENT_KEY, LiveServer

from orkestra.testing import FakeProviderServer

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
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


def chat_model(live: LiveServer, model: str = "orkestra-auto", **kwargs: object) -> object:
    return langchain_openai.ChatOpenAI(
        model=model, base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0, **kwargs
    )


def test_langchain_invoke_and_stream(live: LiveServer, upstream: FakeProviderServer) -> None:
    upstream.clear()
    llm = chat_model(live)
    message = llm.invoke("What is the capital of Japan?")  # type: ignore[attr-defined]
    assert message.content.startswith("[")
    assert message.response_metadata["model_name"] == upstream.requests[-1].model
    chunks = list(llm.stream("What is the capital of Japan?"))  # type: ignore[attr-defined]
    assert "".join(c.content for c in chunks).startswith("[")


def test_langchain_structured_output_by_function_calling(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    """``with_structured_output(method="function_calling")`` forces one tool and sends
    ``parallel_tool_calls: false``, once refused with a 400."""
    upstream.clear()
    llm = chat_model(live, "orkestra-openai")
    city = llm.with_structured_output(City, method="function_calling").invoke(  # type: ignore[attr-defined]
        "Which city is the capital of Japan?"
    )
    assert isinstance(city, City)
    sent = upstream.requests[-1].body
    assert sent["parallel_tool_calls"] is False
    assert sent["tool_choice"]["function"]["name"] == "City"


def test_langchain_structured_output_on_every_provider(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    for model in ("claude-haiku-4-5", "gemini-3.5-flash"):
        upstream.clear()
        llm = chat_model(live, model)
        city = llm.with_structured_output(City, method="function_calling").invoke(  # type: ignore[attr-defined]
            "Which city is the capital of Japan?"
        )
        assert isinstance(city, City), model


def test_langchain_sampling_parameters_pass_through(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.clear()
    llm = chat_model(live, "gpt-4o-mini", top_p=0.5, seed=3, stop=["END"])
    llm.invoke("Say something")  # type: ignore[attr-defined]
    sent = upstream.requests[-1].body
    assert (sent["top_p"], sent["seed"], sent["stop"]) == (0.5, 3, ["END"])


@pytest.mark.parametrize(
    "choice", ["auto", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_one_tool_call_at_most_as_llamaindex_and_instructor_ask(
    client: openai.OpenAI, upstream: FakeProviderServer, choice: object
) -> None:
    """LlamaIndex's ``predict_and_call`` (tool_choice auto) and instructor's TOOLS mode (a forced
    function) send ``parallel_tool_calls: false``: OpenAI gets it as it is, Anthropic as
    ``disable_parallel_tool_use``, Gemini (no such switch) without it, said in a header."""
    for model, seen in (
        ("gpt-4o-mini", ("parallel_tool_calls", False)),
        ("claude-haiku-4-5", ("tool_choice", "disable_parallel_tool_use")),
    ):
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice=choice,  # type: ignore[arg-type]
            parallel_tool_calls=False,
        )
        completion = raw.parse()
        assert completion.choices[0].message.tool_calls, model
        assert "x-orkestra-ignored-params" not in raw.headers
        sent = upstream.requests[-1].body
        key, value = seen
        assert sent[key] is False if value is False else sent[key][value] is True
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-3.5-flash",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice=choice,  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )
    assert raw.parse().choices[0].message.tool_calls
    assert raw.headers["x-orkestra-ignored-params"] == "parallel_tool_calls"


def test_the_openai_client_names_a_routed_model_without_a_slash(
    client: openai.OpenAI, upstream: FakeProviderServer
) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"orkestra-auto", "orkestra/auto"} <= ids
    completion = client.chat.completions.create(
        model="orkestra-auto", messages=[{"role": "user", "content": "Hi"}], seed=1, top_p=0.9
    )
    assert completion.model == upstream.requests[-1].model
