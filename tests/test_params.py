"""The optional call parameters (``stop``, ``top_p``, ``seed``, ``parallel_tool_calls``,
``reasoning_effort``, penalties, ``logit_bias``) through the real SDKs to the fake providers:
translated where the model takes them, left out and reported where it does not (the catalog's
``unsupported_params``), checked before anything is sent."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

import orkestra as o
from orkestra.catalog import default_catalog
from orkestra.errors import ConfigurationError, InvalidRequestError, OrkestraWarning
from orkestra.testing import FakeProviderServer, Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def body(fake: FakeProviderServer) -> dict[str, Any]:
    sent = fake.requests[-1].body
    assert isinstance(sent, dict)
    return sent


def quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Make the call; the once-per-model warnings about dropped parameters are expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrkestraWarning)
        return call(*args, **kwargs)


def test_openai_is_sent_each_parameter_under_its_own_name(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key)
    response = provider.chat(
        "Say hello",
        model="gpt-4o-mini",
        stop=["END"],
        top_p=0.5,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"50256": -100},
        tools=[WEATHER],
        parallel_tool_calls=False,
    )
    sent = body(fake)
    assert sent["stop"] == ["END"] and sent["top_p"] == 0.5 and sent["seed"] == 7
    assert sent["presence_penalty"] == 0.5 and sent["frequency_penalty"] == -0.5
    assert sent["logit_bias"] == {"50256": -100.0}
    assert sent["parallel_tool_calls"] is False
    assert response.ignored_params == ()


def test_a_stop_sequence_ends_the_answer_on_every_provider(fake: FakeProviderServer) -> None:
    for name in ("openai", "anthropic", "google"):
        fake.queue(Reply(text="one two STOP three"))
        response = o.Provider(name, fake.api_key).chat("Count", stop="STOP")
        assert response.text == "one two ", name
        assert response.stop_reason == "stop", name
    # The wire names: OpenAI stop, Anthropic stop_sequences, Gemini stopSequences.
    (openai_, anthropic_, google_) = (r.body for r in fake.requests)
    assert openai_["stop"] == ["STOP"]
    assert anthropic_["stop_sequences"] == ["STOP"]
    assert google_["generationConfig"]["stopSequences"] == ["STOP"]


def test_a_reasoning_model_is_sent_reasoning_effort_and_not_what_it_refuses(
    fake: FakeProviderServer,
) -> None:
    provider = o.Provider("openai", fake.api_key)
    with pytest.warns(OrkestraWarning, match="does not take top_p"):
        response = provider.chat(
            "Think", model="gpt-5.6-luna", reasoning_effort="high", top_p=0.3, seed=3
        )
    sent = body(fake)
    assert sent["reasoning_effort"] == "high" and sent["seed"] == 3
    assert "top_p" not in sent
    assert response.ignored_params == ("top_p",)
    # A model that does not reason is not sent reasoning_effort (the real API refuses it).
    response = quiet(provider.chat, "Hi", model="gpt-4o-mini", reasoning_effort="low")
    assert "reasoning_effort" not in body(fake)
    assert response.ignored_params == ("reasoning_effort",)


def test_anthropic_takes_stop_and_one_call_at_most_and_reports_the_rest(
    fake: FakeProviderServer,
) -> None:
    provider = o.Provider("anthropic", fake.api_key)
    response = quiet(
        provider.chat,
        "Weather in Paris?",
        tools=[WEATHER],
        parallel_tool_calls=False,
        top_p=0.9,
        seed=1,
        reasoning_effort="low",
    )
    sent = body(fake)
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    # API version 2026-10-21 (the SDK's) refuses top_p like temperature; there is no seed.
    assert not {"top_p", "seed", "thinking"} & set(sent)
    assert response.ignored_params == ("top_p", "seed", "reasoning_effort")
    forced = provider.chat(
        "Weather?", tools=[WEATHER], tool_choice="required", parallel_tool_calls=False
    )
    assert body(fake)["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert forced.tool_calls


def test_gemini_gets_its_generation_config_and_a_thinking_budget(
    fake: FakeProviderServer,
) -> None:
    provider = o.Provider("google", fake.api_key)
    response = quiet(
        provider.chat,
        "Hi",
        top_p=0.4,
        seed=11,
        reasoning_effort="medium",
        tools=[WEATHER],
        parallel_tool_calls=False,
    )
    config = body(fake)["generationConfig"]
    assert config["topP"] == 0.4 and config["seed"] == 11
    # (google-genai writes this one field in snake case; the API takes either)
    assert list(config["thinkingConfig"].values()) == [8192]
    # Gemini has no switch for one call at most: left out, and said so.
    assert response.ignored_params == ("parallel_tool_calls",)


def test_async_and_streamed_calls_carry_the_parameters_too(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key)
    fake.queue(Reply(text="alpha beta END gamma"))
    stream = provider.stream("Go", model="gpt-4o-mini", stop="END", seed=5)
    assert "".join(stream) == "alpha beta "
    assert body(fake)["stop"] == ["END"] and body(fake)["seed"] == 5

    async def run() -> o.Response:
        return await provider.achat("Go", model="gpt-4o-mini", top_p=0.25)

    asyncio.run(run())
    assert body(fake)["top_p"] == 0.25
    multi = o.MultiProvider([provider])
    multi.chat("Go", frequency_penalty=1.0)
    assert body(fake)["frequency_penalty"] == 1.0


def test_parallel_tool_calls_without_tools_asks_for_nothing(fake: FakeProviderServer) -> None:
    response = o.Provider("google", fake.api_key).chat("Hi", parallel_tool_calls=False)
    assert response.ignored_params == ()
    o.Provider("openai", fake.api_key).chat("Hi", parallel_tool_calls=False)
    assert "parallel_tool_calls" not in body(fake)  # OpenAI refuses it without tools


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4"),
        ({"stop": [""]}, "non-empty"),
        ({"top_p": 1.5}, r"top_p must be in \[0, 1\]"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"reasoning_effort": "max"}, "reasoning_effort must be one of"),
        ({"presence_penalty": float("nan")}, "presence_penalty"),
        ({"logit_bias": {"abc": 1}}, "not a token id"),
        ({"parallel_tool_calls": "no"}, "True or False"),
    ],
)
def test_bad_values_are_refused_before_anything_is_sent(
    fake: FakeProviderServer, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        o.Provider("openai", fake.api_key).chat("Hi", **kwargs)
    assert fake.requests == []


def test_an_unknown_keyword_is_a_type_error(fake: FakeProviderServer) -> None:
    with pytest.raises(TypeError, match="'top_k'"):
        o.Provider("openai", fake.api_key).chat("Hi", top_k=3)  # type: ignore[call-arg]


def test_unsupported_params_are_catalog_data_a_user_entry_can_change(
    fake: FakeProviderServer,
) -> None:
    catalog = default_catalog()
    assert not catalog.resolve("openai", "o3").model.takes("stop")
    assert catalog.resolve("openai", "gpt-4o-mini").model.takes("stop")
    assert not catalog.resolve("anthropic", "claude-haiku-4-5").model.takes("seed")
    provider = o.Provider(
        "openai",
        fake.api_key,
        models={"budget": {"id": "gpt-4o-mini", "unsupported_params": ["seed"]}},
    )
    response = quiet(provider.chat, "Hi", seed=1, top_p=0.5)
    assert "seed" not in body(fake) and body(fake)["top_p"] == 0.5
    assert response.ignored_params == ("seed",)
    with pytest.raises(ConfigurationError, match="'top_k' is not one of"):
        o.Provider(
            "openai", fake.api_key, models={"budget": {"id": "x", "unsupported_params": ["top_k"]}}
        )
