"""Tools, structured output, capability filtering and sticky sessions through Provider and
MultiProvider, against the fake server with the real SDKs."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

import pydantic
import pytest
from samples import WEATHER_TOOL as WEATHER

import orkestra as o
from orkestra.catalog import Catalog
from orkestra.testing import FakeProviderServer, Fault, Reply

PROVIDERS = ("openai", "anthropic", "google")
EASY = "What is the capital of Japan?"
HARD = "Explain how a hash table handles collisions"
LONG_SYSTEM = "You are a meticulous assistant for a travel agency. " * 100  # ~1,300 fake tokens


def _catalog(edit: Any) -> Catalog:
    """The bundled catalog with ``edit(model_entry)`` applied to every model entry."""
    text = resources.files("orkestra.catalog").joinpath("models.json").read_text("utf-8")
    data = json.loads(text)
    for entry in data["models"]:
        edit(entry)
    return Catalog.from_dict(data)


def _without(capability: str, *model_ids: str) -> Catalog:
    def edit(entry: dict[str, Any]) -> None:
        if not model_ids or entry["id"] in model_ids:
            entry["capabilities"] = [c for c in entry["capabilities"] if c != capability]

    return _catalog(edit)


# -- tools ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_tool_call_round_trip(fake: FakeProviderServer, name: str) -> None:
    provider = o.Provider(name, fake.api_key)
    messages: list[Any] = [{"role": "user", "content": "What's the weather in Paris right now?"}]
    first = provider.chat(messages=messages, tools=[WEATHER])
    assert [c.name for c in first.tool_calls] == ["get_weather"]
    call = first.tool_calls[0]
    assert call.args["city"]
    assert first.cost > 0

    messages += [
        first.message(),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees, light rain"},
    ]
    second = provider.chat(messages=messages, tools=[WEATHER])
    assert second.tool_calls == ()
    assert "18 degrees, light rain" in second.text


@pytest.mark.parametrize("name", PROVIDERS)
def test_streamed_tool_calls_arrive_on_the_response(fake: FakeProviderServer, name: str) -> None:
    fake.queue(Reply(tool_calls=[("get_weather", {"city": "Oslo", "unit": "C"})]), provider=name)
    stream = o.Provider(name, fake.api_key).stream(
        "Weather in Oslo?", tools=[WEATHER], tool_choice="required"
    )
    assert "".join(stream) == ""
    assert stream.response is not None
    assert [(c.name, c.args) for c in stream.response.tool_calls] == [
        ("get_weather", {"city": "Oslo", "unit": "C"})
    ]


def test_tool_arguments_are_checked_before_the_network(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"tools": [{"type": "web_search"}]}, "only function tools"),
        ({"tools": [{"name": "has space"}]}, "letters, digits"),
        ({"tools": [WEATHER, WEATHER]}, "same name"),
        ({"tools": [WEATHER], "tool_choice": {"function": {"name": "nope"}}}, "not in tools"),
        ({"tool_choice": "required"}, "needs tools"),
        ({"response_format": {"type": "object", "properties": 3}}, "JSON Schema"),
        ({"response_format": "json"}, "pydantic model class"),
    ]
    for kwargs, match in bad:
        with pytest.raises(o.InvalidRequestError, match=match):
            provider.chat(EASY, **kwargs)
    assert fake.requests == []


# -- structured output ------------------------------------------------------------------------


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_pydantic_model_comes_back_parsed(fake: FakeProviderServer, name: str) -> None:
    response = o.Provider(name, fake.api_key).chat(EASY, response_format=City)
    assert isinstance(response.parsed, City)
    assert response.parsed == City.model_validate_json(response.text)


def test_a_json_schema_answer_is_validated(fake: FakeProviderServer) -> None:
    schema = City.model_json_schema()
    provider = o.Provider("anthropic", fake.api_key)
    ok = provider.chat(EASY, response_format=schema)
    assert ok.parsed == json.loads(ok.text)

    fake.queue(Reply('{"name": "Tokyo", "country": "Japan"}'), provider="anthropic")
    with pytest.raises(o.StructuredOutputError, match="population") as caught:
        provider.chat(EASY, response_format=schema)
    assert caught.value.response is not None and caught.value.response.cost > 0

    fake.queue(Reply("Tokyo, Japan"), provider="anthropic")
    with pytest.raises(o.StructuredOutputError, match="not valid JSON"):
        provider.chat(EASY, response_format={"type": "json_object"})


# -- capability filter ------------------------------------------------------------------------


def test_routing_skips_tiers_without_the_capability(fake: FakeProviderServer) -> None:
    plain = o.Provider("openai", fake.api_key)
    assert plain.route(EASY, tools=[WEATHER]).tier == "budget"
    catalog = _without("tools", "gpt-4o-mini")
    provider = o.Provider("openai", fake.api_key, catalog=catalog)
    decision = provider.route(EASY, tools=[WEATHER])
    assert decision.tier != "budget"
    assert {c.tier for c in decision.candidates} == {"balanced", "premium"}
    response = provider.chat(EASY, tools=[WEATHER])
    assert response.model != "gpt-4o-mini"
    assert provider.route(EASY).tier == "budget"  # without tools the budget tier is fine


def test_no_capable_model_is_a_clear_error_before_the_network(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, catalog=_without("json"))
    with pytest.raises(o.CapabilityError, match="json") as caught:
        provider.chat(EASY, response_format=City)
    assert "json" in caught.value.needs
    with pytest.raises(o.CapabilityError):
        provider.chat(EASY, response_format=City, model="gpt-4.1-mini")
    assert fake.requests == []


def test_images_go_only_to_vision_models(fake: FakeProviderServer) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": EASY}, image]}]
    catalog = _without("vision", "gpt-4o-mini", "gpt-4.1-mini")
    provider = o.Provider("openai", fake.api_key, catalog=catalog)
    assert provider.route(messages=messages).model == "o3"


def test_a_long_prompt_skips_models_with_a_short_context(fake: FakeProviderServer) -> None:
    def shrink(entry: dict[str, Any]) -> None:
        if entry["id"] == "gpt-4o-mini":
            entry["context_window"] = 2_000

    provider = o.Provider("openai", fake.api_key, catalog=_catalog(shrink))
    long_prompt = EASY + " Context: " + "lorem ipsum dolor " * 800  # ~3,600 tokens
    assert provider.route(EASY).tier == "budget"
    assert provider.route(long_prompt, quality=0.0).model != "gpt-4o-mini"


def test_multi_provider_routes_around_a_provider_without_the_capability(
    fake: FakeProviderServer,
) -> None:
    no_tools = o.Provider("google", fake.api_key, catalog=_without("tools"))
    multi = o.MultiProvider([no_tools, o.Provider("anthropic", fake.api_key)])
    response = multi.chat(EASY, tools=[WEATHER])
    assert response.provider == "anthropic"
    assert all(a.provider == "anthropic" for a in response.attempts)
    alone = o.MultiProvider([no_tools])
    with pytest.raises(o.CapabilityError):
        alone.chat(EASY, tools=[WEATHER])


# -- sticky sessions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_conversation_stays_on_its_model_and_the_cache_pays(
    fake: FakeProviderServer, name: str
) -> None:
    chat = o.Conversation(o.Provider(name, fake.api_key), system=LONG_SYSTEM)
    first = chat.chat(EASY, quality=0.0)
    assert first.tier == "budget"
    second = chat.chat("And the capital of France, please?", quality=0.0)
    assert second.model == first.model
    assert second.usage.cache_read_tokens > 0
    assert second.cache_savings > 0
    assert len(chat.messages) == 5  # system, two user turns, two answers

    escalated = chat.chat(HARD, quality=1.0)
    assert escalated.tier == "premium"
    assert "escalated" in escalated.routing.reason
    after = chat.chat("Thanks! What is the capital of Italy?", quality=0.0)
    assert after.model == escalated.model  # never silently moved back down
    assert "sticky session" in after.routing.reason
    assert chat.cache_savings > 0


def test_session_id_keeps_a_multi_provider_on_one_provider(fake: FakeProviderServer) -> None:
    multi = o.MultiProvider(
        [o.Provider("google", fake.api_key), o.Provider("openai", fake.api_key)],
        strategy="cheapest",
    )
    first = multi.chat(EASY, session_id="s-1", quality=0.0)
    later = multi.chat(HARD, session_id="s-1", quality=0.0)
    assert (later.provider, later.model) == (first.provider, first.model)
    other = multi.chat(HARD, session_id="s-2", quality=1.0)
    assert other.tier == "premium"


def test_a_failed_turn_leaves_the_history_unchanged(fake: FakeProviderServer) -> None:
    chat = o.Conversation(o.Provider("openai", fake.api_key, max_retries=0), system="Brief.")
    chat.chat(EASY)
    before = chat.messages
    fake.queue(Fault.status(400), provider="openai")
    with pytest.raises(o.BadRequestError):
        chat.chat("And France?")
    assert chat.messages == before
    with pytest.raises(o.InvalidRequestError, match="nothing to answer"):
        chat.chat()


def test_conversation_tool_results(fake: FakeProviderServer) -> None:
    chat = o.Conversation(o.Provider("google", fake.api_key), tools=[WEATHER])
    asked = chat.chat("What's the weather in Paris right now?")
    assert asked.tool_calls
    for call in asked.tool_calls:
        chat.add_tool_result(call.id, {"celsius": 18, "sky": "rain"})
    answered = chat.chat()
    assert "celsius" in answered.text
    assert answered.model == asked.model


# -- an OpenAI-compatible server in the pool --------------------------------------------------


def test_a_local_openai_compatible_server_joins_the_pool(fake: FakeProviderServer) -> None:
    local = o.Provider("ollama", base_url=fake.compat_base_url)
    assert "not needed" in repr(local)
    cloud = o.Provider("openai", fake.api_key)
    multi = o.MultiProvider([cloud, local], strategy="cheapest")
    response = multi.chat(EASY)
    assert (response.provider, response.cost) == ("ollama", 0.0)
    assert response.model == "llama3.2:3b"
    assert fake.requests[-1].path.startswith("/compat/v1/")
    assert "prompt_cache_key" not in fake.requests[-1].body

    # tools: the local models declare them; a tool call comes back in the common shape
    asked = multi.chat("What's the weather in Paris right now?", tools=[WEATHER])
    assert asked.provider == "ollama" and asked.tool_calls[0].name == "get_weather"

    # vision: no local model has it, so the request goes to the cloud
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    seen = multi.chat(
        messages=[{"role": "user", "content": [{"type": "text", "text": EASY}, image]}]
    )
    assert seen.provider == "openai"


def test_a_failing_local_server_falls_back_to_the_cloud(fake: FakeProviderServer) -> None:
    local = o.Provider("ollama", base_url=fake.compat_base_url, max_retries=0)
    multi = o.MultiProvider([local, o.Provider("anthropic", fake.api_key)], strategy="cheapest")
    fake.queue(Fault.status(503), provider="openai", times=3)  # the compat route is "openai"
    response = multi.chat(EASY)
    assert response.provider == "anthropic"
    assert next(a.provider for a in response.attempts if not a.ok) == "ollama"


def test_openai_compatible_needs_its_address_and_models(fake: FakeProviderServer) -> None:
    with pytest.raises(o.ConfigurationError, match="base_url"):
        o.Provider("openai-compatible")
    with pytest.raises(o.ConfigurationError, match="models="):
        o.Provider("openai-compatible", base_url=fake.compat_base_url)
    mine = o.Provider(
        "openai-compatible",
        base_url=fake.compat_base_url,
        models={
            "budget": "my-small",
            "premium": {"id": "my-big", "input_price": 1.0, "output_price": 2.0},
        },
    )
    assert mine.chat(EASY, quality=0.0).model == "my-small"
    big = mine.chat(EASY, model="my-big")
    assert big.cost == pytest.approx((big.input_tokens * 1.0 + big.output_tokens * 2.0) / 1e6)


def test_an_async_conversation_keeps_its_model(fake: FakeProviderServer) -> None:
    async def talk() -> tuple[o.Response, o.Response, str]:
        async with o.Provider("anthropic", fake.api_key) as provider:
            chat = o.Conversation(provider, system=LONG_SYSTEM)
            first = await chat.achat(EASY, quality=0.0)
            second = await chat.achat("What is the capital of France?", quality=0.0)
            streamed = "".join([c async for c in chat.astream_text("And of Italy?", quality=0.0)])
            assert chat.responses[-1].model == first.model
            return first, second, streamed

    first, second, streamed = asyncio.run(talk())
    assert second.model == first.model
    assert second.usage.cache_read_tokens > 0 and second.cache_savings > 0
    assert streamed
