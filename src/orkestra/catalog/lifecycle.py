"""Coming retirements: which tier models retire soon, and whether their successors are ready.

A tier moves to its model's successor by itself on the retirement date (the catalog is dated
data), so nothing breaks on that day, but the model, its price and its answers change. These
notices say so ahead of time: ``orkestra models --check`` lists them (and exits 1), and a
:class:`~orkestra.errors.ModelRetirementWarning` is emitted once when a Provider is made.

>>> for notice in upcoming_retirements(on=dt.date(2026, 12, 3)):  # doctest: +SKIP
...     print(notice.message)
openai premium model o3 retires on 2026-12-11 (in 8 days); from then on orkestra sends
gpt-5.6-sol ($2.00 / $8.00 → $4.00 / $20.00 per 1M tokens in / out)
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from orkestra._types import TIERS, Tier
from orkestra.catalog._catalog import Catalog
from orkestra.catalog._default import default_catalog
from orkestra.catalog._types import ModelInfo, Price, today
from orkestra.catalog.cost import price_of
from orkestra.errors import ModelRetirementWarning, PricingError

__all__ = ["DEFAULT_NOTICE_DAYS", "RetirementNotice", "upcoming_retirements", "warn_retirements"]

DEFAULT_NOTICE_DAYS = 30
"""How far ahead a coming retirement is reported."""


@dataclass(frozen=True)
class RetirementNotice:
    """A tier whose model retires within the notice period, or whose successor has no price."""

    provider: str
    tier: Tier
    model: str
    retires: dt.date
    days_left: int
    successor: str | None
    price: Price | None
    """The retiring model's price (None: unpriced)."""
    successor_price: Price | None
    """The successor's price on its first day (None: unpriced, or no successor)."""

    @property
    def successor_unpriced(self) -> bool:
        return self.successor is not None and self.successor_price is None

    @property
    def message(self) -> str:
        when = f"in {self.days_left} day{'' if self.days_left == 1 else 's'}"
        head = f"{self.provider} {self.tier} model {self.model} retires on {self.retires} ({when})"
        if self.successor is None:
            return f"{head} and has no successor in the catalog: give the tier a model"
        if self.successor_price is None:
            return (
                f"{head}; its successor {self.successor} has no price, so calls will fail "
                "with PricingError from then on: add one with "
                "orkestra.catalog.register_model() or an ORKESTRA_CATALOG file"
            )
        change = ""
        if self.price is not None:
            change = f" ({_fmt(self.price)} → {_fmt(self.successor_price)} per 1M tokens in / out)"
        return f"{head}; from then on orkestra sends {self.successor}{change}"


def _fmt(price: Price) -> str:
    return f"${price.input:.2f} / ${price.output:.2f}"


def _price(model: ModelInfo, day: dt.date) -> Price | None:
    try:
        return price_of(model, on=day)
    except PricingError:
        return None


def upcoming_retirements(
    catalog: Catalog | None = None,
    *,
    on: dt.date | None = None,
    within_days: int = DEFAULT_NOTICE_DAYS,
    providers: Iterable[str] | None = None,
) -> list[RetirementNotice]:
    """Every tier model (of ``providers``, default all) that retires within ``within_days`` of
    ``on`` (default: the catalog's today), or at any later date to a successor with no price,
    in date order."""
    catalog = catalog or default_catalog()
    day = on or today()
    notices = []
    for name in providers if providers is not None else catalog.providers:
        info = catalog.provider(name)
        for tier in TIERS:
            if tier not in info.tiers:
                continue
            model = catalog.tier_model(name, tier, on=day)
            if model.retires is None:
                continue
            successor = (
                catalog.resolve(name, model.successor, on=model.retires).model
                if model.successor
                else None
            )
            successor_price = _price(successor, model.retires) if successor else None
            soon = (model.retires - day).days <= within_days
            if not soon and (successor is None or successor_price is not None):
                continue
            notices.append(
                RetirementNotice(
                    provider=name,
                    tier=tier,
                    model=model.id,
                    retires=model.retires,
                    days_left=(model.retires - day).days,
                    successor=successor.id if successor else None,
                    price=_price(model, day),
                    successor_price=successor_price,
                )
            )
    return sorted(notices, key=lambda n: (n.retires, n.provider, TIERS.index(n.tier)))


_warned: set[tuple[str, str]] = set()


def warn_retirements(catalog: Catalog, provider: str) -> None:
    """Warn once per process and model (:class:`ModelRetirementWarning`) about ``provider``'s
    coming retirements. Never raises: a catalog problem surfaces when the model is used."""
    try:
        notices = upcoming_retirements(catalog, providers=[provider])
    except Exception:
        return
    for notice in notices:
        if (notice.provider, notice.model) in _warned:
            continue
        _warned.add((notice.provider, notice.model))
        warnings.warn(notice.message, ModelRetirementWarning, stacklevel=3)
