"""Thin drivers that run a :class:`~orkestra.resilience.executor.Flow`: sync, streaming, async.

They differ only in how they wait and call; every decision is the flow's. The call functions
they are given make one attempt on one target and raise orkestra errors (SDK errors already
mapped at ``orkestra.providers._errors``).

Streaming: until the first text chunk is handed to the caller a failed stream is retried or
falls back like any call; after it, the failure raises :class:`StreamInterruptedError` with the
partial text and whatever usage the provider had reported, and nothing is retried.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

from orkestra._types import Attempt, Cost, Usage
from orkestra.catalog import ModelInfo, cost_of
from orkestra.errors import OrkestraError, ProviderConnectionError, StreamInterruptedError
from orkestra.providers.base import Finished, StreamEvent, TextDelta, UsageReport
from orkestra.resilience.executor import Call, Flow, Outcome, Sleep, Stop, Target

__all__ = ["Result", "acomplete", "astream", "complete", "stream"]


@dataclass(frozen=True)
class Result:
    """The answer of the attempt that succeeded, and every attempt made for it."""

    target: Target
    text: str
    finished: Finished
    cost: Cost
    attempts: tuple[Attempt, ...]
    retries: int = 0
    fallbacks: int = 0


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _billed(model: ModelInfo, usage: Usage) -> float:
    return cost_of(model, usage).total if usage != Usage() else 0.0


def _success(
    flow: Flow, target: Target, text: str, finished: Finished, cost: Cost, started: float
) -> Result:
    flow.record(Outcome(None, finished.usage, cost.total, _ms(started)))
    return Result(target, text, finished, cost, flow.attempts, flow.retries, flow.fallbacks)


def _interrupted(
    flow: Flow, target: Target, error: OrkestraError, text: str, usage: Usage, started: float
) -> OrkestraError:
    """Record a stream that broke after text was handed out; return the error to raise."""
    interrupted = StreamInterruptedError(
        f"{target}: the stream broke after {len(text)} characters: {error}",
        provider=target.decision.provider,
        model=target.model.id,
        partial_text=text,
        usage=usage if usage != Usage() else None,
        status_code=getattr(error, "status_code", None),
    )
    flow.record(Outcome(interrupted, usage, _billed(target.model, usage), _ms(started), final=True))
    step = flow.next_step()
    assert isinstance(step, Stop)
    return step.error


class _Streaming:
    """One streaming attempt's state: the text handed out and the usage reported so far."""

    def __init__(self, flow: Flow, target: Target) -> None:
        self.flow, self.target, self.started = flow, target, time.perf_counter()
        self.usage, self.parts = Usage(), list[str]()

    def feed(self, event: StreamEvent) -> str | Result | None:
        """What to hand the caller for ``event``: a chunk, the final result, or nothing."""
        if isinstance(event, UsageReport):
            self.usage = event.usage
            return None
        if isinstance(event, TextDelta):
            if event.text:
                self.parts.append(event.text)
            return event.text or None
        cost = cost_of(self.target.model, event.usage)
        return _success(self.flow, self.target, "".join(self.parts), event, cost, self.started)

    def failed(self, error: OrkestraError) -> OrkestraError | None:
        """Record a failure; the error to raise if text was already handed out, else None."""
        billed = _billed(self.target.model, self.usage)
        if self.parts:
            text = "".join(self.parts)
            return _interrupted(self.flow, self.target, error, text, self.usage, self.started)
        self.flow.record(Outcome(error, self.usage, billed, _ms(self.started)))
        return None

    def abandoned(self) -> None:
        """The reader closed the stream. Once text was handed out, what the attempt billed is
        unknown (the provider's final usage never came), so its whole hold counts: a budget
        never counts less than was spent."""
        billed = _billed(self.target.model, self.usage)
        cost = max(billed, self.target.reservation) if self.parts else billed
        self.flow.abandon(Outcome(usage=self.usage, cost=cost))


def _unfinished(target: Target) -> OrkestraError:
    return ProviderConnectionError(
        f"{target}: the stream ended without its final event",
        provider=target.decision.provider,
        model=target.model.id,
    )


# -- sync ------------------------------------------------------------------------------------


def complete(flow: Flow, call: Callable[[Target], tuple[str, Finished]]) -> Result:
    """Run ``flow`` to an answer, calling ``call(target)`` for each attempt."""
    while True:
        step = flow.next_step()
        if isinstance(step, Stop):
            raise step.error
        if isinstance(step, Sleep):
            flow.policy.sleep(step.seconds)
            continue
        started = time.perf_counter()
        try:
            text, finished = call(step.target)
            cost = cost_of(step.target.model, finished.usage)  # PricingError: never billed as $0
        except OrkestraError as error:
            flow.record(Outcome(error, latency_ms=_ms(started)))
            continue
        except BaseException:
            flow.abandon()
            raise
        return _success(flow, step.target, text, finished, cost, started)


