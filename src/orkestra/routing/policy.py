"""From predicted quality per tier to one model: the router's decision rule.

A router (:class:`Router`) only predicts: quality per tier for a prompt, and how long the answer
will be. This module turns that prediction plus the catalog's prices into a choice, the same way
for every router and every provider:

    pick the cheapest tier whose predicted quality is at least ``knob`` × the best tier's.

``knob`` (the *quality* setting, 0..1) is the one cost/quality dial: 1 means "only the best
predicted tier will do", 0 means "always the cheapest". Pure functions; no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from orkestra._types import TIERS, Candidate, Neighbor, RoutingDecision, Tier
from orkestra.catalog import ModelInfo, price_of

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "ConstantRouter",
    "Router",
    "TierPrediction",
    "choose",
    "estimate_input_tokens",
]

DEFAULT_OUTPUT_TOKENS = 1000
"""Answer length assumed when a router does not predict one (the seed README's cost simulation)."""


@dataclass(frozen=True)
class TierPrediction:
    """What a router predicts for one prompt."""

    scores: Mapping[Tier, float]
    """Predicted quality (0..1) per tier."""
    expected_output_tokens: int | None = None
    neighbors: tuple[Neighbor, ...] = ()
    latency_ms: float = 0.0


class Router(Protocol):
    """Anything that predicts quality per tier for a prompt."""

    @property
    def id(self) -> str: ...

    @property
    def default_knob(self) -> float: ...

    def predict(self, prompt: str) -> TierPrediction: ...


@dataclass(frozen=True)
class ConstantRouter:
    """A router that predicts the same scores for every prompt (tests, fixed policies)."""

    scores: Mapping[Tier, float]
    default_knob: float = 1.0
    id: str = "constant"

    def predict(self, prompt: str) -> TierPrediction:
        start = time.perf_counter()
        return TierPrediction(dict(self.scores), latency_ms=(time.perf_counter() - start) * 1000.0)


def estimate_input_tokens(prompt: str) -> int:
    """A provider-neutral guess of the prompt's token count (~4 characters per token)."""
    return max(1, (len(prompt) + 3) // 4)


def choose(
    provider: str,
    tier_models: Mapping[Tier, ModelInfo],
    prediction: TierPrediction,
    *,
    knob: float,
    input_tokens: int,
    started: float | None = None,
    allowed: Sequence[Tier] = TIERS,
) -> RoutingDecision:
    """The cheapest allowed tier whose predicted quality is ≥ ``knob`` × the best allowed one's."""
    output_tokens = prediction.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
    candidates = tuple(
        Candidate(
            provider=provider,
            model=tier_models[tier].id,
            tier=tier,
            predicted_quality=float(prediction.scores.get(tier, 0.0)),
            expected_cost=price_of(tier_models[tier]).estimate(input_tokens, output_tokens),
        )
        for tier in allowed
    )
    best = max(c.predicted_quality for c in candidates)
    good_enough = [c for c in candidates if c.predicted_quality >= knob * best - 1e-12]
    chosen = min(good_enough, key=lambda c: (c.expected_cost, -c.predicted_quality))
    if len(good_enough) == 1:
        reason = f"only {chosen.tier} is predicted to reach {knob:.0%} of the best quality"
    elif chosen.predicted_quality >= best:
        reason = f"{chosen.tier} is predicted best and is the cheapest such tier"
    else:
        reason = (
            f"{chosen.tier} is the cheapest tier predicted within {knob:.0%} of the best "
            f"({chosen.predicted_quality:.2f} vs {best:.2f})"
        )
    latency = prediction.latency_ms
    if started is not None:
        latency = (time.perf_counter() - started) * 1000.0
    return RoutingDecision(
        provider=provider,
        model=chosen.model,
        tier=chosen.tier,
        scores={tier: float(prediction.scores.get(tier, 0.0)) for tier in TIERS},
        knob=knob,
        reason=reason,
        latency_ms=latency,
        candidates=candidates,
        neighbors=prediction.neighbors,
        expected_output_tokens=prediction.expected_output_tokens,
    )
