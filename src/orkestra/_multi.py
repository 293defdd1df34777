"""``orkestra.MultiProvider``: route across several providers with a strategy."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence

from orkestra._conversation import Messages, Prompt, prompt_text, resolve_input
from orkestra._hooked import HookedCalls
from orkestra._provider import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    Provider,
    ResponseStream,
    validate_knob,
    validate_request,
)
from orkestra._types import Response, RoutingDecision
from orkestra.errors import ConfigurationError
from orkestra.hooks import (
    CallData,
    Hooks,
    Notify,
)
from orkestra.resilience.breaker import CircuitBreaker, default_breaker
from orkestra.resilience.budget import Budget, as_budget
from orkestra.resilience.call import Call
from orkestra.resilience.executor import Target
from orkestra.resilience.fallback import resolve_fallback
from orkestra.resilience.plan import plan_targets
from orkestra.resilience.retry import RetryPolicy
from orkestra.routing.policy import Router, TierPrediction
from orkestra.strategies import Option, get_strategy

__all__ = ["MultiProvider"]


class MultiProvider(HookedCalls):
    """Several providers behind one router and a strategy (``cheapest``, ``smartest``,
    ``balanced``).

    The prompt is embedded once; each provider routes it within its own models; the strategy
    picks among those routed models by tier and expected cost.

    A failing call falls back first to the same tier at the other providers (cheapest expected
    cost first), then to the adjacent tiers in ``fallback`` order (see :class:`Provider`).

    Args:
        providers: the providers to route across.
        strategy: ``"cheapest"``, ``"smartest"`` or ``"balanced"``.
        retry: the :class:`RetryPolicy` of this router's calls (default: ``RetryPolicy()``).
        fallback: the tier order after the same tier (``"up-then-down"``...; ``"same-tier"``:
            other providers only; ``"none"``: no fallback).
        budget: a spend cap in dollars for calls made through this router, or a :class:`Budget`
            (each provider's own budget applies too).
        circuit_breaker: default: the process-wide one.
        quality: the cost/quality knob (0..1) for every call that gives none (default: each
            provider's own setting, else the router's calibrated one).
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        strategy: str = "cheapest",
        retry: RetryPolicy | None = None,
        fallback: str | None = None,
        budget: Budget | float | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        quality: float | None = None,
    ) -> None:
        providers = list(providers)
        if not providers:
            raise ConfigurationError("MultiProvider needs at least one Provider")
        for p in providers:
            if not isinstance(p, Provider):
                raise ConfigurationError(
                    f"MultiProvider takes Provider objects, not {type(p).__name__}"
                )
        self.providers = providers
        self.strategy = get_strategy(strategy).name
        self.retry = retry if retry is not None else RetryPolicy()
        self.fallback = resolve_fallback(fallback, self.retry.max_retries)
        self.budget = as_budget(budget, name="multi")
        self.circuit_breaker = circuit_breaker or default_breaker()
        self.quality = None if quality is None else validate_knob(quality)
        self.hooks = Hooks()

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.providers)
        return f"MultiProvider([{names}], strategy={self.strategy!r})"

    def options(self, prompt: str, *, quality: float | None = None) -> list[Option]:
        """Each provider's routed model for ``prompt`` (one prediction per distinct router)."""
        validate_request(prompt, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE)
        started = time.perf_counter()
        predictions: dict[int, tuple[Router, TierPrediction]] = {}
        options = []
        for provider in self.providers:
            if provider.smart_routing:
                router = provider.router
                if id(router) not in predictions:
                    predictions[id(router)] = (router, router.predict(prompt))
                prediction = predictions[id(router)][1]
                decision = provider.decide(prompt, prediction, quality=quality, started=started)
            else:
                decision = provider.route(prompt)
            cost = next(
                (c.expected_cost for c in decision.candidates if c.model == decision.model), 0.0
            )
            options.append(Option(decision, cost))
        return options

    def route(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        quality: float | None = None,
    ) -> RoutingDecision:
        """The provider and model ``prompt`` (or the last user turn of ``messages``) would go
        to, and why; no model is called."""
        prompt, _ = resolve_input(prompt, messages)
        quality = self.quality if quality is None else quality
        started = time.perf_counter()
        chosen_strategy = get_strategy(strategy or self.strategy)
        options = self.options(prompt, quality=quality)
        chosen, why = chosen_strategy.select(options)
        others = [o.decision.candidates for o in options]
        return dataclasses.replace(
            chosen.decision,
            strategy=chosen_strategy.name,
            reason=f"{chosen_strategy.name}: {why}; within {chosen.decision.provider}: "
            f"{chosen.decision.reason}",
            candidates=tuple(c for group in others for c in group),
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    def _provider(self, decision: RoutingDecision) -> Provider:
        return next(p for p in self.providers if p.name == decision.provider)

    def plan(
        self, decision: RoutingDecision, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS
    ) -> list[Target]:
        """The models a call of ``decision`` would try, in order; no model is called."""
        self._provider(decision).adapter  # noqa: B018 - fail on a missing key before any work
        return plan_targets(
            decision,
            self.providers,
            prompt=prompt,
            max_tokens=max_tokens,
            order=self.fallback,
            budgets=[self.budget] if self.budget is not None else [],
        )

    def _call(self, prompt: Prompt, max_tokens: int, temperature: float) -> Call:
        return Call(
            self.providers,
            prompt,
            max_tokens,
            temperature,
            policy=self.retry,
            breaker=self.circuit_breaker,
        )

    def chat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        quality: float | None = None,
    ) -> Response:
        """Pick a provider and model with the strategy, call it, return the answer."""
        data = self._call_data(prompt, messages, strategy, max_tokens, temperature, quality)
        return self._hooked_chat(data)

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        quality: float | None = None,
    ) -> ResponseStream:
        data = self._call_data(prompt, messages, strategy, max_tokens, temperature, quality)
        return self._hooked_stream(data)

    def _call_data(
        self,
        prompt: str | None,
        messages: Messages | None,
        strategy: str | None,
        max_tokens: int,
        temperature: float,
        quality: float | None,
    ) -> CallData:
        return {
            "provider": None,
            "prompt": prompt,
            "messages": messages,
            "model": None,
            "strategy": strategy,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "quality": quality,
            "stream": False,
        }

    def _prepare(self, d: CallData, notify: Notify) -> tuple[Call, list[Target], RoutingDecision]:
        text, conversation = resolve_input(d["prompt"], d["messages"])
        validate_request(text, d["max_tokens"], d["temperature"])
        decision = self.route(text, strategy=d["strategy"], quality=d["quality"])
        notify("on_route", decision=decision)
        call = self._call(conversation or text, d["max_tokens"], d["temperature"])
        targets = self.plan(decision, prompt_text(conversation or text), max_tokens=d["max_tokens"])
        return call, targets, decision

    def stream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        quality: float | None = None,
    ) -> Iterator[str]:
        return iter(
            self.stream(
                prompt,
                messages=messages,
                strategy=strategy,
                max_tokens=max_tokens,
                temperature=temperature,
                quality=quality,
            )
        )

    def close(self) -> None:
        for p in self.providers:
            p.close()
