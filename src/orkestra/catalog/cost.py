"""Prices and costs, from genai-prices (pydantic's bundled, offline price data).

Cost is a pure function of the model, the usage and the time of the call. Each provider's usage
semantics are normalised into :class:`orkestra.Usage` before they get here (prompt totals include
cached tokens; output totals include reasoning), which is also what genai-prices expects, so
cache reads, cache writes and long-context tiers (Gemini Pro over 200k prompt tokens) are priced
by genai-prices' own rules. A model genai-prices does not know raises :class:`PricingError`;
nothing is ever billed as $0 by accident.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from orkestra._types import Cost, Usage
from orkestra.catalog._catalog import ModelInfo, default_catalog
from orkestra.errors import PricingError

__all__ = ["Price", "cost_of", "price_of"]


@dataclass(frozen=True)
class Price:
    """Standard-tier USD per 1M tokens (below any long-context threshold)."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def estimate(self, input_tokens: float, output_tokens: float) -> float:
        """Dollars for that many uncached input and output tokens."""
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


def _calc(model: ModelInfo, usage: Usage, when: dt.datetime | None) -> Any:
    import genai_prices  # ~0.15 s; imported on first cost, not with orkestra

    provider = default_catalog().provider(model.provider).price_provider
    try:
        return genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            model_ref=model.price_ref or model.id,
            provider_id=provider,
            genai_request_timestamp=when,
        )
    except LookupError as e:
        raise PricingError(
            f"no price known for {model.provider} model {model.id!r} (genai-prices has none); "
            "add a price to the catalog before using it"
        ) from e


@cache
def price_of(model: ModelInfo) -> Price:
    """The model's standard per-1M-token prices (for display and expected-cost estimates)."""
    calc = _calc(model, Usage(input_tokens=1000, output_tokens=1000), None)
    mp = calc.model_price

    def base(value: Any) -> float | None:
        if value is None:
            return None
        return float(getattr(value, "base", value))

    input_price, output_price = base(mp.input_mtok), base(mp.output_mtok)
    if input_price is None or output_price is None:
        raise PricingError(f"genai-prices has no token price for {model.provider}/{model.id}")
    return Price(input_price, output_price, base(mp.cache_read_mtok), base(mp.cache_write_mtok))


def cost_of(model: ModelInfo, usage: Usage, *, when: dt.datetime | None = None) -> Cost:
    """What ``usage`` on ``model`` costs, split into input and output dollars."""
    calc = _calc(model, usage, when)
    return Cost(input_cost=float(calc.input_price), output_cost=float(calc.output_price))
