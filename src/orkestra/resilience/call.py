"""One request through the resilience layer: the seam every entry point shares.

``Provider.chat``/``stream`` and ``MultiProvider.chat``/``stream`` all build a :class:`Call` (the
checked request, the endpoints its attempts may reach, the retry policy, breaker and usage sinks),
plan the :class:`~orkestra.resilience.executor.Target` list, and run it here; only the thin
drivers differ between a plain call and a stream, and between sync and async
(``achat``/``astream``): what happens around the attempts (the response, the usage log,
structured-output validation, sticky sessions, a stream's events) is written once for all four.

A call only goes down: it asks an :class:`~orkestra._endpoint.Endpoint` for each attempt and
writes to a :class:`~orkestra.usage.UsageSink`; it never calls back into the provider objects
that made it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from orkestra._endpoint import Endpoint
from orkestra._options import structured
from orkestra._types import Attempt, CascadeReport, Replaced, Response, RoutingDecision, Usage
from orkestra.catalog import cost_of
from orkestra.errors import OrkestraError, StructuredOutputError
from orkestra.providers.base import ChatRequest, Finished, StreamEvent
from orkestra.resilience import drivers
from orkestra.resilience.breaker import BreakerKey, CircuitBreaker
from orkestra.resilience.drivers import Result
from orkestra.resilience.executor import Flow, Target
from orkestra.resilience.retry import RetryPolicy
from orkestra.usage import UsageSink
from orkestra.usage.records import new_record_id

if TYPE_CHECKING:  # a call is handed its checked Request; it never imports the layer above
    from orkestra._call import Request

__all__ = [
    "AsyncResponseStream",
    "Call",
    "ResponseStream",
    "StreamClosed",
    "fallback_moves",
    "respond",
]


class StreamClosed(Exception):
    """What the usage log records for a stream its reader closed before it ended (``attempts``:
    the answers it had already had, and billed: a cascade's discarded steps)."""

    attempts: tuple[Attempt, ...] = ()


def fallback_moves(response: Any) -> list[dict[str, Any]]:
    """The model changes a finished call went through (the ``on_fallback`` events). A call
    made after one that *answered* is a cascade climbing to a stronger model, not a fallback."""
    attempts = list(getattr(response, "attempts", ()) or ())
    moves = []
    for before, after in itertools.pairwise(attempts):
        if before.ok:
            continue
        if (before.provider, before.model) != (after.provider, after.model):
            moves.append(
                {
                    "from_provider": before.provider,
                    "from_model": before.model,
                    "to_provider": after.provider,
                    "to_model": after.model,
                    "error": before.error,
                }
            )
    return moves


class Call:
    """One request: what it asks, the endpoints its attempts may reach, how to retry, and
    where its usage is recorded (``sinks``: per provider name; None: not recorded)."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        request: Request,
        *,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        sinks: Mapping[str, UsageSink | None] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.request = request
        self.policy, self.breaker = policy, breaker
        # One record id for the call, whichever provider answers: each attempt's hold (below)
        # and the record that settles them are journaled under it.
        given = [s.record_id for s in (sinks or {}).values() if s is not None and s.record_id]
        call_id = self.call_id = given[0] if given else new_record_id()
        self.sinks = {
            name: sink if sink is None or sink.record_id else sink.labelled(record_id=call_id)
            for name, sink in (sinks or {}).items()
        }
        self.on_response: Callable[[Response], None] | None = None
        """Called with each successful response, after it is recorded (sticky sessions)."""
        self.on_response_blocks = False
        """``on_response`` waits on I/O (a session store in a database): an async call runs
        the end of its answer in a worker thread, off the event loop."""
        self._dropped: dict[BreakerKey, tuple[str, ...]] = {}

    def _prepare(self, target: Target) -> tuple[Endpoint, ChatRequest]:
        """The attempt's request; its worst case journaled first (a crash from here on counts
        the attempt at that, until the call is recorded)."""
        sink, key_id = self._sink(target.decision.provider)
        if sink is not None:
            sink.hold(
                target.expected_cost,
                provider=target.decision.provider,
                model=target.model.id,
                tier=target.decision.tier,
                key_id=key_id,
            )
        endpoint = self.endpoints[target.decision.provider]
        prepared = endpoint.prepare(target.model, self.request.prompt, self.request.options)
        self._dropped[target.key] = prepared.dropped
        return endpoint, prepared.request

    def complete(self, target: Target) -> tuple[str, Finished]:
        """One non-streaming attempt on ``target``."""
        endpoint, request = self._prepare(target)
        return endpoint.complete(request)

    def open(self, target: Target) -> Iterator[StreamEvent]:
        """One streaming attempt on ``target``."""
        endpoint, request = self._prepare(target)
        return endpoint.stream(request)

    async def acomplete(self, target: Target) -> tuple[str, Finished]:
        """One non-streaming attempt on ``target``, on the SDK's async client."""
        endpoint, request = self._prepare(target)
        return await endpoint.acomplete(request)

    def aopen(self, target: Target) -> AsyncIterator[StreamEvent]:
        """One streaming attempt on ``target``, on the SDK's async client."""
        endpoint, request = self._prepare(target)
        return endpoint.astream(request)

    def flow(self, targets: Sequence[Target]) -> Flow:
        return Flow(targets, self.policy, self.breaker)

    def chat(self, targets: Sequence[Target]) -> Response:
        started = time.perf_counter()
        try:
            result = drivers.complete(self.flow(targets), self.complete)
        except OrkestraError as error:
            self.record_failure(targets, error, started)
            raise
        return self.answer(result, started)

    async def achat(self, targets: Sequence[Target]) -> Response:
        """:meth:`chat` on the async clients: the same flow, its sleeps ``asyncio.sleep``."""
        started = time.perf_counter()
        try:
            result = await drivers.acomplete(self.flow(targets), self.acomplete)
        except OrkestraError as error:
            self.record_failure(targets, error, started)
            raise
        if self.on_response_blocks:
            return await asyncio.to_thread(self.answer, result, started)
        return self.answer(result, started)

    def respond(self, result: Result, started: float) -> Response:
        """The :class:`Response` for the attempt that answered."""
        response = respond(result, started, self._dropped.get(result.target.key, ()))
        # The answer's id is its record's: recording it again adds no second row.
        return dataclasses.replace(response, call_id=self.call_id)

    def answer(self, result: Result, started: float) -> Response:
        """The response of a successful call, its structured output validated, then recorded
        (an answer that fails its ``response_format`` was still made and billed: it is recorded
        with the error's name as its status)."""
        response = self.respond(result, started)
        try:
            parsed = self.parsed(response)
        except StructuredOutputError as error:
            self.record(response, error)
            raise
        self.record(response)
        return parsed

    def parsed(self, response: Response) -> Response:
        """With ``response_format``: the response with its validated ``parsed`` value, or
        :class:`StructuredOutputError` carrying it (the call was made and billed either way).
        An answer that is all tool calls has nothing to parse."""
        options = self.request.options
        if options.response_format is None or (response.tool_calls and not response.text):
            return response
        try:
            value = structured(response.text, options)
        except StructuredOutputError as error:
            error.response = response
            error.attempts = response.attempts
            raise
        return dataclasses.replace(response, parsed=value)

    def _sink(self, provider: str) -> tuple[UsageSink | None, str | None]:
        endpoint = self.endpoints.get(provider)
        return self.sinks.get(provider), None if endpoint is None else endpoint.key_id

    def record(self, response: Response, error: Exception | None = None) -> None:
        """Write a finished call to its usage sink (never raises), then settle its session.
        ``error``: the answer was made and billed but the call still failed (its
        ``response_format``, a cascade's check that raised)."""
        sink, key_id = self._sink(response.provider)
        if sink is not None:
            sink.record_response(
                response,
                prompt=self.request.all_text,
                key_id=key_id,
                status="ok" if error is None else type(error).__name__,
                error=None if error is None else str(error),
            )
        if self.on_response is not None:
            self.on_response(response)

    def record_failure(self, targets: Sequence[Target], error: Exception, started: float) -> None:
        """Write a failed call (after every retry and fallback) to its usage sink."""
        if not targets:
            return
        routing = targets[0].decision
        sink, key_id = self._sink(routing.provider)
        if sink is not None:
            sink.record_error(
                error,
                provider=routing.provider,
                model=routing.model,
                prompt=self.request.all_text,
                routing=routing,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                key_id=key_id,
            )

    def stream(self, targets: Sequence[Target], routing: RoutingDecision) -> ResponseStream:
        return ResponseStream(self, targets, routing)

    def astream(self, targets: Sequence[Target], routing: RoutingDecision) -> AsyncResponseStream:
        return AsyncResponseStream(self, targets, routing)