def stream(
    flow: Flow, open_stream: Callable[[Target], Iterator[StreamEvent]]
) -> Iterator[str | Result]:
    """Run ``flow`` as a stream: text chunks (``str``), then one :class:`Result`."""
    while True:
        step = flow.next_step()
        if isinstance(step, Stop):
            raise step.error
        if isinstance(step, Sleep):
            flow.policy.sleep(step.seconds)
            continue
        yield from _stream_attempt(flow, step, open_stream)
        if flow.attempts and flow.attempts[-1].ok:
            return


def _stream_attempt(
    flow: Flow, step: Call, open_stream: Callable[[Target], Iterator[StreamEvent]]
) -> Iterator[str | Result]:
    attempt = _Streaming(flow, step.target)
    events: Iterator[StreamEvent] | None = None
    try:
        events = open_stream(step.target)
        for event in events:
            if (item := attempt.feed(event)) is not None:
                yield item
                if isinstance(item, Result):
                    return
        raise _unfinished(step.target)
    except OrkestraError as error:
        if (interrupted := attempt.failed(error)) is not None:
            raise interrupted from error
    except BaseException:  # the caller closed the stream or was interrupted
        attempt.abandoned()
        raise
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            with suppress(Exception):
                close()


# -- async -----------------------------------------------------------------------------------
#
# A flow whose budgets wait on I/O (a SharedBudget: a database transaction per reservation and
# per settlement) is stepped in a worker thread, so the event loop never waits on the database.
# A reservation or settlement, once started, runs to its end even if the call is cancelled
# meanwhile (the cancellation is raised after it): a cancelled call never leaves a hold behind.

T = TypeVar("T")


async def _unstoppable(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread, awaited to its end even through a cancellation (raised
    once ``fn`` has returned)."""
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(None, functools.partial(fn, *args))
    except RuntimeError:  # the loop's executor is shut down (the loop is closing): here, then
        return fn(*args)
    cancelled: BaseException | None = None
    while not future.done():
        try:
            await asyncio.wait([future])  # a cancelled wait leaves the future running
        except asyncio.CancelledError as exc:
            cancelled = exc
    result = future.result()
    if cancelled is not None:
        raise cancelled
    return result


async def _book(flow: Flow, fn: Callable[..., T], *args: object) -> T:
    """Bookkeeping that may reserve or settle budgets: here, or in a thread if it waits on I/O."""
    if not flow.blocking:
        return fn(*args)
    return await _unstoppable(fn, *args)


async def _next_step(flow: Flow) -> Call | Sleep | Stop:
    if not flow.blocking:
        return flow.next_step()
    try:
        return await _unstoppable(flow.next_step)
    except asyncio.CancelledError:  # reserved, but the call will not be made
        await _unstoppable(flow.abandon)
        raise


async def _fed(flow: Flow, attempt: _Streaming, event: StreamEvent) -> str | Result | None:
    if isinstance(event, Finished):  # settles the attempt's reservations
        return await _book(flow, attempt.feed, event)
    return attempt.feed(event)


async def acomplete(
    flow: Flow,
    call: Callable[[Target], Awaitable[tuple[str, Finished]]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Result:
    """:func:`complete` for coroutines: the same flow, awaited."""
    while True:
        step = await _next_step(flow)
        if isinstance(step, Stop):
            raise step.error
        if isinstance(step, Sleep):
            await sleep(step.seconds)
            continue
        started = time.perf_counter()
        try:
            text, finished = await call(step.target)
            cost = cost_of(step.target.model, finished.usage)
        except OrkestraError as error:
            await _book(flow, flow.record, Outcome(error, latency_ms=_ms(started)))
            continue
        except BaseException:  # cancelled
            await _book(flow, flow.abandon)
            raise
        return await _book(flow, _success, flow, step.target, text, finished, cost, started)


async def astream(
    flow: Flow,
    open_stream: Callable[[Target], AsyncIterator[StreamEvent]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[str | Result]:
    """:func:`stream` for async iterators."""
    while True:
        step = await _next_step(flow)
        if isinstance(step, Stop):
            raise step.error
        if isinstance(step, Sleep):
            await sleep(step.seconds)
            continue
        attempt = _Streaming(flow, step.target)
        events: AsyncIterator[StreamEvent] | None = None
        try:
            events = open_stream(step.target)
            async for event in events:
                if (item := await _fed(flow, attempt, event)) is not None:
                    yield item
                    if isinstance(item, Result):
                        return
            raise _unfinished(step.target)
        except OrkestraError as error:
            if (interrupted := await _book(flow, attempt.failed, error)) is not None:
                raise interrupted from error
        except BaseException:  # closed by the reader, or cancelled
            await _book(flow, attempt.abandoned)
            raise
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with suppress(Exception):
                    await aclose()
