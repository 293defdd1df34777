"""``orkestra.Provider``: one provider's models behind the router."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from orkestra._conversation import Messages, Prompt, prompt_text, resolve_input
from orkestra._hooked import HookedCalls
from orkestra._options import RequestOptions, can_serve, parse_options, refusal
from orkestra._session import Sessions
from orkestra._types import TIERS, Response, RoutingDecision, Tier
from orkestra._unicode import check_unicode
from orkestra.catalog import Catalog, ModelInfo, default_catalog
from orkestra.catalog.lifecycle import warn_retirements
from orkestra.errors import (
    ConfigurationError,
    InvalidRequestError,
    MissingAPIKeyError,
    OrkestraWarning,
)
from orkestra.hooks import (
    CallData,
    Hooks,
    Notify,
)
from orkestra.providers import make_adapter
from orkestra.providers._errors import map_error
from orkestra.providers.base import (
    Adapter,
    ChatRequest,
    ClientSettings,
    Finished,
    Message,
    StreamEvent,
)
from orkestra.resilience.breaker import CircuitBreaker, default_breaker
from orkestra.resilience.budget import Budget, as_budget
from orkestra.resilience.call import AsyncResponseStream, Call, ResponseStream
from orkestra.resilience.executor import Target
from orkestra.resilience.fallback import resolve_fallback
from orkestra.resilience.plan import plan_targets
from orkestra.resilience.retry import DEFAULT_READ_TIMEOUT, RetryPolicy, Timeouts
from orkestra.routing import default_router
from orkestra.routing.policy import Router, TierPrediction, choose, estimate_input_tokens

__all__ = ["Provider", "ResponseStream"]

DEFAULT_MAX_TOKENS = 8192
NO_KEY = "no-key"
"""What is sent as the key to a local server that needs none (the SDKs require one)."""
DEFAULT_TEMPERATURE = 1.0

CALL_KEYS = (
    "prompt",
    "messages",
    "model",
    "strategy",
    "max_tokens",
    "temperature",
    "quality",
    "tools",
    "tool_choice",
    "response_format",
    "session_id",
)
"""The arguments of a call, as middleware sees them in ``data``."""

T = TypeVar("T")


def validate_request(prompt: object, max_tokens: object, temperature: object) -> str:
    """Check a call's arguments before anything is sent; returns the prompt."""
    if not isinstance(prompt, str):
        raise InvalidRequestError(f"prompt must be a str, not {type(prompt).__name__}")
    if not prompt.strip():
        raise InvalidRequestError("prompt is empty: there is nothing to send")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError(f"max_tokens must be an integer ≥ 1, not {max_tokens!r}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0.0 <= temperature <= 2.0
    ):
        raise InvalidRequestError(f"temperature must be a number in [0, 2], not {temperature!r}")
    return prompt


@dataclass(frozen=True)
class CallInput:
    """A call's input, checked before anything is sent: the text the router reads, what is
    sent, the options, what capabilities they need and the prompt's estimated size."""

    text: str
    conversation: tuple[Message, ...] | None
    options: RequestOptions
    needs: frozenset[str]
    all_text: str
    input_tokens: int

    @property
    def prompt(self) -> Prompt:
        return self.conversation or self.text


def read_input(
    prompt: object,
    messages: Messages | None,
    *,
    max_tokens: object = DEFAULT_MAX_TOKENS,
    temperature: object = DEFAULT_TEMPERATURE,
    tools: Sequence[Any] | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    session_id: str | None = None,
) -> CallInput:
    """Check everything a call (or a ``route``) was given; raises before any network call."""
    text, conversation = resolve_input(prompt, messages)
    validate_request(text, max_tokens, temperature)
    options = parse_options(tools, tool_choice, response_format, session_id)
    # Everything that will be sent, so a bad character is named here, not deep in an SDK.
    if conversation is None:
        check_unicode(text, "prompt")
    else:
        check_unicode(conversation, "messages")
    check_unicode(options.tools, "tools")
    check_unicode(options.response_format, "response_format")
    check_unicode(options.session, "session_id")
    all_text = prompt_text(conversation or text)
    needs = options.needs(conversation)
    return CallInput(text, conversation, options, needs, all_text, estimate_input_tokens(all_text))


def read_call(d: CallData) -> CallInput:
    """:func:`read_input` for a call's (possibly middleware-changed) ``data``."""
    return read_input(
        d["prompt"],
        d["messages"],
        max_tokens=d["max_tokens"],
        temperature=d["temperature"],
        tools=d.get("tools"),
        tool_choice=d.get("tool_choice"),
        response_format=d.get("response_format"),
        session_id=d.get("session_id"),
    )


