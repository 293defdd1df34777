"""Cost follows each provider's pricing rules (values from wire-protocol notes §5)."""

from __future__ import annotations

import dataclasses

import pytest

import orkestra as o
from orkestra.catalog import ModelInfo, cost_of, default_catalog


def _model(provider: str, model: str) -> ModelInfo:
    return default_catalog().resolve(provider, model).model


def test_plain_tokens() -> None:
    cost = cost_of(_model("openai", "gpt-4o-mini"), o.Usage(input_tokens=1000, output_tokens=500))
    assert cost.input_cost == pytest.approx(1000 * 0.15 / 1e6)
    assert cost.output_cost == pytest.approx(500 * 0.60 / 1e6)


def test_openai_cached_input_is_billed_at_the_cached_rate() -> None:
    usage = o.Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=100)
    cost = cost_of(_model("openai", "gpt-4o"), usage)
    assert cost.input_cost == pytest.approx((600 * 2.50 + 400 * 1.25) / 1e6)
    assert cost.output_cost == pytest.approx(100 * 10.0 / 1e6)


def test_anthropic_cache_reads_and_writes() -> None:
    # input_tokens here is the total prompt: 500 uncached + 200 read + 300 written.
    usage = o.Usage(
        input_tokens=1000, cache_read_tokens=200, cache_write_tokens=300, output_tokens=10
    )
    cost = cost_of(_model("anthropic", "claude-haiku-4-5"), usage)
    assert cost.input_cost == pytest.approx((500 * 1.00 + 200 * 0.10 + 300 * 1.25) / 1e6)
    assert cost.output_cost == pytest.approx(10 * 5.0 / 1e6)


def test_reasoning_tokens_are_billed_as_output() -> None:
    usage = o.Usage(input_tokens=100, output_tokens=1064, reasoning_tokens=1000)
    cost = cost_of(_model("openai", "o3"), usage)
    assert cost.output_cost == pytest.approx(1064 * 8.0 / 1e6)


def test_gemini_pro_long_context_tier_applies_to_all_tokens() -> None:
    model = _model("google", "gemini-3.1-pro-preview")
    short = cost_of(model, o.Usage(input_tokens=200_000, output_tokens=1000))
    long = cost_of(model, o.Usage(input_tokens=200_001, output_tokens=1000))
    assert short.input_cost == pytest.approx(200_000 * 2.0 / 1e6)
    assert long.input_cost == pytest.approx(200_001 * 4.0 / 1e6)
    assert long.output_cost == pytest.approx(1000 * 18.0 / 1e6)


def test_unpriced_model_is_an_error_not_zero() -> None:
    fake = dataclasses.replace(_model("openai", "gpt-4o"), id="gpt-unpriced-9000")
    with pytest.raises(o.PricingError, match="gpt-unpriced-9000"):
        cost_of(fake, o.Usage(input_tokens=1, output_tokens=1))
