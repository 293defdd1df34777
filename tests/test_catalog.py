"""The catalog: today's models per tier, aliases, retirements, and prices from genai-prices."""

from __future__ import annotations

import datetime as dt

import pytest

import orkestra as o
from orkestra.catalog import Catalog, default_catalog, price_of

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


def test_tier_models_today(catalog: Catalog) -> None:
    tiers = {
        p: tuple(catalog.tier_model(p, t, on=TODAY).id for t in o.TIERS)
        for p in ("google", "anthropic", "openai")
    }
    assert tiers == {
        "google": ("gemini-2.5-flash-lite", "gemini-3-flash-preview", "gemini-3.1-pro-preview"),
        "anthropic": ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"),
        "openai": ("gpt-4o-mini", "gpt-4.1-mini", "o3"),
    }


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2026, 12, 10), "o3"),
        (dt.date(2026, 12, 11), "gpt-5.6-sol"),  # o3 retires: the tier moves by itself
    ],
)
def test_tier_moves_to_successor_on_retirement_day(
    catalog: Catalog, day: dt.date, expected: str
) -> None:
    assert catalog.tier_model("openai", "premium", on=day).id == expected


def test_orkestra_today_env_previews_a_retirement(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", "2027-01-14")
    assert catalog.tier_model("openai", "budget").id == "gpt-5.6-luna"
    assert catalog.tier_model("openai", "balanced").id == "gpt-5.6-terra"


@pytest.mark.parametrize(
    ("provider", "seed_name", "current"),
    [
        ("anthropic", "claude-haiku-4", "claude-haiku-4-5"),
        ("anthropic", "claude-opus-4", "claude-opus-4-6"),
        ("google", "gemini-3-pro-preview", "gemini-3.1-pro-preview"),
        ("anthropic", "claude-3-5-haiku-20241022", "claude-haiku-4-5"),
        ("openai", "gpt-4.1-nano", "gpt-5.6-luna"),
    ],
)
def test_seed_and_retired_names_resolve_with_one_warning(
    catalog: Catalog, provider: str, seed_name: str, current: str
) -> None:
    with pytest.warns(o.ModelAliasWarning, match=current):
        assert catalog.model(provider, seed_name, on=TODAY).id == current
    # The second use is quiet (warnings are errors in this test suite).
    assert catalog.model(provider, seed_name, on=TODAY).id == current


def test_snapshot_ids_resolve_to_their_model(catalog: Catalog) -> None:
    assert (
        catalog.model("anthropic", "claude-haiku-4-5-20251001", on=TODAY).id == "claude-haiku-4-5"
    )


def test_sonnet_4_5_is_served_until_it_retires(catalog: Catalog) -> None:
    assert (
        catalog.resolve("anthropic", "claude-sonnet-4-5", on=TODAY).model.id == "claude-sonnet-4-5"
    )
    later = catalog.resolve("anthropic", "claude-sonnet-4-5", on=dt.date(2026, 11, 30))
    assert later.model.id == "claude-sonnet-4-6"
    assert "retired on 2026-11-30" in later.notes[0]


def test_no_tier_ever_resolves_to_a_retired_model(catalog: Catalog) -> None:
    for day in (TODAY, dt.date(2026, 12, 1), dt.date(2026, 12, 11), dt.date(2027, 2, 1)):
        for provider, info in catalog.providers.items():
            for tier in info.tiers:  # vllm and openai-compatible: the user's models
                assert not catalog.tier_model(provider, tier, on=day).retired_on(day)


def test_unknown_model_and_provider_are_typed_errors(catalog: Catalog) -> None:
    with pytest.raises(o.UnknownModelError, match="gpt-9"):
        catalog.model("openai", "gpt-9")
    with pytest.raises(o.UnknownProviderError, match="'gemni'"):
        catalog.provider("gemni")
    # Both are ConfigurationErrors and ValueErrors, raised before any network call.
    assert issubclass(o.UnknownModelError, ValueError)


@pytest.mark.parametrize(
    ("provider", "model", "price_in", "price_out"),
    [
        ("google", "gemini-2.5-flash-lite", 0.10, 0.40),
        ("google", "gemini-3-flash-preview", 0.50, 3.00),
        ("google", "gemini-3.1-pro-preview", 2.00, 12.00),
        ("anthropic", "claude-haiku-4-5", 1.00, 5.00),
        ("anthropic", "claude-sonnet-4-5", 3.00, 15.00),
        ("openai", "gpt-4o-mini", 0.15, 0.60),
        ("openai", "gpt-4o", 2.50, 10.00),
        ("openai", "o3", 2.00, 8.00),  # was $10/$40 in the seed README
    ],
)
def test_prices_are_todays(
    catalog: Catalog, provider: str, model: str, price_in: float, price_out: float
) -> None:
    price = price_of(catalog.resolve(provider, model, on=TODAY).model)
    assert (price.input, price.output) == pytest.approx((price_in, price_out))


def test_every_catalog_model_has_a_price(catalog: Catalog) -> None:
    for model in catalog.models.values():
        price = price_of(model)
        if catalog.provider(model.provider).requires_key:
            assert price.input > 0 and price.output > 0, model.id
        else:  # a model on your own machine (ollama) costs nothing per token
            assert (price.input, price.output) == (0, 0), model.id


def test_malformed_catalog_is_refused() -> None:
    data = {
        "as_of": "2026-11-26",
        "providers": {
            "x": {
                "display_name": "X",
                "env_keys": ["X_KEY"],
                "env_base_url": "X_BASE_URL",
                "price_provider": "x",
                "tiers": {"budget": "a", "balanced": "a", "premium": "missing"},
            }
        },
        "models": [{"provider": "x", "id": "a", "context_window": 1, "max_output_tokens": 1}],
        "aliases": [],
    }
    with pytest.raises(ValueError, match="missing"):
        Catalog.from_dict(data)


def test_tiers_are_ordered_by_price(catalog: Catalog) -> None:
    """A balanced tier dearer than premium would never be worth routing to."""
    for provider, info in catalog.providers.items():
        if set(info.tiers) != set(o.TIERS):
            continue
        for day in (TODAY, dt.date(2026, 12, 11), dt.date(2027, 1, 14)):
            blended = [
                price_of(catalog.tier_model(provider, t, on=day)).estimate(500, 1000)
                for t in o.TIERS
            ]
            assert blended == sorted(blended), (provider, day, blended)
