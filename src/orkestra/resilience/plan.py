"""From a routing decision to the ordered :class:`Target` list a :class:`Flow` runs.

Shared by ``Provider`` and ``MultiProvider``: the candidates are the decision's own
(``RoutingDecision.candidates``: every model the router weighed), or, for a decision made
without the router, each provider's tier models from the catalog. Expected costs come from the
catalog's prices for this prompt and the router's predicted output length; what an attempt
reserves on its budgets is its worst case (:func:`~orkestra.resilience.budget.worst_case_cost`:
the prompt's token bound and the whole ``max_tokens``). Near a budget's cap the cheapest
candidate becomes the first one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orkestra._options import can_serve
from orkestra._types import TIERS, Candidate, RoutingDecision, Tier
from orkestra.catalog import Catalog, ModelInfo, price_of
from orkestra.resilience.budget import (
    Budget,
    input_token_bound,
    process_budget,
    worst_case_cost,
)
from orkestra.resilience.executor import Target
from orkestra.resilience.fallback import cheapest, fallback_chain
from orkestra.routing.policy import DEFAULT_OUTPUT_TOKENS, estimate_input_tokens

__all__ = ["Reachable", "plan_targets"]


@dataclass(frozen=True)
class Reachable:
    """What planning needs to know of one provider, as plain values: its name and catalog, its
    own budget, and whether it has a key (a provider without one is no fallback)."""

    name: str
    catalog: Catalog
    budget: Budget | None = None
    has_key: bool = True

    def tier_models(self) -> dict[Tier, ModelInfo]:
        return {tier: self.catalog.tier_model(self.name, tier) for tier in TIERS}

    def model(self, model_id: str) -> ModelInfo:
        return self.catalog.resolve(self.name, model_id).model


def _pool(
    decision: RoutingDecision, providers: Mapping[str, Reachable]
) -> list[tuple[str, str, Tier]]:
    """(provider, model, tier) of every candidate the decision allows, reachable providers only."""
    if decision.candidates:
        seen = [(c.provider, c.model, c.tier) for c in decision.candidates]
    else:
        seen = [
            (name, model.id, tier)
            for name, p in providers.items()
            for tier, model in p.tier_models().items()
        ]
    return [
        entry
        for entry in seen
        if entry[0] in providers and (entry[0] == decision.provider or providers[entry[0]].has_key)
    ]


def plan_targets(
    decision: RoutingDecision,
    providers: Sequence[Reachable],
    *,
    prompt: str = "",
    input_tokens: int | None = None,
    max_tokens: int,
    order: str,
    budgets: Sequence[Budget] = (),
    pinned: bool = False,
    needs: frozenset[str] = frozenset(),
    input_bound: int | None = None,
    prefer_cheaper: bool = True,
) -> list[Target]:
    """The routed model first, then its fallbacks in ``order``; each with the budgets it counts
    against (``budgets`` — e.g. a ``MultiProvider``'s —, its provider's, the process's).

    ``needs``: capabilities the request needs; fallbacks without them are left out.
    ``pinned``: the caller named the model; it is neither swapped near a budget's cap nor
    followed by fallbacks. ``input_bound``: the most tokens the prompt can be
    (:func:`~orkestra.resilience.budget.input_token_bound`; default: from ``prompt`` alone).
    ``prefer_cheaper=False``: never swap the model for the cheapest candidate near a budget's
    cap (a cascade climbing to a stronger model must not be sent back down).
    """
    by_name = {p.name: p for p in providers}
    if input_tokens is None:  # a call passes the estimate it made when it read its input
        input_tokens = estimate_input_tokens(prompt)
    bound = input_token_bound(prompt) if input_bound is None else input_bound
    output_tokens = min(max_tokens, decision.expected_output_tokens or DEFAULT_OUTPUT_TOKENS)
    models: dict[tuple[str, str], ModelInfo] = {}

    def candidate(provider: str, model_id: str, tier: Tier) -> Candidate:
        model = models.setdefault((provider, model_id), by_name[provider].model(model_id))
        expected = price_of(model).estimate(input_tokens, output_tokens)
        quality = float(decision.scores.get(tier, 0.0))
        return Candidate(provider, model.id, tier, quality, expected)

    def budgets_of(provider: str) -> tuple[Budget, ...]:
        own = by_name[provider].budget
        chain = [*budgets, *([own] if own is not None else []), process_budget()]
        return tuple(dict.fromkeys(chain))  # one reservation per budget, even if shared

    primary = candidate(decision.provider, decision.model, decision.tier)
    pool = [] if pinned else [candidate(*entry) for entry in _pool(decision, by_name)]
    # Fallbacks only go to models that can serve the request (tools, vision, JSON, context).
    pool = [
        c
        for c in pool
        if can_serve(models[(c.provider, c.model)], needs, input_tokens)
        or (c.provider, c.model) == (primary.provider, primary.model)
    ]

    def hold(c: Candidate) -> float:
        return worst_case_cost(models[(c.provider, c.model)], bound, max_tokens)

    reason = decision.reason
    # Near the cap means: with the most this call could cost (not the likeliest), at least
    # the prefer_cheaper_at share of a cap would be spent or held.
    near_cap = prefer_cheaper and pool
    if near_cap and any(b.near_cap(hold(primary)) for b in budgets_of(primary.provider)):
        low = cheapest([primary, *pool])
        if low is not None and (low.provider, low.model) != (primary.provider, primary.model):
            reason = (
                f"a budget is near its cap: using the cheapest candidate instead of "
                f"{primary.provider}/{primary.model}; {decision.reason}"
            )
            primary = low
    chain = fallback_chain(primary, pool, "none" if pinned else order)
    # Savings are measured against each provider's premium model.
    bases = {
        c.provider: by_name[c.provider].catalog.tier_model(c.provider, "premium") for c in chain
    }
    return [
        Target(
            decision=_decision_for(decision, c, reason, first=i == 0),
            model=models[(c.provider, c.model)],
            expected_cost=c.expected_cost,
            budgets=budgets_of(c.provider),
            base_model=bases[c.provider],
            hold=hold(c),
        )
        for i, c in enumerate(chain)
    ]


def _decision_for(
    decision: RoutingDecision, c: Candidate, reason: str, *, first: bool
) -> RoutingDecision:
    if (c.provider, c.model) == (decision.provider, decision.model) and reason == decision.reason:
        return decision
    if not first:
        reason = f"fallback from {decision.provider}/{decision.model}; {decision.reason}"
    return dataclasses.replace(
        decision, provider=c.provider, model=c.model, tier=c.tier, reason=reason
    )
