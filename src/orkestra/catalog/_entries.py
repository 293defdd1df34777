"""A user's model entry, checked: ``Provider(models={...})``, :func:`register_model` and the
``ORKESTRA_CATALOG`` file all describe models the same way (:data:`MODEL_KEYS`), and all go
through :func:`model_entry` before any call is made. A new model must be priced: by the entry,
by genai-prices, or ($0) because it runs on a local server.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from orkestra._types import TIERS, Tier
from orkestra.catalog._types import (
    CAPABILITIES,
    ModelInfo,
    ModelTable,
    Price,
    ProviderInfo,
    unsupported_params,
)
from orkestra.catalog.cost import price_of
from orkestra.errors import ConfigurationError, PricingError

__all__ = ["MODEL_KEYS", "as_tier", "fill_tiers", "model_entry"]

DEFAULT_CONTEXT_WINDOW = 131_072
"""A user's model with no ``context_window``: the common size of today's open models."""
DEFAULT_MAX_OUTPUT_TOKENS = 8192
"""A user's model with no ``max_output_tokens``: the library's default ``max_tokens``, so a
default call is never clamped."""
MODEL_KEYS = (
    "id",
    "input_price",
    "output_price",
    "cached_input_price",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "reasoning",
    "unsupported_params",
)
"""What a user's model entry may say (``models={tier: {...}}``, register_model, the file)."""


def as_tier(value: object, where: str) -> Tier:
    for tier in TIERS:
        if value == tier:
            return tier
    raise ConfigurationError(
        f"{where}: {value!r} is not a tier; use 'budget', 'balanced' or 'premium'"
    )


def fill_tiers(given: Mapping[Tier, str]) -> dict[Tier, str]:
    """Every tier: a missing one takes the nearest given tier's model (the cheaper on a tie)."""
    ranks = [i for i, tier in enumerate(TIERS) if tier in given]
    out: dict[Tier, str] = {}
    for i, tier in enumerate(TIERS):
        nearest = min(ranks, key=lambda j: (abs(j - i), j))
        out[tier] = given[TIERS[nearest]]
    return out


def _number(value: object, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{where}: {key} must be a number, not {value!r}")
    if value < 0:
        raise ConfigurationError(f"{where}: {key} must be ≥ 0 (USD per 1M tokens), not {value!r}")
    return float(value)


def _count(value: object, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{where}: {key} must be a whole number of tokens ≥ 1, not {value!r}"
        )
    return value


def _capabilities(value: object, where: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"{where}: capabilities must be a list such as ['tools', 'json'], not {value!r}"
        )
    items = list(value)
    unknown = [c for c in items if not isinstance(c, str) or c not in CAPABILITIES]
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown capabilities {unknown}; use 'tools', 'vision' or 'json'"
        )
    return frozenset(str(c) for c in items)


def model_entry(
    info: ProviderInfo,
    spec: Mapping[str, Any],
    entries: ModelTable,
    where: str,
) -> ModelInfo:
    """A user's model entry, checked: a new one, or ``spec`` applied over the existing one."""
    unknown = sorted(str(k) for k in spec if k not in MODEL_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {unknown}; use {', '.join(MODEL_KEYS)}")
    model_id = spec.get("id")
    if not isinstance(model_id, str) or not model_id.strip() or model_id != model_id.strip():
        raise ConfigurationError(f"{where}: 'id' must be a model id string, not {model_id!r}")
    existing, _ = entries.find(info.name, model_id)
    changes = _changes(spec, where)
    price = _price_spec(spec, existing.price if existing else None, where)
    if price is not None:
        changes["price"] = price
    if existing is not None:
        model = dataclasses.replace(existing, **changes)
    else:
        context = changes.pop("context_window", DEFAULT_CONTEXT_WINDOW)
        model = ModelInfo(
            provider=info.name,
            id=model_id,
            context_window=context,
            max_output_tokens=changes.pop(
                "max_output_tokens", min(DEFAULT_MAX_OUTPUT_TOKENS, context)
            ),
            price_provider=info.price_provider,
            **{"unsupported_params": info.unsupported_params, **changes},
        )
        if model.price is None and not info.requires_key:
            model = dataclasses.replace(model, price=Price(0.0, 0.0))
        if model.price is None:
            _check_priced(model, where)
    if model.max_output_tokens > model.context_window:
        raise ConfigurationError(
            f"{where}: max_output_tokens ({model.max_output_tokens}) is above "
            f"context_window ({model.context_window})"
        )
    return model


def _changes(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ModelInfo fields (but the price) ``spec`` sets, checked."""
    changes: dict[str, Any] = {}
    for key in ("context_window", "max_output_tokens"):
        if spec.get(key) is not None:
            changes[key] = _count(spec[key], key, where)
    if spec.get("capabilities") is not None:
        changes["capabilities"] = _capabilities(spec["capabilities"], where)
    if spec.get("reasoning") is not None:
        if not isinstance(spec["reasoning"], bool):
            raise ConfigurationError(f"{where}: reasoning must be true or false")
        changes["reasoning"] = spec["reasoning"]
    if spec.get("unsupported_params") is not None:
        changes["unsupported_params"] = unsupported_params(spec["unsupported_params"], where)
    return changes


def _price_spec(spec: Mapping[str, Any], current: Price | None, where: str) -> Price | None:
    """The price ``spec`` sets (None: it sets none). A price from genai-prices is replaced
    whole, so input and output must then both be given."""
    given = {
        key: _number(spec[key], key, where)
        for key in ("input_price", "output_price", "cached_input_price")
        if spec.get(key) is not None
    }
    if not given:
        return None
    if current is None:
        if "input_price" not in given or "output_price" not in given:
            raise ConfigurationError(
                f"{where}: give both input_price and output_price (USD per 1M tokens)"
            )
        return Price(given["input_price"], given["output_price"], given.get("cached_input_price"))
    return Price(
        given.get("input_price", current.input),
        given.get("output_price", current.output),
        given.get("cached_input_price", current.cached_input),
        current.cache_write,
    )


def _check_priced(model: ModelInfo, where: str) -> None:
    """A new model without a catalog price must be one genai-prices knows: never billed $0."""
    try:
        price_of(model)
    except PricingError:
        raise PricingError(
            f"{where}: no price known for {model.provider} model {model.id!r}; give "
            "input_price and output_price (USD per 1M tokens)"
        ) from None
