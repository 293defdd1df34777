"""What orkestra puts on the wire, and how it reads the answer, for each provider."""

from __future__ import annotations

import gc

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer, Reply


def _body(fake: FakeProviderServer) -> dict[str, object]:
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return body


def test_reasoning_model_gets_max_completion_tokens_and_no_temperature(
    fake: FakeProviderServer,
) -> None:
    provider = o.Provider("openai", fake.api_key, smart_routing=False, default_model="o3")
    provider.chat("hello", max_tokens=300)
    body = _body(fake)
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    assert "temperature" not in body


def test_reasoning_model_warns_once_about_a_custom_temperature(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, smart_routing=False, default_model="o3")
    with pytest.warns(o.OrkestraWarning, match="temperature"):
        provider.chat("hello", temperature=0.2)
    provider.chat("hello", temperature=0.2)  # second time: no warning (warnings are errors here)
    assert "temperature" not in _body(fake)


def test_non_reasoning_openai_model_gets_max_tokens_and_temperature(
    fake: FakeProviderServer,
) -> None:
    provider = o.Provider("openai", fake.api_key, smart_routing=False, default_model="gpt-4o-mini")
    provider.chat("hello", max_tokens=64, temperature=0.3)
    body = _body(fake)
    assert body["max_tokens"] == 64
    assert body["temperature"] == 0.3


def test_anthropic_always_gets_max_tokens_and_never_temperature(fake: FakeProviderServer) -> None:
    provider = o.Provider("anthropic", fake.api_key, smart_routing=False)
    provider.chat("hello")  # default temperature 1.0: not sent, and no warning
    body = _body(fake)
    assert body["max_tokens"] == 8192
    assert "temperature" not in body
    assert fake.requests[-1].headers["anthropic-version"] in {"2023-06-01", "2026-10-21"}


def test_anthropic_large_max_tokens_goes_through_the_stream(fake: FakeProviderServer) -> None:
    # The SDK refuses a non-streaming call with max_tokens > 21,333; chat() must still work.
    provider = o.Provider("anthropic", fake.api_key, smart_routing=False)
    response = provider.chat("hello", max_tokens=32_000)
    assert response.text
    assert fake.requests[-1].stream
    assert _body(fake)["max_tokens"] == 32_000


@pytest.mark.parametrize(
    ("model", "version"),
    [("gemini-3-flash-preview", "v1beta"), ("gemini-2.5-flash-lite", "v1")],
)
def test_gemini_api_version_per_model(fake: FakeProviderServer, model: str, version: str) -> None:
    provider = o.Provider("google", fake.api_key, smart_routing=False, default_model=model)
    provider.chat("hello")
    assert fake.requests[-1].path == f"/{version}/models/{model}:generateContent"
    config = _body(fake)["generationConfig"]
    assert isinstance(config, dict)
    assert config["maxOutputTokens"] == 8192


def test_max_tokens_above_the_model_limit_is_clamped_with_a_warning(
    fake: FakeProviderServer,
) -> None:
    provider = o.Provider("openai", fake.api_key, smart_routing=False, default_model="gpt-4o")
    with pytest.warns(o.OrkestraWarning, match="clamped to 16384"):
        response = provider.chat("hello", max_tokens=50_000)
    assert response.text
    assert _body(fake)["max_tokens"] == 16384


def test_seed_model_names_are_aliases_with_one_warning(fake: FakeProviderServer) -> None:
    with pytest.warns(o.ModelAliasWarning, match="claude-opus-4-6"):
        provider = o.Provider(
            "anthropic", fake.api_key, smart_routing=False, default_model="claude-opus-4"
        )
    response = provider.chat("hello")
    assert response.model == "claude-opus-4-6"
    assert fake.requests[-1].model == "claude-opus-4-6"


def test_chat_model_override(fake: FakeProviderServer) -> None:
    provider = o.Provider("google", fake.api_key)
    response = provider.chat("hello", model="gemini-2.5-flash-lite")
    assert response.model == "gemini-2.5-flash-lite"
    assert response.routing.tier == "budget"
    assert "requested explicitly" in response.routing.reason


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("name", "model", "price_in", "price_cached", "price_out"),
    [
        ("openai", "gpt-4o", 2.50, 1.25, 10.00),
        ("anthropic", "claude-haiku-4-5", 1.00, 0.10, 5.00),
        ("google", "gemini-3-flash-preview", 0.50, 0.05, 3.00),
    ],
)
def test_cached_and_reasoning_tokens_cost_to_the_cent(
    fake: FakeProviderServer,
    name: str,
    model: str,
    price_in: float,
    price_cached: float,
    price_out: float,
    stream: bool,
) -> None:
    # 100,000 prompt tokens of which 60,000 cached; 8,000 output of which 6,000 reasoning.
    fake.queue(
        Reply(
            "ok",
            input_tokens=100_000,
            output_tokens=8_000,
            cached_tokens=60_000,
            reasoning_tokens=6_000,
        )
    )
    provider = o.Provider(name, fake.api_key, smart_routing=False, default_model=model)
    if stream:
        s = provider.stream("hello")
        "".join(s)
        response = s.response
        assert response is not None
    else:
        response = provider.chat("hello")
    assert response.usage.input_tokens == 100_000
    assert response.usage.cache_read_tokens == 60_000
    assert response.usage.output_tokens == 8_000
    assert response.usage.reasoning_tokens == 6_000
    assert response.input_cost == pytest.approx((40_000 * price_in + 60_000 * price_cached) / 1e6)
    assert response.output_cost == pytest.approx(8_000 * price_out / 1e6)


def test_anthropic_cache_write_tokens_are_priced(fake: FakeProviderServer) -> None:
    fake.queue(Reply("ok", input_tokens=1_000_000, output_tokens=0, cache_write_tokens=1_000_000))
    provider = o.Provider(
        "anthropic", fake.api_key, smart_routing=False, default_model="claude-haiku-4-5"
    )
    response = provider.chat("hello")
    assert response.usage.cache_write_tokens == 1_000_000
    assert response.input_cost == pytest.approx(1.25)


def test_a_dropped_provider_closes_its_sdk_client(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, smart_routing=False)
    provider.chat("hello there")
    client = provider.adapter.client  # type: ignore[attr-defined]
    assert not client.is_closed()
    del provider
    gc.collect()
    assert client.is_closed()
