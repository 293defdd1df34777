"""From predicted quality per tier to one model: the router's decision rule.

A router (:class:`Router`) only predicts: quality per tier for a prompt, and how long the answer
will be. This module turns that prediction plus the catalog's prices into a choice, the same way
for every router and every provider:

    pick the cheapest tier whose predicted quality is at most ``1 − knob`` below the best
    tier's (the ``margin`` rule; ``ratio`` — at least ``knob`` × the best — is kept for
    comparison and measured worse on the validation split).

``knob`` (the *quality* setting, 0..1) is the one cost/quality dial: 1 means "only the best
predicted tier will do", 0 means "always the cheapest". Pure functions; no I/O.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from orkestra._types import TIERS, Candidate, Neighbor, RoutingDecision, Tier
from orkestra.catalog import ModelInfo, price_of

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "ConstantRouter",
    "Router",
    "TierPrediction",
    "choose",
    "estimate_input_tokens",
    "good_enough",
    "tier_choices",
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


def good_enough(score: float, best: float, knob: float, rule: str = "margin") -> bool:
    """Whether a predicted quality is close enough to the best one at this knob.

    ``ratio``: score ≥ knob × best. ``margin``: score ≥ best − (1 − knob).
    """
    if rule == "ratio":
        return score >= knob * best - 1e-9
    if rule == "margin":
        return score >= best - (1.0 - knob) - 1e-9
    raise ValueError(f"unknown decision rule {rule!r} (ratio, margin)")


def tier_choices(
    scores: npt.NDArray[np.float32], knob: float, rule: str = "margin"
) -> npt.NDArray[np.intp]:
    """Vectorised decision for many prompts: (n, tiers) predicted quality, tiers in cost order →
    the index of the cheapest good-enough tier per prompt (same rule as :func:`choose`)."""
    best = scores.max(axis=1, keepdims=True)
    if rule == "ratio":
        good = scores >= knob * best - 1e-9
    elif rule == "margin":
        good = scores >= best - (1.0 - knob) - 1e-9
    else:
        raise ValueError(f"unknown decision rule {rule!r} (ratio, margin)")
    choices: npt.NDArray[np.intp] = np.argmax(good, axis=1)
    return choices


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
    rule: str = "margin",
    on: dt.date | None = None,
) -> RoutingDecision:
    """The cheapest allowed tier whose predicted quality is close enough to the best (``rule``),
    at the prices of day ``on`` (default: the catalog's today)."""
    output_tokens = prediction.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
    candidates = tuple(
        Candidate(
            provider=provider,
            model=tier_models[tier].id,
            tier=tier,
            predicted_quality=float(prediction.scores.get(tier, 0.0)),
            expected_cost=price_of(tier_models[tier], on=on).estimate(input_tokens, output_tokens),
        )
        for tier in allowed
    )
    best = max(c.predicted_quality for c in candidates)
    good = [c for c in candidates if good_enough(c.predicted_quality, best, knob, rule)]
    # Equal cost (local models at $0, two tiers on one model): the lower tier, the smaller model.
    chosen = min(good, key=lambda c: (c.expected_cost, TIERS.index(c.tier)))
    slack = f"{1 - knob:.2f} of" if rule == "margin" else f"{knob:.0%} of"
    if len(good) == 1:
        reason = f"only {chosen.tier} is predicted within {slack} the best quality"
    elif chosen.predicted_quality >= best:
        reason = f"{chosen.tier} is predicted best and is the cheapest such tier"
    else:
        reason = (
            f"{chosen.tier} is the cheapest tier predicted within {slack} the best "
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
