"""One request through the resilience layer: the seam every entry point shares.

``Provider.chat``/``stream`` and ``MultiProvider.chat``/``stream`` all build a :class:`Call` (the
request's arguments, the providers its attempts may reach, the retry policy and breaker), plan
the :class:`~orkestra.resilience.executor.Target` list, and run it here; only the thin drivers
differ between a plain call and a stream, and between sync and async (``achat``/``astream``):
what happens around the attempts (the response, the usage log, structured-output validation,
sticky sessions, a stream's events) is written once for all four.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Sequence,
)
from typing import Any, Protocol

from orkestra._conversation import Prompt, prompt_text
from orkestra._options import RequestOptions, structured
from orkestra._types import Response, RoutingDecision, Usage
from orkestra.catalog import ModelInfo, cost_of
from orkestra.errors import OrkestraError, StructuredOutputError
from orkestra.hooks import fallbacks
from orkestra.providers.base import ChatRequest, Finished, StreamEvent
from orkestra.resilience import drivers
from orkestra.resilience.breaker import CircuitBreaker
from orkestra.resilience.drivers import Result
from orkestra.resilience.executor import Flow, Target
from orkestra.resilience.retry import RetryPolicy

__all__ = ["AsyncResponseStream", "Call", "Endpoint", "ResponseStream", "respond"]


class Endpoint(Protocol):
    """What a call needs from a provider to make one attempt (``orkestra.Provider`` is one)."""

    name: str

    @property
    def premium_model(self) -> ModelInfo: ...

    def request(
        self,
        model: ModelInfo,
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        options: RequestOptions = ...,
    ) -> ChatRequest: ...

    def complete_once(self, request: ChatRequest) -> tuple[str, Finished]: ...

    def stream_once(self, request: ChatRequest) -> Iterator[StreamEvent]: ...

    async def acomplete_once(self, request: ChatRequest) -> tuple[str, Finished]: ...

    def astream_once(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...


class Call:
    """One request: its arguments, the providers its attempts may reach, and how to retry."""

    def __init__(
        self,
        providers: Sequence[Endpoint],
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        *,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        options: RequestOptions | None = None,
    ) -> None:
        self._by_name = {p.name: p for p in providers}
        self.prompt, self.max_tokens, self.temperature = prompt, max_tokens, temperature
        self.policy, self.breaker = policy, breaker
        self.options = options or RequestOptions()
        self.on_response: Callable[[Response], None] | None = None
        """Called with each successful response, after it is recorded (sticky sessions)."""

    def provider(self, target: Target) -> Endpoint:
        return self._by_name[target.decision.provider]

    def _request(self, target: Target) -> tuple[Endpoint, ChatRequest]:
        provider = self.provider(target)
        request = provider.request(
            target.model, self.prompt, self.max_tokens, self.temperature, self.options
        )
        return provider, request

    def complete(self, target: Target) -> tuple[str, Finished]:
        """One non-streaming attempt on ``target``."""
        provider, request = self._request(target)
        return provider.complete_once(request)

    def open(self, target: Target) -> Iterator[StreamEvent]:
        """One streaming attempt on ``target``."""
        provider, request = self._request(target)
        return provider.stream_once(request)

    async def acomplete(self, target: Target) -> tuple[str, Finished]:
        """One non-streaming attempt on ``target``, on the SDK's async client."""
        provider, request = self._request(target)
        return await provider.acomplete_once(request)

    def aopen(self, target: Target) -> AsyncIterator[StreamEvent]:
        """One streaming attempt on ``target``, on the SDK's async client."""
        provider, request = self._request(target)
        return provider.astream_once(request)

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
        return self.answer(result, started)

    def answer(self, result: Result, started: float) -> Response:
        """The response of a successful call: recorded, then its structured output validated
        (recorded first: a :class:`StructuredOutputError` answer was still made and billed)."""
        response = respond(self.provider(result.target), result, started)
        self.record(response)
        return self.parsed(response)

    def parsed(self, response: Response) -> Response:
        """With ``response_format``: the response with its validated ``parsed`` value, or
        :class:`StructuredOutputError` carrying it (the call was made and billed either way).
        An answer that is all tool calls has nothing to parse."""
        if self.options.response_format is None or (response.tool_calls and not response.text):
            return response
        try:
            value = structured(response.text, self.options)
        except StructuredOutputError as error:
            error.response = response
            error.attempts = response.attempts
            raise
        return dataclasses.replace(response, parsed=value)

    def _recording(self, provider: Endpoint) -> bool:
        return bool(getattr(provider, "record_usage", False))

    def record(self, response: Response) -> None:
        """Write a finished call to the usage log (never raises; see orkestra.analytics)."""
        provider = self._by_name.get(response.provider)
        if provider is not None and self._recording(provider):
            from orkestra import analytics

            analytics.record_response(
                response, prompt=prompt_text(self.prompt), key_id=getattr(provider, "key_id", None)
            )
        if self.on_response is not None:
            self.on_response(response)

    def record_failure(self, targets: Sequence[Target], error: Exception, started: float) -> None:
        """Write a failed call (after every retry and fallback) to the usage log."""
        if not targets:
            return
        routing = targets[0].decision
        provider = self._by_name.get(routing.provider)
        if provider is not None and self._recording(provider):
            from orkestra import analytics

            analytics.record_error(
                routing.provider,
                routing.model,
                error,
                prompt=prompt_text(self.prompt),
                routing=routing,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                key_id=getattr(provider, "key_id", None),
            )

    def stream(self, targets: Sequence[Target], routing: RoutingDecision) -> ResponseStream:
        return ResponseStream(self, targets, routing)

    def astream(self, targets: Sequence[Target], routing: RoutingDecision) -> AsyncResponseStream:
        return AsyncResponseStream(self, targets, routing)


