"""The catalog's data types: a provider, a model, a price, a resolved model name.

A :class:`ModelInfo` carries everything the library needs to send a model a request and price
its answer: limits, capabilities, parameter quirks (``reasoning``), retirement and successor,
and either its own :class:`Price` or where genai-prices has it (:mod:`orkestra.catalog.cost`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

from orkestra._request import PARAM_NAMES
from orkestra._types import Tier
from orkestra.errors import ConfigurationError

__all__ = [
    "ADAPTER_NAMES",
    "CAPABILITIES",
    "ModelInfo",
    "ModelTable",
    "Price",
    "ProviderInfo",
    "Resolution",
    "find_model",
    "now",
    "snapshot_index",
    "today",
    "unsupported_params",
]

CAPABILITIES = frozenset({"tools", "vision", "json"})
ADAPTER_NAMES = ("openai", "anthropic", "google")
"""The adapter modules a provider can be spoken to with (``orkestra.providers.ADAPTERS``)."""


def unsupported_params(value: object, where: str) -> frozenset[str]:
    """A catalog entry's ``unsupported_params``: a list of :data:`PARAM_NAMES`."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, frozenset, set)):
        raise ConfigurationError(
            f"{where}: unsupported_params must be a list such as ['seed', 'top_p'], not {value!r}"
        )
    unknown = [p for p in value if p not in PARAM_NAMES]
    if unknown:
        raise ConfigurationError(
            f"{where}: unsupported_params: {unknown[0]!r} is not one of {', '.join(PARAM_NAMES)}"
        )
    return frozenset(value)


def today() -> dt.date:
    """The date the catalog resolves retirements against.

    ``ORKESTRA_TODAY=YYYY-MM-DD`` overrides it (to preview a coming retirement, or in tests).
    """
    override = os.environ.get("ORKESTRA_TODAY")
    if not override:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(override)
    except ValueError:
        raise ConfigurationError(
            f"ORKESTRA_TODAY must be a date like 2026-12-11, not {override!r}"
        ) from None


def now() -> dt.datetime:
    """The time prices are looked up at: the real time, or noon UTC of ``ORKESTRA_TODAY``.

    Price data has dated changes, so pricing follows the same clock as retirements.
    """
    if os.environ.get("ORKESTRA_TODAY"):
        return dt.datetime.combine(today(), dt.time(12), dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


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


@dataclass(frozen=True)
class ModelInfo:
    """One model of one provider."""

    provider: str
    id: str
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str] = frozenset()
    snapshots: tuple[str, ...] = ()
    retires: dt.date | None = None
    successor: str | None = None
    reasoning: bool = False
    """Reasoning models take ``max_completion_tokens`` and only the default temperature."""
    api_version: str | None = None
    """Gemini: the API version that serves the model (preview models are on ``v1beta`` only)."""
    price_ref: str | None = None
    """The model id to look up in genai-prices, when it differs from ``id``."""
    price: Price | None = None
    """The catalog's own price; None: genai-prices' price (and PricingError if it has none)."""
    price_provider: str = ""
    """The genai-prices provider id to price this model under (its provider's, set at load),
    so pricing never needs to find the provider in some catalog."""
    unsupported_params: frozenset[str] = frozenset()
    """The optional parameters (``stop``, ``top_p``, ``seed``... :data:`PARAM_NAMES`) this
    model cannot take: a call is sent without them and reports them in
    ``Response.ignored_params``. Default: its provider's ``unsupported_params``."""

    def takes(self, param: str) -> bool:
        """Whether a call's optional parameter ``param`` is sent to this model."""
        return param not in self.unsupported_params

    def retired_on(self, day: dt.date) -> bool:
        return self.retires is not None and day >= self.retires


@dataclass(frozen=True)
class ProviderInfo:
    """One provider, or one preset of an OpenAI-compatible API: how to reach it and its tiers."""

    name: str
    display_name: str
    env_keys: tuple[str, ...]
    env_base_url: str
    price_provider: str
    tiers: Mapping[Tier, str]
    """The model of each tier; may lack tiers (vllm, openai-compatible: the user names them)."""
    supports_temperature: bool = True
    """Anthropic's API version 2026-10-21 rejects ``temperature``: it is never sent there."""
    adapter: str = ""
    """The adapter that speaks its API: ``"openai"``, ``"anthropic"`` or ``"google"``
    (default: the provider's name)."""
    base_url: str | None = None
    """The API's default base URL; None: the SDK's own default."""
    requires_key: bool = True
    """False for local servers (ollama, vllm, openai-compatible): a placeholder key is sent."""
    compatible: bool = False
    """An OpenAI-compatible API that is not OpenAI: send only what such servers understand."""
    unsupported_params: frozenset[str] = frozenset()
    """The optional parameters its models cannot take, unless a model says otherwise."""

    def __post_init__(self) -> None:
        if not self.adapter:
            object.__setattr__(self, "adapter", self.name)


@dataclass(frozen=True)
class Resolution:
    """What a requested model name resolves to, and the path it took to get there."""

    requested: str
    model: ModelInfo
    notes: tuple[str, ...] = ()


ModelKey = tuple[str, str]
"""(provider, model id)."""


def snapshot_index(models: Mapping[ModelKey, ModelInfo]) -> dict[ModelKey, ModelKey]:
    """(provider, snapshot id) → the key of the model it is a snapshot of (the first one)."""
    index: dict[ModelKey, ModelKey] = {}
    for key, m in models.items():
        for snapshot in m.snapshots:
            index.setdefault((m.provider, snapshot), key)
    return index


def find_model(
    models: Mapping[ModelKey, ModelInfo],
    snapshots: Mapping[ModelKey, ModelKey],
    aliases: Mapping[ModelKey, tuple[str, str]],
    provider: str,
    name: str,
) -> tuple[ModelInfo | None, str | None]:
    """The entry for an id, snapshot id (``snapshots``: :func:`snapshot_index`) or alias of
    ``provider``, and the alias's explanation if one was followed; ``(None, None)`` for a name
    none of them match. Dict lookups only, so applying many user entries stays linear."""
    if (provider, name) in models:
        return models[(provider, name)], None
    if (provider, name) in snapshots:
        return models[snapshots[(provider, name)]], None
    if (provider, name) in aliases:
        target, why = aliases[(provider, name)]
        return models[(provider, target)], why
    return None, None


class ModelTable:
    """A catalog's models while user entries are added to them one at a time, with the
    snapshot index kept up to date (the models are copied: the catalog is left unchanged)."""

    def __init__(
        self,
        models: Mapping[ModelKey, ModelInfo],
        aliases: Mapping[ModelKey, tuple[str, str]],
        snapshots: Mapping[ModelKey, ModelKey] | None = None,
    ) -> None:
        self.models = dict(models)
        self.aliases = aliases
        self.snapshots = dict(snapshot_index(models) if snapshots is None else snapshots)

    def find(self, provider: str, name: str) -> tuple[ModelInfo | None, str | None]:
        return find_model(self.models, self.snapshots, self.aliases, provider, name)

    def add(self, model: ModelInfo) -> None:
        key = (model.provider, model.id)
        self.models[key] = model
        for snapshot in model.snapshots:
            self.snapshots.setdefault((model.provider, snapshot), key)
