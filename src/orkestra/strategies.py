"""Multi-provider strategies: given each provider's routed model, pick one.

Every provider of a ``MultiProvider`` first routes the prompt within its own models (one shared
embedding). A strategy then chooses among those routed options using only the catalog: the tier
each option serves and its expected cost from current prices. No provider order is hard-coded.

- ``cheapest``: the lowest expected cost (ties: the higher tier).
- ``smartest``: the highest tier (ties: the lower expected cost).
- ``balanced``: the tier closest to "balanced" (ties: the lower expected cost).

A new strategy is a small class with a ``select`` method, registered in :data:`STRATEGIES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orkestra._types import TIERS, RoutingDecision
from orkestra.errors import UnknownStrategyError

__all__ = ["STRATEGIES", "Option", "Strategy", "get_strategy"]


@dataclass(frozen=True)
class Option:
    """One provider's routed choice."""

    decision: RoutingDecision
    expected_cost: float

    @property
    def tier_rank(self) -> int:
        return TIERS.index(self.decision.tier)

    def describe(self) -> str:
        d = self.decision
        return f"{d.provider}/{d.model} ({d.tier}, ~${self.expected_cost:.6f})"


class Strategy(Protocol):
    name: str

    def select(self, options: Sequence[Option]) -> tuple[Option, str]:
        """The chosen option and a one-sentence reason."""
        ...


class Cheapest:
    name = "cheapest"

    def select(self, options: Sequence[Option]) -> tuple[Option, str]:
        best = min(options, key=lambda o: (o.expected_cost, -o.tier_rank))
        return best, f"the lowest expected cost of the routed models: {best.describe()}"


class Smartest:
    name = "smartest"

    def select(self, options: Sequence[Option]) -> tuple[Option, str]:
        best = min(options, key=lambda o: (-o.tier_rank, o.expected_cost))
        return best, f"the highest routed tier, cheapest first: {best.describe()}"


class Balanced:
    name = "balanced"

    def select(self, options: Sequence[Option]) -> tuple[Option, str]:
        middle = TIERS.index("balanced")
        best = min(options, key=lambda o: (abs(o.tier_rank - middle), o.expected_cost))
        return (
            best,
            f"the routed model closest to the balanced tier, cheapest first: {best.describe()}",
        )


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Cheapest(), Smartest(), Balanced())}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in STRATEGIES)
        raise UnknownStrategyError(f"unknown strategy {name!r}; choose one of {known}") from None
