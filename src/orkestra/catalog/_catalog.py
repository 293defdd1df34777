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
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from orkestra._types import TIERS, Tier
from orkestra.catalog._entries import as_tier, fill_tiers, model_entry
from orkestra.catalog._types import (
    ADAPTER_NAMES,
    CAPABILITIES,
    ModelInfo,
    ModelTable,
    Price,
    ProviderInfo,
    Resolution,
    find_model,
    snapshot_index,
    today,
    unsupported_params,
)
from orkestra.errors import (
    ConfigurationError,
    ModelAliasWarning,
    UnknownModelError,
    UnknownProviderError,
)

__all__ = ["Catalog"]


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
                unsupported_params=unsupported_params(
                    m.get("unsupported_params", owner.unsupported_params), f"catalog: {m['id']}"
                ),
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

    @cached_property
    def snapshots(self) -> Mapping[tuple[str, str], tuple[str, str]]:
        """(provider, snapshot id) → (provider, id) of the model it is a snapshot of."""
        return snapshot_index(self.models)

    def table(self) -> ModelTable:
        """A copy of the models to add user entries to (:func:`model_entry`)."""
        return ModelTable(self.models, self.aliases, self.snapshots)

    def _lookup(self, provider: str, name: str) -> tuple[ModelInfo | None, str | None]:
        """The entry for an id, snapshot id or alias, and the alias explanation if any."""
        return find_model(self.models, self.snapshots, self.aliases, provider, name)

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
        entries = self.table()
        chosen: dict[Tier, str] = {}
        for key, value in models.items():
            tier = as_tier(key, f"models= for {provider}")
            entry = self._entry_for(info, value, entries, f"models[{key!r}] for {provider}")
            entries.add(entry)
            chosen[tier] = entry.id
        providers = {
            **self.providers,
            provider: dataclasses.replace(info, tiers=fill_tiers(chosen)),
        }
        catalog = Catalog(self.as_of, providers, entries.models, self.aliases)
        catalog._check()
        return catalog

    def _entry_for(
        self,
        info: ProviderInfo,
        value: object,
        entries: ModelTable,
        where: str,
    ) -> ModelInfo:
        """The entry a ``models=`` value names (an id) or describes (a dict)."""
        if isinstance(value, Mapping):
            return model_entry(info, value, entries, where)
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{where}: expected a model id or a dict with 'id', not {type(value).__name__}"
            )
        found, _ = entries.find(info.name, value)
        if found is not None:
            return found
        if info.compatible or not info.requires_key:
            return model_entry(info, {"id": value}, entries, where)
        known = ", ".join(sorted(m.id for (p, _), m in entries.models.items() if p == info.name))
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
        unsupported_params=unsupported_params(
            p.get("unsupported_params", ()), f"catalog: provider {name}"
        ),
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


_warned: set[tuple[str, str]] = set()


def _warn_once(provider: str, name: str, message: str) -> None:
    if (provider, name) in _warned:
        return
    _warned.add((provider, name))
    warnings.warn(f"{provider} model {name!r}: {message}", ModelAliasWarning, stacklevel=4)
