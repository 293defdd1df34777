"""The proxy as an ASGI app: ``create_app(config)`` builds everything it uses, no module state.

>>> app = create_app(ServerConfig.from_env())      # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/responses`` (OpenAI's Responses API) and
``POST /v1/messages`` (Anthropic's Messages API), streaming or not, all served by one path
(:meth:`_Proxy.serve`) with a :class:`~orkestra.server.wire.Wire` each; ``GET /v1/models``,
``GET /v1/models/{id}``, ``GET /healthz`` and ``GET /readyz`` (no key needed:
:mod:`~orkestra.server.readiness`) and ``GET /metrics`` (:mod:`~orkestra.server.metrics`).
Every answered completion carries ``x-orkestra-provider``, ``x-orkestra-model``,
``x-orkestra-tier``, ``x-orkestra-cost-usd`` and ``x-orkestra-savings-usd`` (a stream: the
first three up front, cost and savings in its last chunks' ``orkestra`` object). Every error is
OpenAI-shaped JSON (:mod:`orkestra.server.errors`, and
:func:`~orkestra.server.response.proxy_error` for a request no model can serve and an
answer that failed its ``response_format``: that one was billed, so it carries the routing and
cost headers of a success and is logged with its cost); a bug answers a 500 with a request id
and is logged with its traceback, never sent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response as HTTPResponse
from starlette.routing import Route

from orkestra import Budget, CircuitBreaker
from orkestra.catalog import Catalog
from orkestra.errors import OrkestraError
from orkestra.server.admission import Admission, Slot
from orkestra.server.answers import (
    error_response,
    internal_error,
    json_response,
    routing_headers,
    with_where,
)
from orkestra.server.auth import Client, KeyStore
from orkestra.server.body import parses_quickly, read_body
from orkestra.server.budgets import KeyBudgets
from orkestra.server.config import ServerConfig
from orkestra.server.dispatch import Dispatcher, spellings
from orkestra.server.errors import ProxyError, bad_request
from orkestra.server.exchange import ProxyCall, names_of
from orkestra.server.guard import BrowserGuard
from orkestra.server.limits import KeyLimits, model_allowed
from orkestra.server.messages_api import MESSAGES
from orkestra.server.metrics import (
    MetricsMiddleware,
    ProxyMetrics,
    labels_of,
)
from orkestra.server.params import STRICT_HEADER, strict_requested
from orkestra.server.readiness import Readiness
from orkestra.server.response import cascade_steps_header, proxy_error
from orkestra.server.responses_api import RESPONSES
from orkestra.server.streaming import SSEResponse, StreamSession, Threads
from orkestra.server.tracing import ProxyTracer
from orkestra.server.wire import CHAT, Wire
from orkestra.usage import SQLUsageLog, UsageLog, UsageSink, open_usage_log

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["create_app"]

logger = logging.getLogger("orkestra.server")

# With several workers, how often each one writes its circuit and budget gauges.
METRICS_REFRESH_SECONDS = 5.0


def _new_id() -> str:
    return os.urandom(12).hex()


class _Proxy:
    """The app's state and endpoints (one per :func:`create_app`)."""

    def __init__(
        self,
        config: ServerConfig,
        dispatcher: Dispatcher,
        log: UsageLog | None,
        owns_log: bool,
        environ: Mapping[str, str] | None = None,
        tracer: ProxyTracer | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.dispatcher = dispatcher
        self.keys = KeyStore(config.keys)
        self.limits = KeyLimits(config.keys)
        self.budgets = KeyBudgets(config.keys, log, hold_seconds=max(3600.0, 4 * config.timeout))
        self.log = log
        self.owns_log = owns_log
        self.usage_sink = None if log is None else UsageSink(log, source="proxy", key_id=None)
        self.threads = Threads(config.max_concurrency)
        # Parsing is CPU work (a schema check can take a second of pure Python): no more
        # threads at it than cores, so the event loop is never queued behind many GIL holders.
        self.parsers = Threads(max(1, min(4, os.cpu_count() or 1)))
        self.admission = Admission(config.max_concurrency, config.queue_timeout)
        self.metrics = ProxyMetrics() if config.metrics else None
        self.readiness = Readiness(config, dispatcher, log, environ)

    # -- lifecycle -----------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            await self.threads.run(self.dispatcher.warm_up)
            await self.dispatcher.aopen()  # on the loop the requests will be served on
            self.readiness.warmed = True
        except Exception as exc:  # the first request will try again, and say what fails
            logger.warning("warming up failed: %s", exc)
        syncing = self.budgets.needs_sync and self.log is not None
        if syncing and self.log is not None:
            await self.threads.run(self.budgets.sync, self.log)
        try:
            async with anyio.create_task_group() as tasks:
                if syncing and self.log is not None:
                    tasks.start_soon(self._sync_budgets, self.log)
                if self.metrics is not None and self.metrics.multiprocess_dir is not None:
                    tasks.start_soon(self._refresh_metrics)
                yield
                tasks.cancel_scope.cancel()
        finally:
            await self.threads.run(self.close)

    async def _refresh_metrics(self) -> None:
        """With several workers a scrape reads every worker's gauges from their files: each
        worker keeps its own circuit and budget gauges current."""
        while True:
            await anyio.to_thread.run_sync(self._set_gauges)
            await anyio.sleep(METRICS_REFRESH_SECONDS)

    def _set_gauges(self) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.refresh(
                self.dispatcher.breaker,
                self.dispatcher.served_models(),
                self.budgets,
                self.config.keys,
            )
        except Exception:
            logger.exception("metrics: reading the circuit and budget state failed")

    async def _sync_budgets(self, log: UsageLog) -> None:
        while True:
            await anyio.sleep(self.config.budget_sync_seconds)
            try:
                await self.threads.run(self.budgets.sync, log)
            except Exception as exc:  # the database is away: keep the last known spend
                logger.warning("budgets: reading spend from the usage log failed: %s", exc)

    def close(self) -> None:
        self.dispatcher.close()
        self.budgets.close()
        if self.log is not None and self.owns_log:
            self.log.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.tracer is not None:
            self.tracer.close()

    # -- endpoints -----------------------------------------------------------------------

    async def health(self, request: Request) -> HTTPResponse:
        return json_response({"status": "ok", "providers": list(self.dispatcher.providers)})

    async def ready(self, request: Request) -> HTTPResponse:
        status, body = await self.readiness.check()
        return json_response(body, status)

    async def metrics_page(self, request: Request) -> HTTPResponse:
        assert self.metrics is not None  # the route exists only with metrics on
        try:
            if not self.config.metrics_public:
                self._authenticate(request)
        except ProxyError as error:
            return error_response(error)
        # Off the event loop: a shared budget's remaining is a database query, and with
        # workers the exposition reads every worker's files.
        body = await anyio.to_thread.run_sync(self._exposition)
        return HTTPResponse(body, media_type=self.metrics.content_type)

    def _exposition(self) -> bytes:
        assert self.metrics is not None
        self._set_gauges()
        return self.metrics.exposition()

    def _authenticate(self, request: Request) -> Client:
        client = self.keys.authenticate(request.headers.get("authorization"))
        labels_of(request.scope).key_id = client.key_id or ""
        return client

    def _listed(self, key_id: str | None) -> list[dict[str, Any]]:
        """``GET /v1/models``: what this key may use."""
        allowed = self.limits.models_of(key_id)
        return [
            entry
            for entry in self.dispatcher.model_list()
            if model_allowed(
                allowed,
                [*spellings(entry["id"]), f"{entry['owned_by']}/{entry['id']}"],
            )
        ]

    async def models(self, request: Request) -> HTTPResponse:
        try:
            client = self._authenticate(request)
        except ProxyError as error:
            return error_response(error)
        return json_response({"object": "list", "data": self._listed(client.key_id)})

    async def model(self, request: Request) -> HTTPResponse:
        try:
            client = self._authenticate(request)
            name = request.path_params["model"]
            destination = self.dispatcher.resolve(name)
            self.limits.check_model(client.key_id, name, names_of(destination))
        except ProxyError as error:
            return error_response(error)
        listed = {m["id"]: m for m in self.dispatcher.model_list()}
        entry = listed.get(name) or {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "orkestra",
        }
        return json_response(entry)

    async def chat_completions(self, request: Request) -> HTTPResponse:
        return await self.serve(request, CHAT)

    async def responses(self, request: Request) -> HTTPResponse:
        return await self.serve(request, RESPONSES)

    async def messages(self, request: Request) -> HTTPResponse:
        return await self.serve(request, MESSAGES)

    async def serve(self, request: Request, wire: Wire) -> HTTPResponse:
        """One model request on any client-facing API: the ``wire`` parses it and shapes the
        answer; everything between (keys, limits, admission, budgets, routing, the library
        call, the record) is the same for all of them."""
        request_id = _new_id()
        started = time.perf_counter()
        try:
            client = self.keys.authenticate(wire.credentials(request.headers))
            labels_of(request.scope).key_id = client.key_id or ""
            raw = await read_body(request, self.config.max_body_bytes, self.config.body_timeout)
            # Parsing and checking (a JSON Schema may take jsonschema a second) in a worker
            # thread, the event loop answering everyone else meanwhile; unless the body is
            # small and has no schema: then the hop would cost more than the parse.
            if parses_quickly(raw):
                params = wire.parse(raw)
            else:
                params = await self.parsers.run(wire.parse, raw)
            destination = self.dispatcher.resolve(params.model)
            self.limits.check_model(client.key_id, params.model, names_of(destination))
            if strict_requested(request.headers.get(STRICT_HEADER), self.config.strict_params):
                problem = self.dispatcher.strict_problem(destination, params)
                if problem is not None:
                    raise problem
            permit = self.limits.admit(client.key_id)
            try:
                slot = await self.admission.enter()  # a 503 when the proxy stays full
            except BaseException:
                permit.release()
                raise
        except ProxyError as error:
            return error_response(error, request_id, wire)
        except ClientDisconnect:
            logger.info(
                "%s %s: the client went away before its request arrived", wire.name, request_id
            )
            return error_response(
                bad_request("The request did not arrive whole."), request_id, wire
            )
        except RecursionError:  # some part of the request nests deeper than can be walked
            logger.warning(
                "%s %s: the request nests too deeply (RecursionError)", wire.name, request_id
            )
            return error_response(
                bad_request("The request nests too deeply to be served; flatten it."),
                request_id,
                wire,
            )
        except Exception:
            return internal_error(request_id, wire)
        call = ProxyCall(
            self.metrics,
            self.usage_sink,
            self.dispatcher,
            client,
            params,
            destination,
            request_id,
            started,
            labels_of(request.scope),
            route=request.url.path,
        )
        call.permit = permit
        return await self._answer(call, request.headers, slot, wire)

    async def _answer(
        self, call: ProxyCall, headers: Mapping[str, str], slot: Slot, wire: Wire
    ) -> HTTPResponse:
        """The answer to an admitted request, which holds ``slot`` until it is answered (a
        stream: until it ends)."""
        streaming = False
        try:
            if self.tracer is not None:
                call.span = self.tracer.start(
                    call.params,
                    headers,
                    providers=call.destination.providers,
                    routed=call.destination.model is None,
                    request_id=call.request_id,
                    key_id=call.client.key_id,
                )
            budget = self.budgets.get(call.client.key_id)
            if call.params.stream:
                streaming = True
                return await self._stream(call, budget, slot, wire)
            return await self._complete(call, budget, wire)
        except BaseException as error:
            call.permit.release()  # a no-op once the call has ended and released it
            if isinstance(error, ProxyError):
                return error_response(error, call.request_id, wire)
            if isinstance(error, Exception):
                return internal_error(call.request_id, wire)
            raise
        finally:
            if not streaming:
                slot.release()

    async def _complete(self, call: ProxyCall, budget: Budget | None, wire: Wire) -> HTTPResponse:
        try:
            response = await self.dispatcher.achat(
                call.destination, call.params, budget, call.usage_sink(), call.client.key_id
            )
        except OrkestraError as error:
            call.failed(error, None)
            raise with_where(proxy_error(error), error, call.request_id) from None
        call.succeeded(response)
        ignored = call.ignored_params(response)
        body = wire.answer(
            response,
            request_id=call.request_id,
            created=int(time.time()),
            params=call.params,
            ignored=ignored,
        )
        headers = routing_headers(response, call.request_id)
        if ignored:
            headers["x-orkestra-ignored-params"] = ",".join(ignored)
        return json_response(body, headers=headers)

    async def _stream(
        self, call: ProxyCall, budget: Budget | None, slot: Slot, wire: Wire
    ) -> HTTPResponse:
        """The answer as Server-Sent Events; ``slot`` is released when the stream ends."""
        try:
            session = await self._open_stream(call, budget, slot, wire)
        except BaseException:
            slot.release()
            raise
        # Read after the first chunk: a cascade has settled which model answers by then.
        stream = session.stream
        routing = stream.routing
        session.formatter.model = routing.model
        headers = {
            "x-orkestra-provider": routing.provider,
            "x-orkestra-model": routing.model,
            "x-orkestra-tier": routing.tier,
            "x-request-id": call.request_id,
        }
        report = stream.cascade
        if report is not None:
            answering = None
            if stream.response is None and not any(s.accepted for s in report.steps):
                answering = f"{routing.provider}/{routing.model}"
            headers["x-orkestra-cascade-steps"] = cascade_steps_header(report, answering)
        return SSEResponse(session, headers)

    async def _open_stream(
        self, call: ProxyCall, budget: Budget | None, slot: Slot, wire: Wire
    ) -> StreamSession:
        try:
            stream = await self.dispatcher.astream(
                call.destination, call.params, budget, call.usage_sink(), call.client.key_id
            )
        except OrkestraError as error:  # routing or planning failed: nothing was called
            call.failed(error, None)
            raise with_where(proxy_error(error), error, call.request_id) from None
        events = wire.stream_format(
            request_id=call.request_id,
            created=int(time.time()),
            model=stream.routing.model,
            params=call.params,
        )
        session = StreamSession(stream, events, call, on_close=slot.release)
        try:
            await session.start()
        except OrkestraError as error:  # recorded by the session
            raise with_where(proxy_error(error), error, call.request_id) from None
        return session


async def _http_error(request: Request, exc: Exception) -> HTTPResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}."
    elif status == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
    else:
        message = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return error_response(
        ProxyError(status, message, code="invalid_url" if status == 404 else None)
    )


