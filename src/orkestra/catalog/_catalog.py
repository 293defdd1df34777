"""The model catalog: tiers, aliases, retirements, limits and parameter quirks, as data.

The data lives in ``models.json`` beside this module. Prices are not in it: they come from
``genai-prices`` (see :mod:`orkestra.catalog.cost`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from orkestra._types import TIERS, Tier
from orkestra.errors import ModelAliasWarning, UnknownModelError, UnknownProviderError

__all__ = ["Catalog", "ModelInfo", "ProviderInfo", "Resolution", "default_catalog", "today"]


def today() -> dt.date:
    """The date the catalog resolves retirements against.

    ``ORKESTRA_TODAY=YYYY-MM-DD`` overrides it (to preview a coming retirement, or in tests).
    """
    override = os.environ.get("ORKESTRA_TODAY")
    return dt.date.fromisoformat(override) if override else dt.date.today()


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

    def retired_on(self, day: dt.date) -> bool:
        return self.retires is not None and day >= self.retires


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    display_name: str
    env_keys: tuple[str, ...]
    env_base_url: str
    price_provider: str
    tiers: Mapping[Tier, str]
    supports_temperature: bool = True
    """Anthropic's API version 2026-10-21 rejects ``temperature``: it is never sent there."""


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
        providers = {
            name: ProviderInfo(
                name=name,
                display_name=p["display_name"],
                env_keys=tuple(p["env_keys"]),
                env_base_url=p["env_base_url"],
                price_provider=p["price_provider"],
                tiers={tier: p["tiers"][tier] for tier in TIERS},
                supports_temperature=bool(p.get("supports_temperature", True)),
            )
            for name, p in data["providers"].items()
        }
        models: dict[tuple[str, str], ModelInfo] = {}
        for m in data["models"]:
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
            )
            models[(info.provider, info.id)] = info
        aliases = {(a["provider"], a["alias"]): (a["model"], a["why"]) for a in data["aliases"]}
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
        for (provider, alias), (target, _) in self.aliases.items():
            if (provider, target) not in self.models:
                raise ValueError(f"catalog: alias {alias} points at unknown {target}")

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
        if (provider, name) in self.models:
            return self.models[(provider, name)], None
        for m in self.models.values():
            if m.provider == provider and name in m.snapshots:
                return m, None
        if (provider, name) in self.aliases:
            target, why = self.aliases[(provider, name)]
            return self.models[(provider, target)], why
        return None, None

    def resolve(self, provider: str, name: str, *, on: dt.date | None = None) -> Resolution:
        """The model actually sent for ``name``: aliases followed, retired models replaced.

        A model whose retirement date has come is replaced by its successor (repeatedly), so the
        library never sends a dead model id. Raises :class:`UnknownModelError` for a name the
        catalog does not know.
        """
        day = on or today()
        info, why = self._lookup(provider, name)
        if info is None:
            known = ", ".join(sorted(m.id for m in self.provider_models(provider)))
            raise UnknownModelError(
                f"unknown {provider} model {name!r}; known models: {known}. "
                "Add it to the catalog to use it (orkestra needs its price and limits)."
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
        """The model serving ``tier`` for ``provider`` today (successors applied silently)."""
        return self.resolve(provider, self.provider(provider).tiers[tier], on=on).model

    def tier_of(self, provider: str, model_id: str, *, on: dt.date | None = None) -> Tier | None:
        """The tier ``model_id`` serves today, or None if it serves none."""
        for tier in TIERS:
            if self.tier_model(provider, tier, on=on).id == model_id:
                return tier
        return None


_warned: set[tuple[str, str]] = set()


def _warn_once(provider: str, name: str, message: str) -> None:
    if (provider, name) in _warned:
        return
    _warned.add((provider, name))
    warnings.warn(f"{provider} model {name!r}: {message}", ModelAliasWarning, stacklevel=4)


@cache
def default_catalog() -> Catalog:
    """The catalog bundled with orkestra."""
    text = resources.files("orkestra.catalog").joinpath("models.json").read_text("utf-8")
    return Catalog.from_dict(json.loads(text))