def respond(result: Result, started: float, dropped: tuple[str, ...] = ()) -> Response:
    """The :class:`Response` for the attempt that answered, with every attempt made for it."""
    target, usage = result.target, result.finished.usage
    model = target.model
    base = target.base_model or model
    base_cost = result.cost if base.id == model.id else cost_of(base, usage)
    cache_savings = 0.0
    if usage.cache_read_tokens or usage.cache_write_tokens:
        uncached = cost_of(model, Usage(usage.input_tokens, usage.output_tokens))
        cache_savings = uncached.total - result.cost.total
    routing = target.decision
    failed = [f"{a.provider}/{a.model} {a.error}" for a in result.attempts if not a.ok]
    if failed:
        routing = dataclasses.replace(
            routing, reason=f"{routing.reason} [after {'; '.join(dict.fromkeys(failed))}]"
        )
    return Response(
        text=result.text,
        provider=target.decision.provider,
        model=model.id,
        usage=usage,
        input_cost=result.cost.input_cost,
        output_cost=result.cost.output_cost,
        base_model=base.id,
        base_cost=base_cost.total,
        routing=routing,
        finish_reason=result.finished.finish_reason,
        stop_reason=result.finished.stop_reason,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        response_id=result.finished.response_id,
        attempts=result.attempts,
        tool_calls=result.finished.tool_calls,
        cache_savings=cache_savings,
        ignored_params=dropped,
    )


