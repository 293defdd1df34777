"""``GET /metrics``: the proxy's Prometheus metrics (prometheus-client).

Every series, its labels and what it counts is listed in ``docs/deploy.md``. In short: requests
by route, status, answering model, tier and key id (the usage log's id, never the key), their
latency (total, upstream and what the proxy added), tokens, cost and savings in dollars, the
tier the router chose, fallbacks, every upstream attempt, each model's circuit state and each
capped key's remaining budget.

Label values are bounded: a model label is always a catalog model that answered (never the
name a client sent), a route is the app's route template (``unmatched`` for anything else),
so a client cannot grow the number of series.

**Several workers** (``orkestra serve --workers N``): each worker is its own process, so the
metrics use prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a fresh
directory per run, set by :func:`orkestra.server.run.run_server` before the workers start):
counters and histograms are summed over the workers by whichever worker answers the scrape;
the circuit state is the worst any live worker sees, a key's remaining budget the least.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orkestra import Response, __version__
from orkestra.errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from orkestra.resilience.breaker import CircuitBreaker
    from orkestra.server.budgets import KeyBudgets
    from orkestra.server.config import KeyConfig

__all__ = [
    "MULTIPROC_ENV",
    "MetricsMiddleware",
    "ProxyMetrics",
    "RequestLabels",
    "labels_of",
    "observe_call",
]

logger = logging.getLogger("orkestra.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SCOPE_KEY = "orkestra.request_labels"

# Seconds. A whole request may stream for minutes; what the proxy adds is milliseconds.
_TOTAL_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
_ADDED_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip

_BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}


@dataclass
class RequestLabels:
    """What the endpoint learns about a request that its metrics are labelled with."""

    model: str = ""
    tier: str = ""
    key_id: str = ""


def labels_of(scope: Scope) -> RequestLabels:
    """The request's labels to fill in (a throwaway one when metrics are off)."""
    labels = scope.get(_SCOPE_KEY)
    return labels if isinstance(labels, RequestLabels) else RequestLabels()


def multiprocess_dir() -> str | None:
    """The multiprocess directory prometheus-client writes to in this process, if any (it is
    chosen when prometheus-client is first imported)."""
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get(MULTIPROC_ENV) or None


