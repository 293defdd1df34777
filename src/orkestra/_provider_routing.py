"""Routing within one provider's models: the router, the cost/quality knob, the tiers whose
model can serve a request (tools, vision, JSON, context), smart routing off, and a model named
by the caller. :class:`~orkestra.Provider` is this plus an endpoint, sessions and hooks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orkestra._call import read_input, validate_knob
from orkestra._conversation import Messages
from orkestra._options import can_serve, refusal
from orkestra._types import TIERS, Candidate, RoutingDecision, Tier
from orkestra.catalog import Catalog, ModelInfo, price_of, today
from orkestra.routing import default_router
from orkestra.routing.policy import (
    DEFAULT_OUTPUT_TOKENS,
    Router,
    TierPrediction,
    choose,
    estimate_input_tokens,
)

__all__ = ["ProviderRouting"]


class ProviderRouting:
    """The routing half of a :class:`~orkestra.Provider` (a mixin: it reads the attributes
    below, which the Provider sets)."""

    name: str
    catalog: Catalog
    smart_routing: bool
    default_model: str | None
    quality: float | None
    _router: Router | None

    def _cold_routers(self) -> list[Callable[[], object]]:
        if self.smart_routing and self._router is None:
            return [lambda: self.router]
        return []

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = default_router()
        return self._router

    def tier_models(self, *, on: dt.date | None = None) -> dict[Tier, ModelInfo]:
        """The model serving each tier on day ``on`` (default: the catalog's today)."""
        day = on or today()
        return {tier: self.catalog.tier_model(self.name, tier, on=day) for tier in TIERS}

    @property
    def premium_model(self) -> ModelInfo:
        return self.catalog.tier_model(self.name, "premium")

    def knob(self, quality: float | None = None) -> float:
        if quality is not None:
            return validate_knob(quality)
        return self.quality if self.quality is not None else self.router.default_knob

    def route(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        response_format: Any = None,
    ) -> RoutingDecision:
        """The model ``prompt`` (or the last user turn of ``messages``) would go to, and why;
        no model is called. With ``tools``/``response_format`` (or images in ``messages``) only
        models that support them are considered."""
        request = read_input(prompt, messages, tools=tools, response_format=response_format)
        return self.decide(
            request.text,
            None,
            quality=quality,
            started=time.perf_counter(),
            needs=request.needs,
            input_tokens=request.input_tokens,
        )

    def serving_tiers(
        self,
        needs: frozenset[str],
        input_tokens: int,
        models: Mapping[Tier, ModelInfo] | None = None,
    ) -> list[Tier]:
        """The tiers whose model can serve a request with these needs and prompt size."""
        models = models or self.tier_models()
        return [tier for tier in TIERS if can_serve(models[tier], needs, input_tokens)]

    def decide(
        self,
        prompt: str,
        prediction: TierPrediction | None,
        *,
        quality: float | None = None,
        started: float | None = None,
        needs: frozenset[str] = frozenset(),
        input_tokens: int | None = None,
    ) -> RoutingDecision:
        """The decision for ``prompt``, among the tiers whose model can serve the request
        (:class:`CapabilityError` if none can). ``prediction``: the router's, already made
        (a ``MultiProvider`` shares one between providers); None: made here."""
        tokens = estimate_input_tokens(prompt) if input_tokens is None else input_tokens
        if not self.smart_routing:
            return self._fixed_decision(started, needs, tokens)
        day = today()  # one day for the whole decision: its models and their prices
        models = self.tier_models(on=day)
        allowed = self.serving_tiers(needs, tokens, models)
        if not allowed:
            ids = ", ".join(dict.fromkeys(m.id for m in models.values()))
            raise refusal(f"{self.name} ({ids})", needs, tokens)
        if prediction is None:
            prediction = self.router.predict(prompt)
        return choose(
            self.name,
            models,
            prediction,
            knob=self.knob(quality),
            input_tokens=tokens,
            started=started,
            allowed=allowed,
            rule=getattr(self.router, "rule", "margin"),
            on=day,
        )

    def cascade_candidates(
        self, decision: RoutingDecision, needs: frozenset[str], input_tokens: int
    ) -> tuple[Candidate, ...]:
        """The models a cascade may climb: the decision's own candidates (the tiers that can
        serve the request), or, with smart routing off, every tier that can."""
        if decision.candidates:
            return decision.candidates
        models = self.tier_models()
        output = decision.expected_output_tokens or DEFAULT_OUTPUT_TOKENS
        return tuple(
            Candidate(
                self.name,
                models[tier].id,
                tier,
                float(decision.scores.get(tier, 0.0)),
                price_of(models[tier]).estimate(input_tokens, output),
            )
            for tier in self.serving_tiers(needs, input_tokens, models)
        )

    def _fixed_decision(
        self,
        started: float | None,
        needs: frozenset[str] = frozenset(),
        input_tokens: int = 0,
    ) -> RoutingDecision:
        model = (
            self.catalog.model(self.name, self.default_model)
            if self.default_model
            else self.catalog.tier_model(self.name, "balanced")
        )
        if not can_serve(model, needs, input_tokens):
            raise refusal(f"{self.name}/{model.id}", needs, input_tokens)
        tier = self.catalog.tier_of(self.name, model.id) or "balanced"
        return RoutingDecision(
            provider=self.name,
            model=model.id,
            tier=tier,
            scores={},
            knob=None,
            reason="smart routing is off: using the default model",
            latency_ms=0.0 if started is None else (time.perf_counter() - started) * 1000.0,
        )

    def _override(
        self,
        decision: RoutingDecision,
        model: str,
        needs: frozenset[str] = frozenset(),
        input_tokens: int = 0,
    ) -> RoutingDecision:
        info = self.catalog.model(self.name, model)
        if not can_serve(info, needs, input_tokens):
            raise refusal(f"{self.name}/{info.id}", needs, input_tokens)
        tier = self.catalog.tier_of(self.name, info.id) or decision.tier
        return dataclasses.replace(
            decision,
            model=info.id,
            tier=tier,
            reason=f"model {model!r} requested explicitly",
        )

    def _decision_for(
        self,
        prompt: str,
        model: str | None,
        quality: float | None,
        needs: frozenset[str] = frozenset(),
        input_tokens: int = 0,
    ) -> RoutingDecision:
        if model is not None:
            decision = self._fixed_decision(time.perf_counter())
            return self._override(decision, model, needs, input_tokens)
        return self.decide(
            prompt,
            None,
            quality=quality,
            started=time.perf_counter(),
            needs=needs,
            input_tokens=input_tokens,
        )
