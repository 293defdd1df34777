"""Every code sample of the seed README, run as written against the fake provider server.

The real official SDKs do the talking; only the base URLs (set in the environment by the
``fake`` fixture, the way a user would point the SDKs elsewhere) differ from production.
"""

from __future__ import annotations

import pytest

import orkestra as o
from orkestra.catalog import cost_of, default_catalog
from orkestra.testing import FakeProviderServer

PROVIDERS = ("google", "anthropic", "openai")


@pytest.mark.parametrize("name", PROVIDERS)
def test_quick_start(name: str, fake: FakeProviderServer) -> None:
    provider = o.Provider(name, fake.api_key)
    response = provider.chat("Explain quantum computing")

    assert response.text.startswith(f"[{response.model}]")
    assert response.provider == name
    assert response.model in {m.id for m in provider.tier_models().values()}
    assert response.input_tokens > 0 and response.output_tokens > 0
    model = default_catalog().resolve(name, response.model).model
    assert response.cost == pytest.approx(cost_of(model, response.usage).total)
    assert response.cost > 0
    premium = provider.premium_model
    assert response.base_model == premium.id
    assert response.base_cost == pytest.approx(cost_of(premium, response.usage).total)
    assert response.savings == pytest.approx(response.base_cost - response.cost)
    # The README prints these with format specs: they must be plain floats.
    line = f"Cost: ${response.cost:.6f} Saved: {response.savings_percent:.1f}%"
    assert line.startswith("Cost: $0.")
    assert len(fake.requests) == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_streaming(name: str, fake: FakeProviderServer) -> None:
    provider = o.Provider(name, fake.api_key)
    chunks = list(provider.stream_text("Write a poem about the sea and the sky at night"))

    assert len(chunks) >= 3
    assert all(isinstance(c, str) for c in chunks)
    assert "".join(chunks).startswith("[")
    assert fake.requests[-1].stream


@pytest.mark.parametrize("name", PROVIDERS)
def test_stream_object_carries_the_response(name: str, fake: FakeProviderServer) -> None:
    stream = o.Provider(name, fake.api_key).stream("Write a poem")
    text = "".join(stream)
    assert stream.response is not None
    assert stream.response.text == text
    assert stream.response.output_tokens > 0 and stream.response.cost > 0


def test_multi_provider_strategies(fake: FakeProviderServer) -> None:
    google = o.Provider("google", fake.api_key)
    anthropic = o.Provider("anthropic", fake.api_key)
    openai = o.Provider("openai", fake.api_key)

    multi = o.MultiProvider([google, anthropic, openai])

    cheapest = multi.chat("What is 2+2?", strategy="cheapest")
    smartest = multi.chat("Prove the Riemann hypothesis", strategy="smartest")
    balanced = multi.chat("Write a Python function", strategy="balanced")

    for response, strategy in (
        (cheapest, "cheapest"),
        (smartest, "smartest"),
        (balanced, "balanced"),
    ):
        assert response.routing.strategy == strategy
        assert response.text
        assert response.base_model  # multi-provider responses report savings too
        assert response.base_cost > 0
    assert len(fake.requests) == 3


def test_multi_provider_stream_text(fake: FakeProviderServer) -> None:
    multi = o.MultiProvider([o.Provider(n, fake.api_key) for n in PROVIDERS])
    text = "".join(multi.stream_text("Write a poem", strategy="cheapest"))
    assert text.startswith("[")
