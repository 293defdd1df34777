"""The model catalog: providers and their presets, tiers, aliases, retirements, limits,
capabilities and parameter quirks, as data.

The data lives in ``models.json`` beside this module. A model may carry its own price (local
models at $0, or a provider genai-prices does not cover); every other price comes from
``genai-prices`` (see :mod:`orkestra.catalog.cost`). Users add or override models in three ways,
all checked before any call is made:

- ``Provider(name, models={...})``, which calls :meth:`Catalog.with_models`;
- :func:`register_model`, for the whole process (a fine-tuned model, a negotiated price);
- a file named by ``ORKESTRA_CATALOG`` (``.json`` or ``.toml``), read when the catalog loads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from orkestra._types import TIERS, Tier
from orkestra.errors import (
    ConfigurationError,
    DataFormatError,
    ModelAliasWarning,
    PricingError,
    UnknownModelError,
    UnknownProviderError,
)

__all__ = [
    "CAPABILITIES",
    "Catalog",
    "ModelInfo",
    "Price",
    "ProviderInfo",
    "Resolution",
    "default_catalog",
    "register_model",
    "today",
]

CAPABILITIES = frozenset({"tools", "vision", "json"})
ADAPTER_NAMES = ("openai", "anthropic", "google")
"""The adapter modules a provider can be spoken to with (``orkestra.providers.ADAPTERS``)."""
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
)
"""What a user's model entry may say (``models={tier: {...}}``, register_model, the file)."""


def today() -> dt.date:
    """The date the catalog resolves retirements against.

    ``ORKESTRA_TODAY=YYYY-MM-DD`` overrides it (to preview a coming retirement, or in tests).
    """
    override = os.environ.get("ORKESTRA_TODAY")
    return dt.date.fromisoformat(override) if override else dt.date.today()


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

    def __post_init__(self) -> None:
        if not self.adapter:
            object.__setattr__(self, "adapter", self.name)