def create_app(
    config: ServerConfig,
    *,
    usage_log: UsageLog | None = None,
    environ: Mapping[str, str] | None = None,
    circuit_breaker: CircuitBreaker | None = None,
    catalog: Catalog | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """The proxy app for ``config``.

    Provider keys are read from the environment (``environ``, default ``os.environ``) now: a
    missing one raises :class:`~orkestra.ConfigurationError`. ``usage_log``: record calls in this
    log (default: the one the config names, opened here and closed with the app). The app's
    circuit breaker is its own (``circuit_breaker`` to share one). ``catalog``: the models
    and their capabilities to route among (default: :func:`~orkestra.catalog.default_catalog`).
    ``tracer_provider``: an OpenTelemetry tracer provider to send the calls' spans to (default:
    spans only when tracing is configured, :mod:`orkestra.server.tracing`).
    """
    dispatcher = Dispatcher(
        config,
        breaker=circuit_breaker or CircuitBreaker(),
        environ=environ,
        catalog=catalog,
    )
    log = usage_log
    owns_log = False
    if log is None and config.usage_log:
        try:
            log = open_usage_log(config.database_url, store_prompts=config.store_prompts)
        except BaseException:
            dispatcher.close()
            raise
        owns_log = True
    try:
        if config.shared_sessions and isinstance(log, SQLUsageLog):
            # closed with the dispatcher
            dispatcher.sessions = log.session_store(ttl=config.session_ttl)
        tracer = ProxyTracer.create(config, environ, provider=tracer_provider)
        proxy = _Proxy(config, dispatcher, log, owns_log, environ, tracer)
    except BaseException:
        dispatcher.close()
        if log is not None and owns_log:
            log.close()
        raise
    routes = [
        Route("/v1/chat/completions", proxy.chat_completions, methods=["POST"]),
        Route("/v1/responses", proxy.responses, methods=["POST"]),
        Route("/v1/messages", proxy.messages, methods=["POST"]),
        Route("/v1/models", proxy.models, methods=["GET"]),
        Route("/v1/models/{model:path}", proxy.model, methods=["GET"]),
        Route("/healthz", proxy.health, methods=["GET"]),
        Route("/readyz", proxy.ready, methods=["GET"]),
    ]
    # The guard first: a request a web page may not make is refused before anything else.
    middleware = [Middleware(BrowserGuard, hosts=config.hosts, origins=config.allowed_origins)]
    if proxy.metrics is not None:
        routes.append(Route("/metrics", proxy.metrics_page, methods=["GET"]))
        middleware.append(Middleware(MetricsMiddleware, metrics=proxy.metrics))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=proxy.lifespan,
    )
    app.state.proxy = proxy
    return app
