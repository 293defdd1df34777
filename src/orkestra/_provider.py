"""``orkestra.Provider``: one provider's models behind the router.

A Provider is routing, sticky sessions and hooks over one :class:`~orkestra._endpoint.Endpoint`
(credentials, SDK adapter, request quirks, single attempts): each call is read into a typed
:class:`~orkestra._call.Request`, routed, planned, and run by the resilience layer, which drives
the endpoint. Nothing below calls back up into the Provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orkestra._call import Request, validate_knob
from orkestra._cascade import CascadeCall, CascadePolicy, Cascades
from orkestra._endpoint import Endpoint
from orkestra._hooked import CallArgs
from orkestra._options import can_serve
from orkestra._provider_calls import ProviderCalls
from orkestra._provider_routing import ProviderRouting
from orkestra._request import DEFAULT_MAX_TOKENS
from orkestra._session import Pin, Sessions, SessionStore
from orkestra._types import RoutingDecision
from orkestra.catalog import Catalog, default_catalog
from orkestra.catalog.lifecycle import warn_retirements
from orkestra.errors import OrkestraError
from orkestra.hooks import Hooks, Notify
from orkestra.providers.base import Adapter
from orkestra.resilience.breaker import CircuitBreaker, default_breaker
from orkestra.resilience.budget import Budget, as_budget
from orkestra.resilience.call import Call, ResponseStream
from orkestra.resilience.executor import Target
from orkestra.resilience.fallback import resolve_fallback
from orkestra.resilience.plan import Reachable, plan_targets
from orkestra.resilience.retry import DEFAULT_READ_TIMEOUT, RetryPolicy, Timeouts
from orkestra.routing.policy import Router
from orkestra.usage import UsageSink

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_USAGE_SINK", "Provider", "ResponseStream"]

DEFAULT_USAGE_SINK = UsageSink()
"""Every call in the process's usage log (``ORKESTRA_USAGE_LOG=off`` turns it off)."""