@dataclass(frozen=True)
class Resolution:
    """What a requested model name resolves to, and the path it took to get there."""

    requested: str
    model: ModelInfo
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """Models per provider, with the tier each serves. Look models up through :meth:`resolve`."""

    as_of: dt.date
    providers: Mapping[str, ProviderInfo]
    models: Mapping[tuple[str, str], ModelInfo]
    aliases: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(provider, alias) → (model id, why)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        providers = {name: _provider_from(name, p) for name, p in data["providers"].items()}
        models: dict[tuple[str, str], ModelInfo] = {}
        for m in data["models"]:
            owner = providers.get(m["provider"])
            if owner is None:
                raise ValueError(f"catalog: {m['id']} names unknown provider {m['provider']}")
            info = ModelInfo(
                provider=m["provider"],
                id=m["id"],
                context_window=int(m["context_window"]),
                max_output_tokens=int(m["max_output_tokens"]),
                capabilities=frozenset(m.get("capabilities", ())),
                snapshots=tuple(m.get("snapshots", ())),
                retires=dt.date.fromisoformat(m["retires"]) if m.get("retires") else None,
                successor=m.get("successor"),
                reasoning=bool(m.get("reasoning", False)),
                api_version=m.get("api_version"),
                price_ref=m.get("price_ref"),
                price=_price_from(m["price"]) if "price" in m else None,
                price_provider=owner.price_provider,
            )
            models[(info.provider, info.id)] = info
        aliases = {
            (a["provider"], a["alias"]): (a["model"], a["why"]) for a in data.get("aliases", ())
        }
        catalog = cls(dt.date.fromisoformat(data["as_of"]), providers, models, aliases)
        catalog._check()
        return catalog

    def _check(self) -> None:
        """Fail loudly on a catalog that refers to models it does not have."""
        for p in self.providers.values():
            for model_id in p.tiers.values():
                if (p.name, model_id) not in self.models:
                    raise ValueError(f"catalog: tier model {p.name}/{model_id} has no entry")
        for m in self.models.values():
            if m.provider not in self.providers:
                raise ValueError(f"catalog: {m.id} names unknown provider {m.provider}")
            if m.successor is not None and (m.provider, m.successor) not in self.models:
                raise ValueError(f"catalog: successor {m.successor} of {m.id} has no entry")
            if not m.capabilities <= CAPABILITIES:
                raise ValueError(f"catalog: {m.id} has unknown capabilities {m.capabilities}")
        for (provider, alias), (target, _) in self.aliases.items():
            if (provider, target) not in self.models:
                raise ValueError(f"catalog: alias {alias} points at unknown {target}")
        for p in self.providers.values():
            if p.adapter not in ADAPTER_NAMES:
                raise ValueError(f"catalog: provider {p.name} names unknown adapter {p.adapter}")

    # -- lookups -------------------------------------------------------------------------

    def provider(self, name: str) -> ProviderInfo:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self.providers)
            raise UnknownProviderError(
                f"unknown provider {name!r}; orkestra supports {known}"
            ) from None

    def provider_models(self, provider: str) -> Iterator[ModelInfo]:
        self.provider(provider)
        return (m for (p, _), m in self.models.items() if p == provider)

    def _lookup(self, provider: str, name: str) -> tuple[ModelInfo | None, str | None]:
        """The entry for an id, snapshot id or alias, and the alias explanation if any."""
        return _find(self.models, self.aliases, provider, name)

    def resolve(self, provider: str, name: str, *, on: dt.date | None = None) -> Resolution:
        """The model actually sent for ``name``: aliases followed, retired models replaced.

        A model whose retirement date has come is replaced by its successor (repeatedly), so the
        library never sends a dead model id. Raises :class:`UnknownModelError` for a name the
        catalog does not know.
        """
        day = on or today()
        info, why = self._lookup(provider, name)
        if info is None:
            known = ", ".join(sorted(m.id for m in self.provider_models(provider))) or "none"
            raise UnknownModelError(
                f"unknown {provider} model {name!r}; known models: {known}. "
                "Add it to the catalog to use it (orkestra needs its price and limits): "
                f"Provider({provider!r}, models={{...}}) or orkestra.catalog.register_model()."
            )
        notes = [f"{why}; using {info.id}"] if why else []
        seen = {info.id}
        while info.retired_on(day) and info.successor:
            successor = self.models[(provider, info.successor)]
            notes.append(f"{info.id} retired on {info.retires}; using its successor {successor.id}")
            info = successor
            if info.id in seen:  # pragma: no cover - guarded by data review
                raise ValueError(f"catalog: successor cycle at {info.id}")
            seen.add(info.id)
        return Resolution(requested=name, model=info, notes=tuple(notes))

    def model(self, provider: str, name: str, *, on: dt.date | None = None) -> ModelInfo:
        """Resolve ``name`` and warn once (``ModelAliasWarning``) if it was replaced."""
        resolution = self.resolve(provider, name, on=on)
        if resolution.notes:
            _warn_once(provider, name, "; ".join(resolution.notes))
        return resolution.model

    def tier_model(self, provider: str, tier: Tier, *, on: dt.date | None = None) -> ModelInfo:
        """The model serving ``tier`` for ``provider`` today (successors applied silently).

        A provider whose models the user chooses (vllm, openai-compatible) has no tiers until
        they are given: a :class:`ConfigurationError` says how.
        """
        model_id = self.provider(provider).tiers.get(tier)
        if model_id is None:
            raise ConfigurationError(
                f"{provider} has no {tier} model: pass models={{...}} to "
                f"Provider({provider!r}, models={{'budget': 'small-model-id', "
                "'premium': 'big-model-id'}), or register one with "
                f"orkestra.catalog.register_model({provider!r}, 'model-id', tier={tier!r})"
            )
        return self.resolve(provider, model_id, on=on).model

    def tier_of(self, provider: str, model_id: str, *, on: dt.date | None = None) -> Tier | None:
        """The tier ``model_id`` serves today, or None if it serves none."""
        tiers = self.provider(provider).tiers
        for tier in TIERS:
            if tier in tiers and self.tier_model(provider, tier, on=on).id == model_id:
                return tier
        return None

    # -- user models ---------------------------------------------------------------------

    def with_models(self, provider: str, models: Mapping[str, str | Mapping[str, Any]]) -> Catalog:
        """A catalog where ``provider``'s tiers are the given models (this one is unchanged).

        Keys are tiers; a missing tier is served by the nearest given one (ties go to the
        cheaper side), so ``{"balanced": "m"}`` alone serves all three. A value is a model id
        the catalog knows, or a dict (``id``, ``input_price``, ``output_price``,
        ``cached_input_price`` in USD per 1M tokens, ``context_window``, ``max_output_tokens``,
        ``capabilities``, ``reasoning``) that adds or overrides the entry. A local server's
        (``requires_key`` false) unknown id gets an entry priced $0; any other new model needs
        a price, from the dict or from genai-prices, or :class:`PricingError`.

        >>> c = default_catalog().with_models("vllm", {"budget": "small", "premium": "big"})
        >>> c.tier_model("vllm", "balanced").id
        'small'
        """
        info = self.provider(provider)
        if not isinstance(models, Mapping) or not models:
            raise ConfigurationError(
                f"models= for {provider} must be a non-empty mapping of tier to model, "
                "e.g. {'balanced': 'model-id'}"
            )
        entries = dict(self.models)
        chosen: dict[Tier, str] = {}
        for key, value in models.items():
            tier = _tier(key, f"models= for {provider}")
            entry = self._entry_for(info, value, entries, f"models[{key!r}] for {provider}")
            entries[(provider, entry.id)] = entry
            chosen[tier] = entry.id
        providers = {**self.providers, provider: dataclasses.replace(info, tiers=_fill(chosen))}
        catalog = Catalog(self.as_of, providers, entries, self.aliases)
        catalog._check()
        return catalog

    def _entry_for(
        self,
        info: ProviderInfo,
        value: object,
        entries: Mapping[tuple[str, str], ModelInfo],
        where: str,
    ) -> ModelInfo:
        """The entry a ``models=`` value names (an id) or describes (a dict)."""
        if isinstance(value, Mapping):
            return _entry(info, value, entries, self.aliases, where)
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{where}: expected a model id or a dict with 'id', not {type(value).__name__}"
            )
        found, _ = _find(entries, self.aliases, info.name, value)
        if found is not None:
            return found
        if info.compatible or not info.requires_key:
            return _entry(info, {"id": value}, entries, self.aliases, where)
        known = ", ".join(sorted(m.id for (p, _), m in entries.items() if p == info.name))
        raise UnknownModelError(
            f"{where}: unknown {info.name} model {value!r}; known models: {known}. "
            "To add one, give a dict: {'id': ..., 'input_price': ..., 'output_price': ...}"
        )