class ProxyMetrics:
    """One app's metrics: its own registry (several apps can live in one process), or, in
    multiprocess mode, the shared directory every worker writes to."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
            from prometheus_client import CollectorRegistry, multiprocess
        except ImportError:
            raise ConfigurationError(
                "metrics: GET /metrics needs prometheus-client: pip install "
                "'orkestra-router[server]' (or turn it off: [metrics] enabled = false)"
            ) from None

        self.content_type = prom.CONTENT_TYPE_LATEST
        self.multiprocess_dir = multiprocess_dir()
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        # Multiprocess mode: the metrics live in files (registered nowhere); the registry only
        # reads every worker's files at each scrape.
        target: CollectorRegistry | None = self.registry
        if self.multiprocess_dir is not None:
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.registry, self.multiprocess_dir
            )
            target = None

        def counter(name: str, doc: str, labels: Sequence[str]) -> Any:
            return prom.Counter(name, doc, labels, namespace="orkestra", registry=target)

        def histogram(name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> Any:
            return prom.Histogram(
                name, doc, labels, namespace="orkestra", registry=target, buckets=buckets
            )

        def gauge(name: str, doc: str, labels: Sequence[str], mode: str) -> Any:
            return prom.Gauge(
                name,
                doc,
                labels,
                namespace="orkestra",
                registry=target,
                multiprocess_mode=mode,  # type: ignore[arg-type]
            )

        self.requests = counter(
            "requests",
            "HTTP requests answered, by route, status, answering model, tier and client key id.",
            ("route", "status", "model", "tier", "key_id"),
        )
        self.duration = histogram(
            "request_duration_seconds",
            "Whole request time in the proxy (a stream: until its last byte), by route.",
            ("route",),
            _TOTAL_BUCKETS,
        )
        self.upstream_duration = histogram(
            "upstream_duration_seconds",
            "Time of each call to a provider (every attempt, retries and fallbacks included).",
            ("provider", "model"),
            _TOTAL_BUCKETS,
        )
        self.added_duration = histogram(
            "added_duration_seconds",
            "What the proxy added to a chat request: its whole time minus its provider calls.",
            ("route",),
            _ADDED_BUCKETS,
        )
        self.attempts = counter(
            "upstream_attempts",
            "Calls to providers, by outcome ('ok' or the error's class name).",
            ("provider", "model", "outcome"),
        )
        self.tokens = counter(
            "tokens",
            "Tokens billed by the answering model, by type (input, output).",
            ("provider", "model", "tier", "key_id", "type"),
        )
        self.cost = counter(
            "cost_usd",
            "Dollars billed by providers, failed attempts included.",
            ("provider", "model", "tier", "key_id"),
        )
        self.base_cost = counter(
            "base_cost_usd",
            "Dollars the provider's premium model would have cost for the same tokens.",
            ("provider", "model", "tier", "key_id"),
        )
        self.savings = counter(
            "savings_usd",
            "Dollars saved against the premium model (per call, only savings above 0 count: "
            "base_cost_usd minus cost_usd is the net).",
            ("provider", "model", "tier", "key_id"),
        )
        self.routing = counter(
            "routing_decisions",
            "Routed requests (orkestra/...), by destination and the tier the router chose.",
            ("destination", "tier"),
        )
        self.fallbacks = counter(
            "fallbacks",
            "Moves from one model to another within a request (after the first one failed).",
            ("from_model", "to_model"),
        )
        self.breaker = gauge(
            "circuit_breaker_state",
            "Each model's circuit: 0 closed, 1 half-open (probing), 2 open (skipped); with "
            "several workers, the worst any live worker sees.",
            ("provider", "model"),
            "livemax",
        )
        self.budget_remaining = gauge(
            "key_budget_remaining_usd",
            "Dollars a capped client key may still spend (cap minus spent and held); with "
            "several workers, the least any live worker sees.",
            ("key_id",),
            "livemin",
        )
        self.key_info = gauge(
            "key_info",
            "The configured client keys: id and name (always 1).",
            ("key_id", "key"),
            "max",
        )
        self.info = gauge("build_info", "orkestra's version (always 1).", ("version",), "max")
        self.info.labels(__version__).set(1)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    # -- recording -----------------------------------------------------------------------

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: prometheus-client checks and locks on every
        lookup, and a request touches a dozen series (a race only looks one up twice)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, route: str, status: int, labels: RequestLabels, seconds: float) -> None:
        child = self._child
        child(self.requests, route, str(status), labels.model, labels.tier, labels.key_id).inc()
        child(self.duration, route).observe(seconds)

    def answered(
        self,
        response: Response,
        *,
        key_id: str,
        routed_to: str | None,
        route: str,
        seconds: float,
    ) -> None:
        """A chat answer (also one that failed its ``response_format``: it was billed)."""
        child = self._child
        where = (response.provider, response.model, response.tier, key_id)
        usage = response.usage
        child(self.tokens, *where, "input").inc(usage.input_tokens)
        child(self.tokens, *where, "output").inc(usage.output_tokens)
        child(self.base_cost, *where).inc(max(0.0, response.base_cost))
        child(self.savings, *where).inc(max(0.0, response.savings))
        if routed_to is not None:
            child(self.routing, routed_to, response.routing.tier).inc()
        attempts = response.attempts
        if not attempts:  # the library always lists them; priced here if it ever does not
            child(self.cost, *where).inc(max(0.0, response.cost))
            return
        self._attempts(attempts, key_id, route, seconds)

    def failed(self, attempts: Sequence[Any], *, key_id: str, route: str, seconds: float) -> None:
        """A chat request that got no answer: what its attempts cost, and how they ended."""
        if attempts:
            self._attempts(attempts, key_id, route, seconds)

    def _attempts(self, attempts: Sequence[Any], key_id: str, route: str, seconds: float) -> None:
        child = self._child
        upstream = 0.0
        previous: str | None = None
        for attempt in attempts:
            provider, model = attempt.provider, attempt.model
            outcome = "ok" if attempt.error is None else str(attempt.error)
            child(self.attempts, provider, model, outcome).inc()
            child(self.upstream_duration, provider, model).observe(attempt.latency_ms / 1000.0)
            child(self.cost, provider, model, attempt.tier or "", key_id).inc(
                max(0.0, attempt.cost)
            )
            where = f"{provider}/{model}"
            if previous is not None and previous != where:
                child(self.fallbacks, previous, where).inc()
            previous = where
            upstream += attempt.latency_ms / 1000.0
        child(self.added_duration, route).observe(max(0.0, seconds - upstream))

    # -- state read at scrape time (and, with workers, every few seconds) --------------------

    def refresh(
        self,
        breaker: CircuitBreaker,
        models: Iterable[tuple[str, str]],
        budgets: KeyBudgets,
        keys: Sequence[KeyConfig],
    ) -> None:
        """Set the gauges from this process's circuit breaker and key budgets."""
        seen = set(models) | set(breaker.open_keys())
        for provider, model in seen:
            self.breaker.labels(provider, model).set(
                _BREAKER_VALUES[breaker.state((provider, model))]
            )
        for key in keys:
            self.key_info.labels(key.key_id, key.name).set(1)
            budget = budgets.get(key.key_id)
            try:  # a budget shared through the database asks it
                remaining = None if budget is None else budget.remaining
            except Exception as exc:  # the database is away: the gauge keeps its last value
                logger.warning("metrics: the budget of key %s is unknown: %s", key.name, exc)
                continue
            if remaining is not None:
                self.budget_remaining.labels(key.key_id).set(remaining)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def close(self) -> None:
        """This worker is going: its live gauges leave the multiprocess directory."""
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                    os.getpid(), self.multiprocess_dir
                )


def observe_call(
    metrics: ProxyMetrics | None,
    labels: RequestLabels,
    response: Response | None,
    error: BaseException | None,
    *,
    key_id: str,
    routed_to: str | None,
    seconds: float,
    route: str = "/v1/chat/completions",
) -> None:
    """A model call's end (``route``: the endpoint it came through): its request's labels, and
    (metrics on) its tokens, cost, attempts."""
    if response is not None:
        labels.model, labels.tier = response.model, response.tier
    elif error is not None:
        labels.model = getattr(error, "model", None) or ""
    if metrics is None:
        return
    try:
        if response is not None:
            metrics.answered(
                response, key_id=key_id, routed_to=routed_to, route=route, seconds=seconds
            )
        else:
            attempts = getattr(error, "attempts", ()) or ()
            metrics.failed(attempts, key_id=key_id, route=route, seconds=seconds)
    except Exception:  # never fail an answer for its metrics
        logger.exception("metrics: recording a call failed")


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled with what its endpoint learnt."""

    def __init__(self, app: ASGIApp, metrics: ProxyMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        labels = RequestLabels()
        scope[_SCOPE_KEY] = labels
        status = 500  # an exception before any answer: the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.request(path, status, labels, time.perf_counter() - started)
