"""Which models a call may move to when its model keeps failing, in order. Pure data in, data out.

The chain is built from the routing decision's own candidates (every model the router weighed,
with its tier and expected cost), never from a hard-coded provider order:

1. the routed model;
2. the same tier at the other providers, cheapest expected cost first (``MultiProvider``);
3. the other tiers in the order ``fallback`` names, each tier cheapest first. The default,
   ``"up-then-down"``, tries the tiers above before the ones below: a stronger model is a safer
   substitute than a weaker one.

==================  ==========================================================
``fallback``         tiers tried after the routed one (from ``balanced``)
==================  ==========================================================
``"up-then-down"``   premium, budget
``"down-then-up"``   budget, premium
``"up"``             premium
``"down"``           budget
``"same-tier"``      none (other providers' model of the same tier only)
``"none"``           none: the routed model alone
==================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from orkestra._types import TIERS, Candidate, Tier
from orkestra.errors import InvalidRequestError

__all__ = ["DEFAULT_FALLBACK", "FALLBACK_ORDERS", "fallback_chain", "resolve_fallback"]

DEFAULT_FALLBACK = "up-then-down"


def _up(rank: int) -> list[Tier]:
    return list(TIERS[rank + 1 :])


def _down(rank: int) -> list[Tier]:
    return list(reversed(TIERS[:rank]))


FALLBACK_ORDERS: dict[str, Callable[[int], list[Tier]]] = {
    "up-then-down": lambda rank: _up(rank) + _down(rank),
    "down-then-up": lambda rank: _down(rank) + _up(rank),
    "up": _up,
    "down": _down,
    "same-tier": lambda rank: [],
    "none": lambda rank: [],
}


def resolve_fallback(fallback: str | None, max_retries: int) -> str:
    """The fallback order to use. ``None`` is the default order, except with ``max_retries=0``.

    ``max_retries=0`` has always meant "one attempt, and the error as it came": unless a
    ``fallback`` is named explicitly it still does.
    """
    if fallback is None:
        return "none" if max_retries == 0 else DEFAULT_FALLBACK
    if fallback not in FALLBACK_ORDERS:
        known = ", ".join(repr(name) for name in FALLBACK_ORDERS)
        raise InvalidRequestError(f"unknown fallback order {fallback!r}; choose one of {known}")
    return fallback


def fallback_chain(
    primary: Candidate, candidates: Iterable[Candidate], order: str
) -> list[Candidate]:
    """``primary`` first, then the candidates it may fall back to, in order, without repeats."""
    tiers_after = FALLBACK_ORDERS[order](TIERS.index(primary.tier))
    pool = list(candidates)
    chain = [primary]
    seen = {(primary.provider, primary.model)}

    def add(group: Sequence[Candidate]) -> None:
        for c in sorted(group, key=lambda c: c.expected_cost):
            if (c.provider, c.model) not in seen:
                seen.add((c.provider, c.model))
                chain.append(c)

    if order != "none":
        add([c for c in pool if c.tier == primary.tier])
    for tier in tiers_after:
        add([c for c in pool if c.tier == tier])
    return chain


def cheapest(candidates: Iterable[Candidate]) -> Candidate | None:
    """The candidate with the lowest expected cost (the budget's choice near its cap)."""
    return min(candidates, key=lambda c: c.expected_cost, default=None)