def _provider_from(name: str, p: Mapping[str, Any]) -> ProviderInfo:
    tiers = p.get("tiers", {})
    for tier in tiers:
        if tier not in TIERS:
            raise ValueError(f"catalog: provider {name} has unknown tier {tier}")
    return ProviderInfo(
        name=name,
        display_name=p["display_name"],
        env_keys=tuple(p.get("env_keys", ())),
        env_base_url=p["env_base_url"],
        price_provider=p.get("price_provider", name),
        tiers={tier: tiers[tier] for tier in TIERS if tier in tiers},
        supports_temperature=bool(p.get("supports_temperature", True)),
        adapter=p.get("adapter", name),
        base_url=p.get("base_url"),
        requires_key=bool(p.get("requires_key", True)),
        compatible=bool(p.get("compatible", False)),
    )


def _price_from(p: Mapping[str, Any]) -> Price:
    """A catalog ``price`` object (``source``/``checked`` notes are for readers)."""
    price = Price(
        float(p["input"]),
        float(p["output"]),
        None if p.get("cached_input") is None else float(p["cached_input"]),
        None if p.get("cache_write") is None else float(p["cache_write"]),
    )
    if any(v is not None and v < 0 for v in dataclasses.astuple(price)):
        raise ValueError(f"catalog: negative price {p}")
    return price


def _find(
    models: Mapping[tuple[str, str], ModelInfo],
    aliases: Mapping[tuple[str, str], tuple[str, str]],
    provider: str,
    name: str,
) -> tuple[ModelInfo | None, str | None]:
    if (provider, name) in models:
        return models[(provider, name)], None
    for m in models.values():
        if m.provider == provider and name in m.snapshots:
            return m, None
    if (provider, name) in aliases:
        target, why = aliases[(provider, name)]
        return models[(provider, target)], why
    return None, None