Event = tuple[str, dict[str, Any]]
"""An event a stream emits: its name and payload (see :mod:`orkestra.hooks`)."""


class _Stream:
    """What a sync and an async stream share: the text so far, the response at the end, and
    the bookkeeping around the attempts (the usage log, structured output, the events to emit).
    Only the iteration differs between the two."""

    def __init__(self, call: Call, targets: Sequence[Target], routing: RoutingDecision) -> None:
        self._call, self._targets = call, targets
        self.routing = routing
        self.response: Response | None = None
        self._chunks: list[str] = []
        self._started = time.perf_counter()
        self._recorded = False

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._chunks)

    @property
    def usage(self) -> Usage | None:
        return self.response.usage if self.response else None

    @property
    def cascade(self) -> CascadeReport | None:
        """A cascade's steps so far (None: a routed stream)."""
        return self.response.cascade if self.response else None

    def _take(self, item: str | Result) -> str | None:
        """A driver's item: the chunk to hand out, or None for the final result."""
        if isinstance(item, str):
            self._chunks.append(item)
            return item
        self.response = self._call.respond(item, self._started)
        self.routing = self.response.routing
        return None

    def _finish(self) -> list[Event]:
        """Record the finished stream, validate its structured output (raising
        :class:`StructuredOutputError`), and return the events that end it."""
        if self.response is None:
            return []
        try:
            parsed = self._call.parsed(self.response)
        except StructuredOutputError as error:
            self._call.record(self.response, error)
            self._recorded = True
            raise
        self._call.record(self.response)
        self._recorded = True
        self.response = parsed
        return [
            *(("on_fallback", move) for move in fallback_moves(self.response)),
            ("on_stream_complete", {"response": self.response}),
            ("on_response", {"response": self.response}),
        ]

    def _closed(self) -> None:
        """The reader closed the stream before it ended: record it (what it billed so far was
        settled on the budgets when the attempt was abandoned)."""
        if not self._recorded and self.response is None:
            self._recorded = True
            closed = StreamClosed("the stream was closed before it ended")
            self._call.record_failure(self._targets, closed, self._started)

    def _failed(self, error: OrkestraError) -> Event:
        """Record a failed stream (unless it was answered and recorded, and only its
        structured output was invalid); return the ``on_error`` event."""
        if not self._recorded:
            self._call.record_failure(self._targets, error, self._started)
        return "on_error", {"error": error, "partial_text": self.text}


