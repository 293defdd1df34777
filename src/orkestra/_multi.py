"""``orkestra.MultiProvider``: route across several providers with a strategy."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from orkestra._call import Request, read_input, validate_knob, validate_request
from orkestra._cascade import CascadeCall, CascadePolicy, Cascades, ladder
from orkestra._conversation import Messages
from orkestra._hooked import CallArgs
from orkestra._multi_calls import MultiProviderCalls
from orkestra._options import refusal
from orkestra._provider import Provider
from orkestra._request import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from orkestra._session import Pin, Sessions, SessionStore
from orkestra._types import Candidate, RoutingDecision
from orkestra.errors import CapabilityError, ConfigurationError
from orkestra.hooks import Hooks, Notify
from orkestra.resilience.breaker import CircuitBreaker, default_breaker
from orkestra.resilience.budget import Budget, as_budget
from orkestra.resilience.call import Call
from orkestra.resilience.executor import Target
from orkestra.resilience.fallback import resolve_fallback
from orkestra.resilience.plan import plan_targets
from orkestra.resilience.retry import RetryPolicy
from orkestra.routing.policy import Router, TierPrediction, estimate_input_tokens
from orkestra.strategies import Option, get_strategy
from orkestra.usage import UsageSink

if TYPE_CHECKING:
    pass

__all__ = ["MultiProvider"]


class MultiProvider(MultiProviderCalls):
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
        sessions: where the sticky sessions of calls with ``session_id=`` live (default: in
            this object's memory); see :class:`Provider`.
        mode: ``"route"`` (default) or ``"cascade"``: the cheapest adequate model across the
            providers first, its answer checked by ``verifier``, then the cheapest model of
            the next tier up while the checks fail (the strategy does not apply; the
            providers' own modes apply to calls made on them directly).
        verifier: what checks a cascade's answers (default: ``verifiers.heuristic()``).
        cascade_policy: the router's prior in a cascade, and how cascades stream.
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
        sessions: SessionStore | None = None,
        mode: str = "route",
        verifier: Any = None,
        cascade_policy: CascadePolicy | None = None,
    ) -> None:
        self.cascades = Cascades(mode, verifier, cascade_policy)
        """The cascade mode, verifier and policy of calls made through this router."""
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
        self.sessions: SessionStore = Sessions() if sessions is None else sessions
        """Sticky sessions of calls made with ``session_id=`` through this router."""

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.providers)
        mode = ", mode='cascade'" if self.mode == "cascade" else ""
        return f"MultiProvider([{names}], strategy={self.strategy!r}{mode})"

    @property
    def mode(self) -> str:
        """``"route"`` or ``"cascade"``: what a call does unless it says (``cascade=``)."""
        return self.cascades.mode

    @property
    def cascade_policy(self) -> CascadePolicy:
        return self.cascades.policy

    def options(
        self,
        prompt: str,
        *,
        quality: float | None = None,
        needs: frozenset[str] = frozenset(),
        input_tokens: int | None = None,
    ) -> list[Option]:
        """Each provider's routed model for ``prompt`` (one prediction per distinct router),
        leaving out providers with no model that can serve the request's ``needs``."""
        validate_request(prompt, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE)
        tokens = estimate_input_tokens(prompt) if input_tokens is None else input_tokens
        started = time.perf_counter()
        predictions: dict[int, tuple[Router, TierPrediction]] = {}
        options = []
        for provider in self.providers:
            try:
                if provider.smart_routing:
                    router = provider.router
                    if id(router) not in predictions:
                        predictions[id(router)] = (router, router.predict(prompt))
                    prediction = predictions[id(router)][1]
                    decision = provider.decide(
                        prompt,
                        prediction,
                        quality=quality,
                        started=started,
                        needs=needs,
                        input_tokens=tokens,
                    )
                else:
                    decision = provider.decide(
                        prompt,
                        TierPrediction({}),
                        quality=quality,
                        needs=needs,
                        input_tokens=tokens,
                    )
            except CapabilityError:
                continue
            cost = next(
                (c.expected_cost for c in decision.candidates if c.model == decision.model), 0.0
            )
            options.append(Option(decision, cost))
        if not options:
            names = ", ".join(p.name for p in self.providers)
            raise refusal(f"the providers {names}", needs, tokens)
        return options

    def route(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        response_format: Any = None,
    ) -> RoutingDecision:
        """The provider and model ``prompt`` (or the last user turn of ``messages``) would go
        to, and why; no model is called. With ``tools``/``response_format`` (or images) only
        models that support them are considered."""
        request = read_input(prompt, messages, tools=tools, response_format=response_format)
        return self._route(request.text, strategy, quality, request.needs, request.input_tokens)

    def _route(
        self,
        prompt: str,
        strategy: str | None,
        quality: float | None,
        needs: frozenset[str],
        input_tokens: int,
    ) -> RoutingDecision:
        quality = self.quality if quality is None else quality
        started = time.perf_counter()
        chosen_strategy = get_strategy(strategy or self.strategy)
        options = self.options(prompt, quality=quality, needs=needs, input_tokens=input_tokens)
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
        return self._by_name(decision.provider)

    def plan(
        self,
        decision: RoutingDecision,
        prompt: str,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        needs: frozenset[str] = frozenset(),
        budget: Budget | None = None,
        input_bound: int | None = None,
        input_tokens: int | None = None,
        fallback: str | None = None,
        prefer_cheaper: bool = True,
    ) -> list[Target]:
        """The models a call of ``decision`` would try, in order; no model is called.
        ``budget``: the call's own spend cap, counted before this router's. ``input_bound``:
        the most tokens the prompt can be (default: counted from ``prompt``); ``input_tokens``:
        the prompt's estimated size, when the caller already made the estimate. ``fallback``:
        this call's order instead of the router's. ``prefer_cheaper=False``: keep the model
        near a budget's cap (a cascade's step)."""
        self._provider(decision).adapter  # noqa: B018 - fail on a missing key before any work
        budgets = [b for b in (budget, self.budget) if b is not None]
        return plan_targets(
            decision,
            [p.reachable() for p in self.providers],
            prompt=prompt,
            input_tokens=input_tokens,
            max_tokens=max_tokens,
            order=self.fallback if fallback is None else resolve_fallback(fallback, 1),
            budgets=budgets,
            needs=needs,
            input_bound=input_bound,
            prefer_cheaper=prefer_cheaper,
        )

    def _prepare(
        self, args: CallArgs, notify: Notify
    ) -> tuple[Call | CascadeCall, list[Target], RoutingDecision]:
        request = args.request()
        needs, tokens = request.needs, request.input_tokens
        cascading = self.cascades.wanted(args.cascade, args.verifier, None)
        decision = self._route(request.text, args.strategy, args.quality, needs, tokens)

        def serves(pin: Pin) -> bool:
            return any(p._serves(pin, needs, tokens) for p in self.providers)

        session = request.options.session
        pin = None if session is None else self.sessions.get(session)
        decision, settle = self.sessions.turn(session, pin, decision, serves)
        call = Call(
            {p.name: p.endpoint for p in self.providers},
            request,
            policy=self.retry,
            breaker=self.circuit_breaker,
            sinks={p.name: args.usage_sink or p.usage_sink for p in self.providers},
        )
        call.on_response = settle
        call.on_response_blocks = settle is not None and self.sessions.blocking
        if cascading:
            usable = {p.name: p.api_key_available for p in self.providers}
            cascade, targets, first = self.cascades.start(
                call,
                decision,
                ladder(decision.candidates, usable) or [self._only(decision)],
                lambda step: self._plan_step(step, request, args),
                verifier=args.verifier,
                streaming=args.cascade_streaming,
                stream=args.stream,
                floor=pin.tier if pin is not None and serves(pin) else None,
            )
            notify("on_route", decision=first)
            return cascade, targets, first
        notify("on_route", decision=decision)
        targets = self.plan(
            decision,
            request.all_text,
            max_tokens=request.options.max_tokens,
            needs=needs,
            budget=args.budget,
            input_bound=request.input_bound,
            input_tokens=tokens,
        )
        return call, targets, decision

    def _only(self, decision: RoutingDecision) -> Candidate:
        """The routed model as a one-rung ladder (no provider weighed any candidate)."""
        return Candidate(decision.provider, decision.model, decision.tier, 0.0, 0.0)

    def _plan_step(
        self, decision: RoutingDecision, request: Request, args: CallArgs
    ) -> list[Target]:
        """A cascade step's targets: its model, the same tier at the other providers, then
        the tiers above (never below, never swapped for a cheaper model near a cap)."""
        return self.plan(
            decision,
            request.all_text,
            max_tokens=request.options.max_tokens,
            needs=request.needs,
            budget=args.budget,
            input_bound=request.input_bound,
            input_tokens=request.input_tokens,
            fallback=self.fallback if self.fallback in ("none", "same-tier") else "up",
            prefer_cheaper=False,
        )

    def _refusal_sink(self, args: CallArgs) -> tuple[UsageSink | None, str | None]:
        sinks = [p.usage_sink for p in self.providers if p.usage_sink is not None]
        single = self.providers[0].name if len(self.providers) == 1 else None
        return args.usage_sink or next(iter(sinks), None), single

    def _by_name(self, name: str) -> Provider:
        return next(p for p in self.providers if p.name == name)

    def _cold_routers(self) -> list[Callable[[], object]]:
        return [load for p in self.providers for load in p._cold_routers()]

    def close(self) -> None:
        """Close every provider's SDK clients (they reopen on the next call)."""
        for p in self.providers:
            p.close()

    async def aclose(self) -> None:
        """Close every provider's SDK clients, the async ones included."""
        for p in self.providers:
            await p.aclose()

    def __enter__(self) -> MultiProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MultiProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