def _tier(value: object, where: str) -> Tier:
    for tier in TIERS:
        if value == tier:
            return tier
    raise ConfigurationError(
        f"{where}: {value!r} is not a tier; use 'budget', 'balanced' or 'premium'"
    )


def _fill(given: Mapping[Tier, str]) -> dict[Tier, str]:
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
    unknown = [c for c in items if c not in CAPABILITIES]
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown capabilities {unknown}; use 'tools', 'vision' or 'json'"
        )
    return frozenset(str(c) for c in items)


def _entry(
    info: ProviderInfo,
    spec: Mapping[str, Any],
    entries: Mapping[tuple[str, str], ModelInfo],
    aliases: Mapping[tuple[str, str], tuple[str, str]],
    where: str,
) -> ModelInfo:
    """A user's model entry, checked: a new one, or ``spec`` applied over the existing one."""
    unknown = sorted(str(k) for k in spec if k not in MODEL_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {unknown}; use {', '.join(MODEL_KEYS)}")
    model_id = spec.get("id")
    if not isinstance(model_id, str) or not model_id.strip() or model_id != model_id.strip():
        raise ConfigurationError(f"{where}: 'id' must be a model id string, not {model_id!r}")
    existing, _ = _find(entries, aliases, info.name, model_id)
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
            **changes,
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
    from orkestra.catalog.cost import price_of  # cost.py imports this module

    try:
        price_of(model)
    except PricingError:
        raise PricingError(
            f"{where}: no price known for {model.provider} model {model.id!r}; give "
            "input_price and output_price (USD per 1M tokens)"
        ) from None


_warned: set[tuple[str, str]] = set()


def _warn_once(provider: str, name: str, message: str) -> None:
    if (provider, name) in _warned:
        return
    _warned.add((provider, name))
    warnings.warn(f"{provider} model {name!r}: {message}", ModelAliasWarning, stacklevel=4)


# -- the process-wide catalog -----------------------------------------------------------


@dataclass(frozen=True)
class _Override:
    """One model added or changed by register_model() or the ORKESTRA_CATALOG file."""

    provider: str
    spec: Mapping[str, Any]
    tier: Tier | None
    where: str


class _Registry:
    """register_model()'s entries, and a generation that changes with them (the cache key)."""

    def __init__(self) -> None:
        self.overrides: list[_Override] = []
        self.generation = 0
        self.lock = threading.Lock()


_registry = _Registry()


def register_model(
    provider: str,
    model_id: str,
    *,
    tier: Tier | None = None,
    input_price: float | None = None,
    output_price: float | None = None,
    cached_input_price: float | None = None,
    context_window: int | None = None,
    max_output_tokens: int | None = None,
    capabilities: Iterable[str] | None = None,
    reasoning: bool | None = None,
) -> None:
    """Add or override a model in the process-wide catalog (:func:`default_catalog`).

    For a fine-tuned model, a negotiated price or a model of your own server. ``tier`` makes it
    serve that tier (a provider with no tiers gets all three from it until others are given).
    Checked now: a bad entry raises :class:`ConfigurationError` (:class:`PricingError` for a
    new model with no price). Providers made before the call keep the catalog they were made
    with.

    >>> register_model("openai", "ft:gpt-4o-mini:acme::abc123", input_price=0.3,
    ...                output_price=1.2, capabilities=["tools", "json"])
    """
    spec: dict[str, Any] = {"id": model_id}
    for key, value in (
        ("input_price", input_price),
        ("output_price", output_price),
        ("cached_input_price", cached_input_price),
        ("context_window", context_window),
        ("max_output_tokens", max_output_tokens),
        ("capabilities", None if capabilities is None else list(capabilities)),
        ("reasoning", reasoning),
    ):
        if value is not None:
            spec[key] = value
    where = f"register_model({provider!r}, {model_id!r})"
    override = _Override(provider, spec, None if tier is None else _tier(tier, where), where)
    with _registry.lock:
        _apply(default_catalog(), [override])  # raises on a bad entry, before it is kept
        _registry.overrides.append(override)
        _registry.generation += 1


def _reset_registered() -> None:
    """Forget every register_model() entry (for tests)."""
    with _registry.lock:
        _registry.overrides.clear()
        _registry.generation += 1


def _apply(catalog: Catalog, overrides: Iterable[_Override]) -> Catalog:
    """``catalog`` with ``overrides`` applied in order; the tiers they name are set last, and
    a provider left with missing tiers has them filled from its nearest ones."""
    entries = dict(catalog.models)
    tiers: dict[str, dict[Tier, str]] = {}
    for o in overrides:
        try:
            info = catalog.provider(o.provider)
        except UnknownProviderError as e:
            raise UnknownProviderError(f"{o.where}: {e}") from None
        entry = _entry(info, o.spec, entries, catalog.aliases, o.where)
        entries[(o.provider, entry.id)] = entry
        if o.tier is not None:
            tiers.setdefault(o.provider, dict(info.tiers))[o.tier] = entry.id
    providers = dict(catalog.providers)
    for name, given in tiers.items():
        providers[name] = dataclasses.replace(providers[name], tiers=_fill(given))
    result = Catalog(catalog.as_of, providers, entries, catalog.aliases)
    result._check()
    return result


@cache
def bundled_catalog() -> Catalog:
    """The catalog shipped with orkestra, without any user entries."""
    text = resources.files("orkestra.catalog").joinpath("models.json").read_text("utf-8")
    return Catalog.from_dict(json.loads(text))


def default_catalog() -> Catalog:
    """The process-wide catalog: the bundled one, then the ``ORKESTRA_CATALOG`` file's
    entries, then :func:`register_model`'s. Built once and kept until either changes."""
    return _built(os.environ.get("ORKESTRA_CATALOG") or None, _registry.generation)


@lru_cache(maxsize=4)
def _built(path: str | None, generation: int) -> Catalog:
    catalog = bundled_catalog()
    if path is not None:
        try:
            catalog = _apply(catalog, _file_overrides(Path(path)))
        except DataFormatError:
            raise
        except ConfigurationError as e:
            raise DataFormatError(str(e)) from e
    return _apply(catalog, list(_registry.overrides))


def _toml() -> Any:
    """tomllib (Python 3.11+), else tomli."""
    from importlib import import_module

    for module in ("tomllib", "tomli"):
        try:
            return import_module(module)
        except ModuleNotFoundError:
            continue
    raise DataFormatError("reading an ORKESTRA_CATALOG .toml file on Python 3.10 needs tomli")


def _file_overrides(path: Path) -> list[_Override]:
    """The ``[[models]]`` entries of an ORKESTRA_CATALOG file (JSON: ``{"models": [...]}``)."""
    name = f"ORKESTRA_CATALOG file {path}"
    if path.suffix not in (".json", ".toml"):
        raise DataFormatError(f"{name}: must end in .json or .toml")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataFormatError(f"{name}: cannot be read ({e.strerror})") from None
    loads = _toml().loads if path.suffix == ".toml" else json.loads
    try:
        data = loads(raw.decode("utf-8"))
    except ValueError as e:  # TOMLDecodeError, JSONDecodeError and UnicodeDecodeError are
        raise DataFormatError(f"{name}: not valid {path.suffix[1:].upper()}: {e}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(data, dict) or set(data) != {"models"} or not isinstance(models, list):
        raise DataFormatError(
            f"{name}: expected only a list of models ([[models]] entries in TOML, "
            '{"models": [...]} in JSON)'
        )
    overrides = []
    for i, entry in enumerate(models):
        where = f"{name}: models[{i}]"
        if not isinstance(entry, dict):
            raise DataFormatError(f"{where}: must be a table of provider, id, ...")
        item = dict(entry)
        provider, tier = item.pop("provider", None), item.pop("tier", None)
        if isinstance(item.get("id"), str):
            where += (
                f" ({provider}/{item['id']})" if isinstance(provider, str) else f" ({item['id']})"
            )
        if not isinstance(provider, str):
            raise DataFormatError(f"{where}: 'provider' must be a provider name")
        overrides.append(
            _Override(provider, item, None if tier is None else _tier(tier, where), where)
        )
    return overrides
