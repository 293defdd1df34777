"""Prices and costs: the catalog's own price when a model has one, else genai-prices (pydantic's
bundled, offline price data).

Cost is a pure function of the model, the usage and the time of the call. Each provider's usage
semantics are normalised into :class:`orkestra.Usage` before they get here (prompt totals include
cached tokens; output totals include reasoning), which is also what genai-prices expects, so
cache reads, cache writes and long-context tiers (Gemini Pro over 200k prompt tokens) are priced
by genai-prices' own rules. A catalog price (local models at $0, a user's negotiated price) is
flat: cache reads and writes at their own rates when given, else at the input rate. A model with
neither raises :class:`PricingError`; nothing is ever billed as $0 by accident.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from orkestra._types import Cost, Usage
from orkestra.catalog._types import ModelInfo, Price, now, today
from orkestra.errors import PricingError

__all__ = ["Price", "cost_of", "price_of"]


def _calc(model: ModelInfo, usage: Usage, when: dt.datetime | None) -> Any:
    import genai_prices  # ~0.15 s; imported on first cost, not with orkestra

    try:
        return genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            model_ref=model.price_ref or model.id,
            provider_id=model.price_provider or model.provider,
            genai_request_timestamp=when,
        )
    except LookupError as e:
        raise PricingError(
            f"no price known for {model.provider} model {model.id!r} (genai-prices has none); "
            "give it a price before using it: input_price/output_price in "
            "Provider(..., models={tier: {...}}) or orkestra.catalog.register_model()"
        ) from e


def price_of(model: ModelInfo, *, on: dt.date | None = None) -> Price:
    """The model's standard per-1M-token prices on a day (default: the catalog's today), for
    display and expected-cost estimates."""
    if model.price is not None:
        return model.price
    return _price_on(model, on or today())


@cache
def _price_on(model: ModelInfo, day: dt.date) -> Price:
    when = dt.datetime.combine(day, dt.time(12), dt.timezone.utc)
    calc = _calc(model, Usage(input_tokens=1000, output_tokens=1000), when)
    mp = calc.model_price

    def base(value: Any) -> float | None:
        if value is None:
            return None
        return float(getattr(value, "base", value))

    input_price, output_price = base(mp.input_mtok), base(mp.output_mtok)
    if input_price is None or output_price is None:
        raise PricingError(f"genai-prices has no token price for {model.provider}/{model.id}")
    return Price(input_price, output_price, base(mp.cache_read_mtok), base(mp.cache_write_mtok))


def _flat_cost(price: Price, usage: Usage) -> Cost:
    """A catalog price: uncached input, cache reads and cache writes each at their rate."""
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    uncached = usage.input_tokens - read - write
    read_rate = price.input if price.cached_input is None else price.cached_input
    write_rate = price.input if price.cache_write is None else price.cache_write
    input_cost = uncached * price.input + read * read_rate + write * write_rate
    return Cost(input_cost=input_cost / 1e6, output_cost=usage.output_tokens * price.output / 1e6)


def cost_of(model: ModelInfo, usage: Usage, *, when: dt.datetime | None = None) -> Cost:
    """What ``usage`` on ``model`` costs, split into input and output dollars, at the prices of
    ``when`` (default: :func:`orkestra.catalog.now`, which follows ``ORKESTRA_TODAY``)."""
    if model.price is not None:
        return _flat_cost(model.price, usage)
    calc = _calc(model, usage, when or now())
    return Cost(input_cost=float(calc.input_price), output_cost=float(calc.output_price))
