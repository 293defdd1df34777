"""The process-wide catalog: the bundled data, then the ``ORKESTRA_CATALOG`` file's entries,
then :func:`register_model`'s.

Entries are applied one at a time onto a working copy of the models (:class:`_Layer`), so a
file of N entries loads in time linear in N, and each :func:`register_model` call adds one
entry instead of rebuilding the catalog with every earlier one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from orkestra._types import Tier
from orkestra.catalog._catalog import Catalog
from orkestra.catalog._entries import as_tier, fill_tiers, model_entry
from orkestra.errors import ConfigurationError, DataFormatError, UnknownProviderError

__all__ = ["bundled_catalog", "default_catalog", "register_model"]


@dataclass(frozen=True)
class _Override:
    """One model added or changed by register_model() or the ORKESTRA_CATALOG file."""

    provider: str
    spec: Mapping[str, Any]
    tier: Tier | None
    where: str


class _Layer:
    """User entries applied over a catalog one at a time, each checked as it comes, with the
    effect of applying them together: the tiers they name are set over the base's, and a
    provider left with missing tiers gets them from its nearest ones."""

    def __init__(self, base: Catalog) -> None:
        self.base = base
        self.table = base.table()
        self.tiers: dict[str, dict[Tier, str]] = {}
        self._catalog: Catalog | None = base

    def add(self, o: _Override) -> None:
        """Apply one entry; a bad one raises and leaves the layer as it was."""
        try:
            info = self.base.provider(o.provider)
        except UnknownProviderError as e:
            raise UnknownProviderError(f"{o.where}: {e}") from None
        entry = model_entry(info, o.spec, self.table, o.where)
        self.table.add(entry)
        if o.tier is not None:
            self.tiers.setdefault(o.provider, dict(info.tiers))[o.tier] = entry.id
        self._catalog = None

    def catalog(self) -> Catalog:
        """The base with every entry so far (built once per change)."""
        if self._catalog is None:
            providers = dict(self.base.providers)
            for name, given in self.tiers.items():
                providers[name] = dataclasses.replace(providers[name], tiers=fill_tiers(given))
            # No whole-catalog _check(): each entry was checked by model_entry, and entries
            # only add or replace models, so every reference the base had still holds.
            self._catalog = Catalog(
                self.base.as_of, providers, dict(self.table.models), self.base.aliases
            )
        return self._catalog


class _Registry:
    """register_model()'s entries, and the layer they are applied in for the current
    ``ORKESTRA_CATALOG`` path (rebuilt when the path changes or the entries are reset)."""

    def __init__(self) -> None:
        self.overrides: list[_Override] = []
        self.lock = threading.Lock()
        self._layer: tuple[str | None, _Layer] | None = None

    def layer(self, path: str | None) -> _Layer:
        """The layer for ``path`` (call with the lock held)."""
        if self._layer is None or self._layer[0] != path:
            layer = _Layer(_file_catalog(path))
            for o in self.overrides:
                layer.add(o)
            self._layer = (path, layer)
        return self._layer[1]

    def reset(self) -> None:
        self.overrides.clear()
        self._layer = None


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
    unsupported_params: Iterable[str] | None = None,
) -> None:
    """Add or override a model in the process-wide catalog (:func:`default_catalog`).

    For a fine-tuned model, a negotiated price or a model of your own server. ``tier`` makes it
    serve that tier (a provider with no tiers gets all three from it until others are given).
    ``unsupported_params``: the optional call parameters (``stop``, ``seed``...) the model
    cannot take (default: its provider's). Checked now: a bad entry raises
    :class:`ConfigurationError` (:class:`PricingError` for a new model with no price).
    Providers made before the call keep the catalog they were made with.

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
        ("unsupported_params", None if unsupported_params is None else list(unsupported_params)),
    ):
        if value is not None:
            spec[key] = value
    where = f"register_model({provider!r}, {model_id!r})"
    override = _Override(provider, spec, None if tier is None else as_tier(tier, where), where)
    path = _catalog_path()
    with _registry.lock:
        _registry.layer(path).add(override)  # raises on a bad entry, before it is kept
        _registry.overrides.append(override)


def _reset_registered() -> None:
    """Forget every register_model() entry (for tests)."""
    with _registry.lock:
        _registry.reset()


def _apply(catalog: Catalog, overrides: Iterable[_Override]) -> Catalog:
    """``catalog`` with ``overrides`` applied in order; the tiers they name are set last, and
    a provider left with missing tiers has them filled from its nearest ones."""
    layer = _Layer(catalog)
    for o in overrides:
        layer.add(o)
    result = layer.catalog()
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
    path = _catalog_path()
    with _registry.lock:
        return _registry.layer(path).catalog()


def _catalog_path() -> str | None:
    return os.environ.get("ORKESTRA_CATALOG") or None


@lru_cache(maxsize=4)
def _file_catalog(path: str | None) -> Catalog:
    """The bundled catalog with the ``ORKESTRA_CATALOG`` file's entries (read once per path)."""
    catalog = bundled_catalog()
    if path is None:
        return catalog
    try:
        return _apply(catalog, _file_overrides(Path(path)))
    except DataFormatError:
        raise
    except ConfigurationError as e:
        raise DataFormatError(str(e)) from e


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
    except RecursionError:  # both parsers recurse once per level of nesting
        raise DataFormatError(
            f"{name}: nested too deeply to be a catalog file (one needs 4 levels: "
            "models, their entries, a list of capabilities)"
        ) from None
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
            _Override(provider, item, None if tier is None else as_tier(tier, where), where)
        )
    return overrides
