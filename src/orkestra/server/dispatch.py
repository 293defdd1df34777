"""From the ``model`` a client names to the library call that answers it.

====================================  ===================================================
``model``                              what the proxy does
====================================  ===================================================
``orkestra/auto``                      route across every configured provider, the
                                       config's strategy
``orkestra/cheapest`` (``smartest``,   route across every configured provider, that
``balanced``)                          strategy
``orkestra/cascade``                   a cascade across every configured provider: the
                                       cheapest adequate model, its answer checked,
                                       the next tier up when the check fails
``orkestra/<provider>``                route within that provider's models
``orkestra-auto``, ``orkestra-<...>``  the same names without a slash, for clients that read
                                       ``a/b`` as a provider prefix (LiteLLM-style SDKs)
``<catalog model>`` or                 pass-through: that model, no routing, still logged,
``<provider>/<catalog model>``         priced and budgeted (aliases and retired ids are
                                       replaced by their successors, as in the library)
anything else                          404 ``model_not_found``
====================================  ===================================================

With ``[routing] mode = "cascade"`` every routed name cascades (``orkestra/auto``, the
strategies, ``orkestra/<provider>``); a pass-through model never does. A streamed cascade is
always buffered: an OpenAI client cannot be told that text it was sent is withdrawn.

One :class:`~orkestra.Provider` per configured provider lives as long as the app (its async SDK
client, and so its pool of upstream connections, is reused by every request); routed calls go
through a :class:`~orkestra.MultiProvider` over them, made once per provider set and client key.
Every call runs on the server's event loop (``achat``/``astream``): no worker thread per request
or per streamed chunk. Each call carries its client key's budget (``budget=``) and its usage
sink, labelled with the key and the request id (``usage_sink=``): the library reserves, settles
and records, as for any call. The sticky sessions (``prompt_cache_key``) of a key and provider
set are theirs alone: in the usage database's session store, under their own scope, when the app
has one (shared by every worker and replica on it), else in the MultiProvider's memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from orkestra import (
    AsyncResponseStream,
    Budget,
    CircuitBreaker,
    MultiProvider,
    Provider,
    Response,
    RetryPolicy,
    Timeouts,
)
from orkestra.catalog import Catalog, ModelInfo, default_catalog, price_of, today
from orkestra.errors import UnknownModelError, UnknownProviderError
from orkestra.server.config import ServerConfig
from orkestra.server.errors import ProxyError, model_not_found, unsupported
from orkestra.server.request import ChatParams
from orkestra.strategies import STRATEGIES
from orkestra.usage import SQLSessionStore, UsageSink

__all__ = ["Destination", "Dispatcher"]

PREFIX = "orkestra/"
CASCADE = "cascade"
FLAT_PREFIX = "orkestra-"


def spellings(name: str) -> tuple[str, ...]:
    """A routed name in both its spellings (``orkestra/auto``, ``orkestra-auto``: the same
    destination), so that a key allowed one may use the other; any other name alone."""
    for prefix, other in ((PREFIX, FLAT_PREFIX), (FLAT_PREFIX, PREFIX)):
        if name.startswith(prefix):
            return (name, other + name[len(prefix) :])
    return (name,)


"""The routed names again without a slash (``orkestra-auto``): some SDKs read ``a/b`` as
"provider a, model b" and never send the slash on."""


@dataclass(frozen=True)
class Destination:
    """Where a model name sends a request: routed across ``providers`` with ``strategy``, or
    passed through to one concrete ``model``."""

    requested: str
    providers: tuple[str, ...]
    strategy: str
    model: str | None = None
    cascade: bool = False


class Dispatcher:
    """The app's providers, and the calls a :class:`Destination` turns into."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        breaker: CircuitBreaker | None = None,
        environ: Mapping[str, str] | None = None,
        catalog: Catalog | None = None,
        sessions: SQLSessionStore | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.sessions = sessions
        """Sticky sessions shared through the usage database (None: each MultiProvider's)."""
        self.catalog = catalog or default_catalog()
        self.strategy = config.strategy
        self.cascades = config.mode == "cascade"
        self.fallback = config.fallback
        self.retry = RetryPolicy(max_retries=config.max_retries)
        self.breaker = breaker or CircuitBreaker()
        self.providers: dict[str, Provider] = {
            p.name: Provider(
                p.name,
                p.api_key(env),
                base_url=p.resolved_base_url(env),
                quality=config.quality,
                timeout=Timeouts(read=config.timeout, pool=config.queue_timeout),
                max_connections=p.connections(config),
                retry=self.retry,
                fallback=config.fallback,
                budget=None
                if p.budget_usd is None
                else Budget(p.budget_usd, name=f"provider:{p.name}"),
                circuit_breaker=self.breaker,
                catalog=self.catalog,
                usage_sink=None,  # each call brings the app's, labelled with its key and id
            )
            for p in config.providers
        }
        self._multis: dict[tuple[tuple[str, ...], str | None], MultiProvider] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()
        if self.sessions is not None:
            self.sessions.close()

    def warm_up(self) -> None:
        """Load now what the first request would wait for: the router's embedder and index,
        the price data and each provider's SDK client."""
        for provider in self.providers.values():
            provider.adapter  # noqa: B018 - builds the SDK client
            for model in provider.tier_models().values():
                price_of(model)
            provider.route("What is the capital of Japan?")

    async def aopen(self) -> None:
        """Make each provider's async SDK client on the running (the server's) event loop now,
        before it serves: made by a first request instead, it would stall every request in
        flight (it loads TLS certificates, ~0.1 s of CPU each)."""
        for provider in self.providers.values():
            await provider.endpoint.aopen(list(provider.tier_models().values()))

    # -- names ---------------------------------------------------------------------------

    def resolve(self, name: str) -> Destination:
        """The destination of a model name, or a 404 :class:`ProxyError`."""
        everything = tuple(self.providers)
        prefix = next((p for p in (PREFIX, FLAT_PREFIX) if name.startswith(p)), None)
        if prefix is not None:
            rest = name[len(prefix) :]
            if rest == "auto":
                return Destination(name, everything, self.strategy, cascade=self.cascades)
            if rest == CASCADE:
                return Destination(name, everything, self.strategy, cascade=True)
            if rest in STRATEGIES:
                return Destination(name, everything, rest, cascade=self.cascades)
            if rest in self.providers:
                return Destination(name, (rest,), self.strategy, cascade=self.cascades)
            if rest in self.catalog.providers:
                raise model_not_found(name, f"This proxy does not serve {rest}.")
            raise model_not_found(name, f"Use one of: {', '.join(self.routed_names())}.")
        provider, sep, model = name.partition("/")
        if sep and provider in self.catalog.providers:
            return self._concrete(name, provider, model)
        for provider in self.providers:
            if self._known(provider, name):
                return self._concrete(name, provider, name)
        for provider in self.catalog.providers:
            if provider not in self.providers and self._known(provider, name):
                raise model_not_found(
                    name, f"It is a {provider} model; this proxy does not serve {provider}."
                )
        raise model_not_found(name)

    def _known(self, provider: str, model: str) -> bool:
        try:
            self.catalog.resolve(provider, model)
        except (UnknownModelError, UnknownProviderError):
            return False
        return True

    def _concrete(self, requested: str, provider: str, model: str) -> Destination:
        if provider not in self.providers:
            raise model_not_found(requested, f"This proxy does not serve {provider}.")
        try:
            info = self.catalog.resolve(provider, model).model
        except (UnknownModelError, UnknownProviderError):
            raise model_not_found(requested) from None
        return Destination(requested, (provider,), self.strategy, info.id)

    def routed_names(self, prefix: str = PREFIX) -> list[str]:
        names = [f"{prefix}auto", *(f"{prefix}{s}" for s in STRATEGIES), f"{prefix}{CASCADE}"]
        return names + [f"{prefix}{p}" for p in self.providers]

    def served_models(self) -> list[tuple[str, str]]:
        """(provider, model) of every current model of the configured providers."""
        day = today()
        return [
            (provider, m.id)
            for provider in self.providers
            for m in self.catalog.provider_models(provider)
            if not m.retired_on(day)
        ]

    def model_list(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: the routed names (with a slash, then without), then every
        current model of each provider."""
        created = int(
            datetime.combine(self.catalog.as_of, datetime.min.time(), timezone.utc).timestamp()
        )
        routed = self.routed_names() + self.routed_names(FLAT_PREFIX)
        entries = [(name, "orkestra") for name in routed]
        day = today()
        for provider in self.providers:
            entries += [
                (m.id, provider)
                for m in self.catalog.provider_models(provider)
                if not m.retired_on(day)
            ]
        return [
            {"id": name, "object": "model", "created": created, "owned_by": owner}
            for name, owner in entries
        ]

    def candidates(self, destination: Destination) -> list[ModelInfo]:
        """The models a request to ``destination`` may be answered by: its one model, or the
        tier models of its providers (what routing and fallbacks choose among)."""
        if destination.model is not None:
            provider = destination.providers[0]
            return [self.catalog.resolve(provider, destination.model).model]
        models: dict[tuple[str, str], ModelInfo] = {}
        for name in destination.providers:
            for model in self.providers[name].tier_models().values():
                models[(model.provider, model.id)] = model
        return list(models.values())

    def strict_problem(self, destination: Destination, params: ChatParams) -> ProxyError | None:
        """Strict mode: a 400 for a parameter that some model the request may go to cannot
        take (or that orkestra answers for no model, ``logprobs``), before anything is sent."""
        if params.unserved:
            name = params.unserved[0]
            return unsupported(name, f"{name} (no answer through orkestra carries them)")
        models = self.candidates(destination) if params.params else []
        for name in params.params:
            refusing = [f"{m.provider}/{m.id}" for m in models if not m.takes(name)]
            if refusing:
                return ProxyError(
                    400,
                    f"Strict mode: {', '.join(refusing)} cannot take `{name}`, and "
                    f"`{destination.requested}` may be answered by "
                    f"{'it' if len(refusing) == 1 else 'them'}; the request was not sent. Remove "
                    f"`{name}`, name a model that takes it, or leave strict mode "
                    "(x-orkestra-strict-params: false) to have it dropped and reported in "
                    "x-orkestra-ignored-params.",
                    param=name,
                    code="unsupported_parameter",
                )
        return None

    def ignored_params(self, params: ChatParams, response: Response) -> tuple[str, ...]:
        """What the answering model could not take, so the library did not send it
        (:attr:`Response.ignored_params`), then what no provider takes (a tool's ``strict``,
        an image's ``detail``: :attr:`ChatParams.ignored`): reported in
        ``x-orkestra-ignored-params`` rather than dropped silently."""
        return (*response.ignored_params, *params.ignored)

    # -- calls (on the event loop: the library's async path) ------------------------------

    def _multi(self, providers: Sequence[str], key_id: str | None) -> MultiProvider:
        """The router over ``providers`` for the client key ``key_id`` (its sticky sessions
        are that key's alone)."""
        key = (tuple(providers), key_id)
        multi = self._multis.get(key)
        if multi is None:
            with self._lock:
                multi = self._multis.get(key)
                if multi is None:
                    sessions = None
                    if self.sessions is not None:
                        scope = f"proxy:{key_id or '-'}:{'+'.join(providers)}"
                        sessions = self.sessions.scoped(scope)
                    multi = MultiProvider(
                        [self.providers[p] for p in providers],
                        strategy=self.strategy,
                        retry=self.retry,
                        fallback=self.fallback,
                        circuit_breaker=self.breaker,
                        sessions=sessions,
                    )
                    self._multis[key] = multi
        return multi

    def _arguments(
        self, params: ChatParams, budget: Budget | None, usage_sink: UsageSink | None
    ) -> dict[str, Any]:
        return {
            **params.conversation(),
            **params.options(),
            "budget": budget,
            "usage_sink": usage_sink,
        }

    async def achat(
        self,
        destination: Destination,
        params: ChatParams,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        key_id: str | None = None,
    ) -> Response:
        """The whole answer: routed across the destination's providers, or its one model.
        ``key_id``: the client key's, whose sticky sessions the call's are."""
        kwargs = self._arguments(params, budget, usage_sink)
        if destination.model is None:
            multi = self._multi(destination.providers, key_id)
            return await multi.achat(
                strategy=destination.strategy, cascade=destination.cascade, **kwargs
            )
        provider = self.providers[destination.providers[0]]
        return await provider.achat(model=destination.model, **kwargs)

    async def astream(
        self,
        destination: Destination,
        params: ChatParams,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        key_id: str | None = None,
    ) -> AsyncResponseStream:
        """The answer as a stream (routing and planning errors raise here)."""
        kwargs = self._arguments(params, budget, usage_sink)
        if destination.model is None:
            multi = self._multi(destination.providers, key_id)
            return await multi.astream(
                strategy=destination.strategy,
                cascade=destination.cascade,
                cascade_streaming="buffer" if destination.cascade else None,
                **kwargs,
            )
        provider = self.providers[destination.providers[0]]
        return await provider.astream(model=destination.model, **kwargs)