class Provider(ProviderRouting, ProviderCalls):
    """One provider (``"google"``, ``"anthropic"`` or ``"openai"``) with automatic routing.

    >>> provider = Provider("google")            # key from GOOGLE_API_KEY / GEMINI_API_KEY
    >>> provider.route("What is 2+2?").tier      # no call made
    'budget'

    Every call goes through orkestra's resilience layer (:mod:`orkestra.resilience`): retries
    with backoff, fallback to the adjacent tiers, a circuit breaker per model, budgets.

    Args:
        name: the provider: ``"google"``, ``"anthropic"``, ``"openai"``, an OpenAI-compatible
            preset (``"deepseek"``, ``"groq"``, ``"mistral"``, ``"together"``, ``"ollama"``,
            ``"vllm"``) or ``"openai-compatible"`` (any such server: give ``base_url`` and
            ``models``); see docs/providers.md.
        api_key: its API key; default: the provider's usual environment variable.
        base_url: the API's base URL; default: the SDK's own variable (``OPENAI_BASE_URL``,
            ``ANTHROPIC_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``) or the provider's address.
        smart_routing: route each prompt to a tier; when False every call uses
            ``default_model`` (or the balanced model).
        default_model: the model used when smart routing is off.
        router: the router to use (default: the bundled KNN router).
        quality: the cost/quality knob, 0..1 (default: the router's calibrated setting). The
            router picks the cheapest tier whose predicted quality is at most ``1 - quality``
            below the best tier's: 1 sends everything to the best predicted tier, 0 to the
            cheapest.
        timeout: the read timeout in seconds (connect: 5 s), or a :class:`Timeouts`.
        max_connections: the most calls in flight to this provider at once per SDK client
            (the sync one, shared by threads; each event loop's async one), a stream holding
            its connection until it ends; the SDK keeps that many connections alive for reuse.
            A call past the limit waits up to ``Timeouts.pool`` (30 s) for one, then raises
            :class:`~orkestra.PoolTimeoutError` with nothing sent. Default: no limit but the
            SDK's own.
        max_retries: retries of a model after a transient failure (429, 5xx, 529, timeouts,
            connection errors) before falling back. ``0``: one attempt, no fallback (unless
            ``fallback`` is given).
        retry: the whole :class:`RetryPolicy` (backoff, retry-after cap, deadline); overrides
            ``max_retries``.
        fallback: where a failing call goes next: ``"up-then-down"`` (default), ``"down-then-up"``,
            ``"up"``, ``"down"`` or ``"none"``. A model passed to ``chat(model=...)`` never
            falls back.
        budget: a spend cap in dollars for this provider's calls, or a shared :class:`Budget`.
        circuit_breaker: default: the process-wide one (:func:`default_breaker`).
        catalog: the model catalog (default: the bundled one with your overrides).
        models: this provider's models per tier, e.g. ``{"budget": "llama3.2:3b", "premium":
            "llama3.3:70b"}``; a value may be a dict with ``id``, ``input_price``,
            ``output_price``, ``context_window``, ``capabilities``... (a fine-tuned model, a
            negotiated price). A missing tier uses the nearest given one.
        usage_sink: where every call is recorded (default: the process's usage log,
            :func:`~orkestra.usage.default_usage_log`); None records nothing.
        record_usage: False is ``usage_sink=None``.
        sessions: where the sticky sessions of calls with ``session_id=`` live (default: a
            :class:`Sessions` in this object's memory); a store from
            :meth:`orkestra.usage.SQLUsageLog.session_store` shares them with other processes.
        mode: ``"route"`` (default): each call goes to the one model the router picks;
            ``"cascade"``: each call asks the cheapest adequate tier first, checks its answer
            with ``verifier``, and asks the next tier up only when the check fails (a call's
            ``cascade=True``/``False`` overrides; see docs/routing.md).
        verifier: what checks a cascade's answers (default: ``orkestra.verifiers.heuristic()``,
            free format and consistency checks); any :mod:`orkestra.verifiers` verifier or a
            function ``fn(request, answer)``.
        cascade_policy: the router's prior in a cascade (when to skip a tier, when to trust
            one unchecked) and how cascades stream (:class:`~orkestra.CascadePolicy`).
    """

    def __init__(
        self,
        name: str,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        smart_routing: bool = True,
        default_model: str | None = None,
        router: Router | None = None,
        quality: float | None = None,
        timeout: float | Timeouts = DEFAULT_READ_TIMEOUT,
        max_connections: int | None = None,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        fallback: str | None = None,
        budget: Budget | float | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        catalog: Catalog | None = None,
        models: Mapping[str, str | Mapping[str, Any]] | None = None,
        usage_sink: UsageSink | None = DEFAULT_USAGE_SINK,
        record_usage: bool = True,
        sessions: SessionStore | None = None,
        mode: str = "route",
        verifier: Any = None,
        cascade_policy: CascadePolicy | None = None,
    ) -> None:
        self.cascades = Cascades(mode, verifier, cascade_policy)
        """The cascade mode, verifier and policy of this provider's calls."""
        catalog = catalog or default_catalog()
        self.catalog = catalog if models is None else catalog.with_models(name, models)
        self.name = name
        self.timeouts = Timeouts.of(timeout)
        self.endpoint = Endpoint(
            self.catalog.provider(name),
            api_key,
            base_url=base_url,
            timeout=self.timeouts.read,
            connect_timeout=self.timeouts.connect,
            max_connections=max_connections,
            pool_timeout=self.timeouts.pool,
        )
        """Credentials, SDK client and single attempts (see :mod:`orkestra._endpoint`)."""
        self.tier_models()  # no tiers (vllm, openai-compatible): the models= hint, now
        warn_retirements(self.catalog, name)
        self.smart_routing = smart_routing
        self.default_model = (
            self.catalog.model(name, default_model).id if default_model is not None else None
        )
        self._router = router
        self.quality = None if quality is None else validate_knob(quality)
        self.retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self.fallback = resolve_fallback(fallback, self.retry.max_retries)
        self.budget = as_budget(budget, name=f"provider:{name}")
        self.circuit_breaker = circuit_breaker or default_breaker()
        self.hooks = Hooks()
        """This provider's middleware and event handlers (global ones run first)."""
        self.usage_sink = usage_sink if record_usage else None
        """Where every call is recorded (None: nowhere)."""
        self.sessions: SessionStore = Sessions() if sessions is None else sessions
        """Sticky sessions of this provider's calls with ``session_id=``."""

    def __repr__(self) -> str:
        mode = ", mode='cascade'" if self.mode == "cascade" else ""
        return (
            f"Provider({self.name!r}, api_key=<{self.endpoint.key_state}>, "
            f"base_url={self.base_url!r}, smart_routing={self.smart_routing!r}{mode})"
        )

    @property
    def mode(self) -> str:
        """``"route"`` or ``"cascade"``: what a call does unless it says (``cascade=``)."""
        return self.cascades.mode

    @property
    def cascade_policy(self) -> CascadePolicy:
        return self.cascades.policy

    @property
    def record_usage(self) -> bool:
        """Whether calls are recorded (``usage_sink`` is not None)."""
        return self.usage_sink is not None

    @property
    def base_url(self) -> str | None:
        return self.endpoint.base_url

    @property
    def key_id(self) -> str | None:
        """What the usage log stores for this provider's key (never the key)."""
        return self.endpoint.key_id

    def _prepare(
        self, args: CallArgs, notify: Notify
    ) -> tuple[Call | CascadeCall, list[Target], RoutingDecision]:
        request = args.request()
        needs, tokens = request.needs, request.input_tokens
        cascading = self.cascades.wanted(args.cascade, args.verifier, args.model)
        decision = self._decision_for(request.text, args.model, args.quality, needs, tokens)
        session = request.options.session if args.model is None else None

        def serves(pin: Pin) -> bool:
            return self._serves(pin, needs, tokens)

        pin = None if session is None else self.sessions.get(session)
        decision, settle = self.sessions.turn(session, pin, decision, serves)
        sink = args.usage_sink or self.usage_sink
        call = Call(
            {self.name: self.endpoint},
            request,
            policy=self.retry,
            breaker=self.circuit_breaker,
            sinks={self.name: sink},
        )
        call.on_response = settle
        call.on_response_blocks = settle is not None and self.sessions.blocking
        if cascading:
            cascade, targets, first = self.cascades.start(
                call,
                decision,
                self.cascade_candidates(decision, needs, tokens),
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
            fallback="none" if args.model is not None else None,
            needs=needs,
            budget=args.budget,
            input_bound=request.input_bound,
            input_tokens=tokens,
        )
        return call, targets, decision

    def _plan_step(
        self, decision: RoutingDecision, request: Request, args: CallArgs
    ) -> list[Target]:
        """A cascade step's targets: its model, then fallbacks upward only (a lower tier would
        repeat an answer already rejected or skipped), never swapped for a cheaper model near
        a budget's cap."""
        return self.plan(
            decision,
            request.all_text,
            max_tokens=request.options.max_tokens,
            fallback=self.fallback if self.fallback in ("none", "same-tier") else "up",
            needs=request.needs,
            budget=args.budget,
            input_bound=request.input_bound,
            input_tokens=request.input_tokens,
            prefer_cheaper=False,
        )

    def _refusal_sink(self, args: CallArgs) -> tuple[UsageSink | None, str | None]:
        return args.usage_sink or self.usage_sink, self.name

    def _serves(self, pin: Pin, needs: frozenset[str], tokens: int) -> bool:
        """Whether the session's model can serve this turn: one of this provider's models (a
        shared store may hold a pin made by another router, or a catalog since changed) that
        has what the turn needs."""
        if pin.provider != self.name:
            return False
        try:
            model = self.catalog.model(self.name, pin.model)
        except OrkestraError:
            return False
        return can_serve(model, needs, tokens)

    def reachable(self) -> Reachable:
        """What the resilience layer's planning needs to know of this provider."""
        return Reachable(self.name, self.catalog, self.budget, self.endpoint.api_key_available)

    def plan(
        self,
        decision: RoutingDecision,
        prompt: str,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        fallback: str | None = None,
        needs: frozenset[str] = frozenset(),
        budget: Budget | None = None,
        input_bound: int | None = None,
        input_tokens: int | None = None,
        prefer_cheaper: bool = True,
    ) -> list[Target]:
        """The models a call of ``decision`` would try, in order; no model is called.

        ``fallback`` overrides the provider's order for this call; ``"none"`` pins the model
        (no fallback, and no switch to a cheaper model near a budget's cap). ``budget``: the
        call's own spend cap, counted before the provider's. ``input_bound``: the most tokens
        the prompt can be (default: counted from ``prompt``); ``input_tokens``: the prompt's
        estimated size, when the caller already made the estimate. ``prefer_cheaper=False``:
        keep the model near a budget's cap (a cascade's step).
        """
        self.endpoint.adapter  # noqa: B018 - fail on a missing key before any work
        order = self.fallback if fallback is None else resolve_fallback(fallback, 1)
        return plan_targets(
            decision,
            [self.reachable()],
            prompt=prompt,
            input_tokens=input_tokens,
            max_tokens=max_tokens,
            order=order,
            pinned=fallback == "none",
            budgets=[budget] if budget is not None else [],
            needs=needs,
            input_bound=input_bound,
            prefer_cheaper=prefer_cheaper,
        )

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api_key_available(self) -> bool:
        return self.endpoint.api_key_available

    @property
    def adapter(self) -> Adapter:
        """The SDK adapter (built on first use; :class:`MissingAPIKeyError` without a key)."""
        return self.endpoint.adapter

    async def aclose(self) -> None:
        """Close the SDK clients, sync and async (they are reopened on the next call). The
        async ones first: this loop's client is closed here, awaited, not scheduled."""
        await self.endpoint.aclose()

    def close(self) -> None:
        """Close the SDK client (it is reopened on the next call)."""
        self.endpoint.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
