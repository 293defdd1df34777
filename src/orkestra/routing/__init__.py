"""Routing: predict quality per tier for a prompt, then choose a model (see ``policy``)."""

from __future__ import annotations

from functools import cache

from orkestra.routing.policy import ConstantRouter, Router, TierPrediction, choose

__all__ = ["ConstantRouter", "Router", "TierPrediction", "choose", "default_router"]


@cache
def default_router() -> Router:
    """The router a ``Provider`` uses unless given one: the bundled KNN router (loaded once)."""
    from orkestra.routing.knn import KNNRouter

    return KNNRouter.load()