def validate_knob(quality: object) -> float:
    if (
        isinstance(quality, bool)
        or not isinstance(quality, (int, float))
        or not 0.0 <= quality <= 1.0
    ):
        raise InvalidRequestError(f"quality must be a number in [0, 1], not {quality!r}")
    return float(quality)


_quirk_warned: set[tuple[str, str]] = set()


def _warn_quirk(key: tuple[str, str], message: str) -> None:
    if key not in _quirk_warned:
        _quirk_warned.add(key)
        warnings.warn(message, OrkestraWarning, stacklevel=4)


class Provider(HookedCalls):
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
        record_usage: write every call to the usage log.
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
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        fallback: str | None = None,
        budget: Budget | float | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        catalog: Catalog | None = None,
        models: Mapping[str, str | Mapping[str, Any]] | None = None,
        record_usage: bool = True,
    ) -> None:
        catalog = catalog or default_catalog()
        self.catalog = catalog if models is None else catalog.with_models(name, models)
        info = self.catalog.provider(name)
        self.name = name
        self._key_envs = info.env_keys
        key = api_key or next((os.environ[v] for v in info.env_keys if os.environ.get(v)), None)
        self._key_given = key is not None
        # A local server needs no key, but the SDK needs one: send a placeholder.
        self._api_key = key if key or info.requires_key else NO_KEY
        self.base_url = base_url or os.environ.get(info.env_base_url) or info.base_url
        if self.base_url is None and info.compatible:
            raise ConfigurationError(
                f"{name} needs the server's address: pass base_url=... "
                f"(e.g. 'http://localhost:8000/v1') or set {info.env_base_url}"
            )
        self.tier_models()  # no tiers (vllm, openai-compatible): the models= hint, now
        warn_retirements(self.catalog, name)
        self.smart_routing = smart_routing
        self.default_model = (
            self.catalog.model(name, default_model).id if default_model is not None else None
        )
        self._router = router
        self.quality = None if quality is None else validate_knob(quality)
        self.timeouts = Timeouts.of(timeout)
        self.retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self.fallback = resolve_fallback(fallback, self.retry.max_retries)
        self.budget = as_budget(budget, name=f"provider:{name}")
        self.circuit_breaker = circuit_breaker or default_breaker()
        self.hooks = Hooks()
        """This provider's middleware and event handlers (global ones run first)."""
        self.record_usage = record_usage
        """Write every call to the usage log (``ORKESTRA_USAGE_LOG=off`` turns it off for all)."""
        # What the usage log stores for the key (orkestra.usage.key_id_for): never the key.
        self.key_id = (
            hashlib.sha256(self._api_key.encode()).hexdigest()[:12]
            if self._api_key and self._key_given
            else None
        )
        self._adapter: Adapter | None = None
        self._adapter_lock = threading.Lock()
        self.sessions = Sessions()
        """Sticky sessions of this provider's calls with ``session_id=``."""

    def __repr__(self) -> str:
        key = "set" if self._key_given else "missing" if self._api_key is None else "not needed"
        return (
            f"Provider({self.name!r}, api_key=<{key}>, base_url={self.base_url!r}, "
            f"smart_routing={self.smart_routing!r})"
        )

    # -- models and routing --------------------------------------------------------------

    def _cold_routers(self) -> list[Callable[[], object]]:
        if self.smart_routing and self._router is None:
            return [lambda: self.router]
        return []

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = default_router()
        return self._router

    def tier_models(self) -> dict[Tier, ModelInfo]:
        """The model serving each tier today."""
        return {tier: self.catalog.tier_model(self.name, tier) for tier in TIERS}

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
        given = read_input(prompt, messages, tools=tools, response_format=response_format)
        return self._route(given.text, quality, given.needs, given.input_tokens)

    def _route(
        self, text: str, quality: float | None, needs: frozenset[str], input_tokens: int
    ) -> RoutingDecision:
        started = time.perf_counter()
        if not self.smart_routing:
            return self._fixed_decision(started, needs, input_tokens)
        prediction = self.router.predict(text)
        return self.decide(
            text,
            prediction,
            quality=quality,
            started=started,
            needs=needs,
            input_tokens=input_tokens,
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
        prediction: TierPrediction,
        *,
        quality: float | None = None,
        started: float | None = None,
        needs: frozenset[str] = frozenset(),
        input_tokens: int | None = None,
    ) -> RoutingDecision:
        """The decision for an already-made prediction (shared by a ``MultiProvider``), among
        the tiers whose model can serve the request (:class:`CapabilityError` if none can)."""
        tokens = estimate_input_tokens(prompt) if input_tokens is None else input_tokens
        if not self.smart_routing:
            return self._fixed_decision(started, needs, tokens)
        models = self.tier_models()
        allowed = self.serving_tiers(needs, tokens, models)
        if not allowed:
            ids = ", ".join(dict.fromkeys(m.id for m in models.values()))
            raise refusal(f"{self.name} ({ids})", needs, tokens)
        return choose(
            self.name,
            models,
            prediction,
            knob=self.knob(quality),
            input_tokens=tokens,
            started=started,
            allowed=allowed,
            rule=getattr(self.router, "rule", "margin"),
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

    # -- calls ---------------------------------------------------------------------------

    def chat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
    ) -> Response:
        """Route ``prompt`` (or a conversation: ``messages=[{"role", "content"}, ...]``), call
        the chosen model, return its answer with cost and savings.

        ``tools``: OpenAI-format function tools (the model's calls are in
        ``Response.tool_calls``); ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` or
        ``{"type": "function", "function": {"name": ...}}``. ``response_format``: a pydantic
        model, a JSON Schema or OpenAI's ``{"type": "json_schema" | "json_object"}``; the
        validated answer is ``Response.parsed``. ``session_id``: keep a conversation on one
        model (see :class:`orkestra.Conversation`).
        """
        data = self._call_data(locals())
        return self._hooked_chat(data)

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
    ) -> ResponseStream:
        """Like :meth:`chat`, streaming: iterate for text chunks, then read ``.response``."""
        data = self._call_data(locals())
        return self._hooked_stream(data)

    def stream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
    ) -> Iterator[str]:
        """Stream the answer's text chunks (``str``) from the routed model."""
        data = self._call_data(locals())
        return iter(self._hooked_stream(data))

    async def achat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
    ) -> Response:
        """:meth:`chat` for async code: ``response = await provider.achat(...)``. The same
        routing, retries, fallbacks, budgets, hooks and usage log, on the SDK's async client."""
        return await self._hooked_achat(self._call_data(locals()))

    async def astream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
    ) -> AsyncResponseStream:
        """:meth:`stream` for async code: ``stream = await provider.astream(...)`` runs the
        middleware and routes (errors in the request raise here, as with ``stream()``); then
        ``async for chunk in stream``, and ``stream.response`` when it ends. For the chunks
        alone in one line: ``async for chunk in provider.astream_text(...)``."""
        return await self._hooked_astream(self._call_data(locals()))

    async def astream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
    ) -> AsyncIterator[str]:
        """:meth:`stream_text` for async code: ``async for chunk in provider.astream_text(...)``
        (the stream is closed when the loop stops early)."""
        stream = await self._hooked_astream(self._call_data(locals()))
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    def _call_data(self, args: dict[str, Any]) -> CallData:
        data = {k: v for k, v in args.items() if k in CALL_KEYS}
        data["provider"] = self.name
        data["stream"] = False
        return data

    def _prepare(self, d: CallData, notify: Notify) -> tuple[Call, list[Target], RoutingDecision]:
        given = read_call(d)
        needs, tokens = given.needs, given.input_tokens
        decision = self._decision_for(given.text, d["model"], d["quality"], needs, tokens)
        session = given.options.session if d["model"] is None else None
        decision, settle = self.sessions.turn(
            session,
            decision,
            lambda pin: can_serve(self.catalog.model(self.name, pin.model), needs, tokens),
        )
        notify("on_route", decision=decision)
        call = self._call(given.prompt, d["max_tokens"], d["temperature"], given.options)
        call.on_response = settle
        targets = self.plan(
            decision,
            given.all_text,
            max_tokens=d["max_tokens"],
            fallback="none" if d["model"] is not None else None,
            needs=needs,
        )
        return call, targets, decision

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
        return self._route(prompt, quality, needs, input_tokens)

    def plan(
        self,
        decision: RoutingDecision,
        prompt: str,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        fallback: str | None = None,
        needs: frozenset[str] = frozenset(),
    ) -> list[Target]:
        """The models a call of ``decision`` would try, in order; no model is called.

        ``fallback`` overrides the provider's order for this call; ``"none"`` pins the model
        (no fallback, and no switch to a cheaper model near a budget's cap).
        """
        self.adapter  # noqa: B018 - fail on a missing key before any work
        order = self.fallback if fallback is None else resolve_fallback(fallback, 1)
        return plan_targets(
            decision,
            [self],
            prompt=prompt,
            max_tokens=max_tokens,
            order=order,
            pinned=fallback == "none",
            needs=needs,
        )

    def _call(
        self,
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        options: RequestOptions | None = None,
    ) -> Call:
        return Call(
            [self],
            prompt,
            max_tokens,
            temperature,
            policy=self.retry,
            breaker=self.circuit_breaker,
            options=options,
        )

    # -- plumbing ------------------------------------------------------------------------

    @property
    def api_key_available(self) -> bool:
        return bool(self._api_key)

    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:
            if not self._api_key:
                names = " or ".join(self._key_envs)
                raise MissingAPIKeyError(
                    f"no API key for {self.name}: pass api_key=... to Provider({self.name!r}) "
                    f"or set {names}"
                )
            with self._adapter_lock:
                if self._adapter is None:
                    t = self.timeouts
                    info = self.catalog.provider(self.name)
                    settings = ClientSettings(
                        self._api_key,
                        self.base_url,
                        t.read,
                        max_retries=0,
                        connect_timeout=t.connect,
                        compatible=info.compatible,
                    )
                    self._adapter = make_adapter(info, settings)
                    # A provider dropped without close() still closes its connections (the
                    # SDK clients sit in reference cycles, freed only whenever gc runs).
                    weakref.finalize(self, self._adapter.close)
        return self._adapter

    def request(
        self,
        model: ModelInfo,
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        options: RequestOptions | None = None,
    ) -> ChatRequest:
        """The provider-neutral request for ``model``, its parameter quirks applied."""
        if max_tokens > model.max_output_tokens:
            _warn_quirk(
                (model.id, "max_tokens"),
                f"max_tokens={max_tokens} is above {model.id}'s output limit; "
                f"clamped to {model.max_output_tokens}",
            )
            max_tokens = model.max_output_tokens
        sent_temperature: float | None = float(temperature)
        if not self.catalog.provider(self.name).supports_temperature or model.reasoning:
            if temperature != DEFAULT_TEMPERATURE:
                _warn_quirk(
                    (model.id, "temperature"),
                    f"{model.id} accepts only its default temperature; "
                    f"temperature={temperature} is not sent",
                )
            sent_temperature = None
        messages = (Message("user", prompt),) if isinstance(prompt, str) else prompt
        options = options or RequestOptions()
        return ChatRequest(
            model,
            messages,
            max_tokens,
            sent_temperature,
            tools=options.tools,
            tool_choice=options.tool_choice,
            response_format=options.response_format,
            session=options.session,
        )

    def _guard(self, request: ChatRequest, call: Callable[[], T]) -> T:
        try:
            return call()
        except Exception as e:
            raise map_error(
                e, provider=self.name, model=request.model.id, api_key=self._api_key
            ) from e

    def complete_once(self, request: ChatRequest) -> tuple[str, Finished]:
        """One attempt, no retries: the SDK call with its errors mapped."""
        return self._guard(request, lambda: self.adapter.complete(request))

    def stream_once(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """One streaming attempt, no retries: events, errors mapped."""
        try:
            yield from self.adapter.stream(request)
        except Exception as e:
            raise map_error(
                e, provider=self.name, model=request.model.id, api_key=self._api_key
            ) from e

    async def acomplete_once(self, request: ChatRequest) -> tuple[str, Finished]:
        """:meth:`complete_once` on the SDK's async client."""
        try:
            return await self.adapter.acomplete(request)
        except Exception as e:
            raise map_error(
                e, provider=self.name, model=request.model.id, api_key=self._api_key
            ) from e

    async def astream_once(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """:meth:`stream_once` on the SDK's async client."""
        try:
            async for event in self.adapter.astream(request):
                yield event
        except Exception as e:
            raise map_error(
                e, provider=self.name, model=request.model.id, api_key=self._api_key
            ) from e

    async def aclose(self) -> None:
        """Close the SDK clients, sync and async (they are reopened on the next call). The
        async ones first: this loop's client is closed here, awaited, not scheduled."""
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            await adapter.aclose()
            adapter.close()

    def close(self) -> None:
        """Close the SDK client (it is reopened on the next call)."""
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
