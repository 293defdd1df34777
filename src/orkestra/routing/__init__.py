"""Routing: predict quality per tier for a prompt, then choose a model (see ``policy``)."""

from __future__ import annotations

from functools import cache

from orkestra.routing.policy import ConstantRouter, Router, TierPrediction, choose

__all__ = ["ConstantRouter", "Router", "TierPrediction", "choose", "default_router"]


@cache
def default_router() -> Router:
    """The router a ``Provider`` uses unless given one.

    Interim: a constant prediction that sends every prompt to the balanced tier (what the seed
    release did in practice) until the bundled KNN router is in place.
    """
    return ConstantRouter(
        {"budget": 0.70, "balanced": 0.85, "premium": 0.90}, default_knob=0.9, id="interim"
    )