def respond(provider: Endpoint, result: Result, started: float) -> Response:
    """The :class:`Response` for the attempt that answered, with every attempt made for it."""
    model, usage = result.target.model, result.finished.usage
    base = provider.premium_model
    base_cost = result.cost if base.id == model.id else cost_of(base, usage)
    cache_savings = 0.0
    if usage.cache_read_tokens or usage.cache_write_tokens:
        uncached = cost_of(model, Usage(usage.input_tokens, usage.output_tokens))
        cache_savings = uncached.total - result.cost.total
    routing = result.target.decision
    failed = [f"{a.provider}/{a.model} {a.error}" for a in result.attempts if not a.ok]
    if failed:
        routing = dataclasses.replace(
            routing, reason=f"{routing.reason} [after {'; '.join(dict.fromkeys(failed))}]"
        )
    return Response(
        text=result.text,
        provider=provider.name,
        model=model.id,
        usage=usage,
        input_cost=result.cost.input_cost,
        output_cost=result.cost.output_cost,
        base_model=base.id,
        base_cost=base_cost.total,
        routing=routing,
        finish_reason=result.finished.finish_reason,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        response_id=result.finished.response_id,
        attempts=result.attempts,
        tool_calls=result.finished.tool_calls,
        cache_savings=cache_savings,
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

    def _take(self, item: str | Result) -> str | None:
        """A driver's item: the chunk to hand out, or None for the final result."""
        if isinstance(item, str):
            self._chunks.append(item)
            return item
        self.response = respond(self._call.provider(item.target), item, self._started)
        self.routing = self.response.routing
        return None

    def _finish(self) -> list[Event]:
        """Record the finished stream, validate its structured output (raising
        :class:`StructuredOutputError`), and return the events that end it."""
        if self.response is None:
            return []
        self._call.record(self.response)
        self._recorded = True
        self.response = self._call.parsed(self.response)
        return [
            *(("on_fallback", move) for move in fallbacks(self.response)),
            ("on_stream_complete", {"response": self.response}),
            ("on_response", {"response": self.response}),
        ]

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
            events = self._finish()
        except OrkestraError as error:
            await self._emit(*self._failed(error))
            raise
        for name, event in events:
            await self._emit(name, event)