class ResponseStream(_Stream):
    """A streaming answer: iterate it for text chunks; ``.response`` is set when it ends.

    A stream that fails before its first chunk is retried or falls back like any call. If it
    breaks after text has arrived, iteration raises
    :class:`~orkestra.errors.StreamInterruptedError` carrying the partial text (it is never
    retried: that text is already yours).
    """

    def __init__(self, call: Call, targets: Sequence[Target], routing: RoutingDecision) -> None:
        super().__init__(call, targets, routing)
        self.notify: Callable[..., None] | None = None
        """Set by the caller to emit on_chunk / on_stream_complete / on_response / on_error."""
        self._iterator = self._run()

    def __iter__(self) -> Iterator[str]:
        return self._iterator

    def events(self) -> Iterator[str | Replaced]:
        """The stream's items: text chunks (``str``), and, in a cascade streamed with
        ``cascade_streaming="replace"``, a :class:`~orkestra.Replaced` marker where an answer
        already shown is withdrawn. A routed stream yields text only."""
        return self._iterator

    def close(self) -> None:
        """Stop reading: the connection is closed and the call's budget reservation settled."""
        self._iterator.close()

    def _emit(self, name: str, event: dict[str, Any]) -> None:
        if self.notify is not None:
            self.notify(name, **event)

    def _run(self) -> Generator[str, None, None]:
        self._started = time.perf_counter()
        try:
            for item in drivers.stream(self._call.flow(self._targets), self._call.open):
                if (chunk := self._take(item)) is not None:
                    self._emit("on_chunk", {"chunk": chunk})
                    yield chunk
            events = self._finish()
        except OrkestraError as error:
            self._emit(*self._failed(error))
            raise
        except GeneratorExit:
            self._closed()
            raise
        for name, event in events:
            self._emit(name, event)


class AsyncResponseStream(_Stream):
    """:class:`ResponseStream` for async code: ``async for chunk in stream``; ``.response`` is
    set when it ends. Retries, fallbacks and interruptions behave the same; ``aclose()`` stops
    reading early (the connection is closed and the budget reservation settled).
    """

    def __init__(self, call: Call, targets: Sequence[Target], routing: RoutingDecision) -> None:
        super().__init__(call, targets, routing)
        self.notify: Callable[..., Awaitable[None]] | None = None
        """Set by the caller to emit on_chunk / on_stream_complete / on_response / on_error."""
        self._iterator = self._run()

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        return await self._iterator.__anext__()

    def events(self) -> AsyncIterator[str | Replaced]:
        """:meth:`ResponseStream.events` for async code."""
        return self._iterator

    async def aclose(self) -> None:
        """Stop reading: the connection is closed and the call's budget reservation settled."""
        await self._iterator.aclose()

    async def _emit(self, name: str, event: dict[str, Any]) -> None:
        if self.notify is not None:
            await self.notify(name, **event)

    async def _run(self) -> AsyncGenerator[str, None]:
        self._started = time.perf_counter()
        try:
            async for item in drivers.astream(self._call.flow(self._targets), self._call.aopen):
                if (chunk := self._take(item)) is not None:
                    await self._emit("on_chunk", {"chunk": chunk})
                    yield chunk
            if self._call.on_response_blocks:
                events = await asyncio.to_thread(self._finish)
            else:
                events = self._finish()
        except OrkestraError as error:
            await self._emit(*self._failed(error))
            raise
        except (GeneratorExit, asyncio.CancelledError):  # closed, or its reader cancelled
            self._closed()
            raise
        for name, event in events:
            await self._emit(name, event)
