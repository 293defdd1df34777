"""A cascade as a stream, never switching answers silently mid-text.

- ``"buffer"`` (the default): an answer that will be checked is asked for without streaming
  and held until its check passes, then handed out; an escalated answer from the top of the
  ladder (or one the router's prior trusts) streams as it arrives. Nothing shown is ever
  withdrawn.
- ``"replace"``: every answer streams as it arrives. If a shown answer then fails its check,
  ``stream.events()`` yields a :class:`~orkestra.Replaced` marker before the stronger model's
  answer, iterating for text yields the marker's separator line, ``stream.text`` restarts with
  the new answer, and ``stream.response.cascade.replaced`` is True.

The streams are a :class:`~orkestra.ResponseStream` / :class:`~orkestra.AsyncResponseStream`
like any other (``.text``, ``.response``, ``.routing``, ``close()``), plus ``events()``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from orkestra._cascade.flow import Rung
from orkestra._types import CascadeReport, Replaced, Response, RoutingDecision
from orkestra.errors import OrkestraError
from orkestra.resilience import drivers
from orkestra.resilience.call import AsyncResponseStream, ResponseStream, fallback_moves
from orkestra.resilience.drivers import Result
from orkestra.resilience.executor import Target

if TYPE_CHECKING:
    from orkestra._cascade.run import CascadeCall, Triage

__all__ = ["AsyncCascadeStream", "CascadeStream"]

Event = tuple[str, dict[str, Any]]


class _Steps:
    """What the sync and async cascade streams share: which steps stream live, the marker
    between a withdrawn answer and its replacement, and the events that end the stream."""

    _cascade: CascadeCall
    _chunks: list[str]

    @property
    def cascade(self) -> CascadeReport:
        """The steps so far: each answer checked (or not) before the one under way."""
        return self._cascade.flow.report()

    def _live(self, rung: Rung) -> bool:
        """Whether ``rung``'s answer streams as it arrives (else: asked whole, held until
        checked)."""
        flow = self._cascade.flow
        return rung.top or flow.streaming == "replace" or flow.trusts(rung.candidate.tier)

    def _triaged(self, result: Result, started: float, live: bool) -> Triage:
        """The step's answer triaged; ``triage.error`` set: an invalid answer at the top, for
        the caller to record and raise (:meth:`CascadeCall.invalid`)."""
        cascade = self._cascade
        response = cascade.call.respond(result, started)
        shown = live and cascade.flow.streaming == "buffer"
        return cascade.triage(response, shown=shown)

    def _triage(self, result: Result, started: float, live: bool) -> Triage:
        triage = self._triaged(result, started, live)
        if triage.error is not None:
            raise self._cascade.invalid(triage)
        return triage

    async def _atriage(self, result: Result, started: float, live: bool) -> Triage:
        """:meth:`_triage` in async code (recording an invalid answer may settle a session in
        a database: off the event loop)."""
        triage = self._triaged(result, started, live)
        if triage.error is not None:
            raise await self._cascade.ainvalid(triage)
        return triage

    def _replaced(self, rung: Rung) -> Replaced:
        flow = self._cascade.flow
        flow.replaced = True
        by = f"{rung.candidate.provider}/{rung.candidate.model}"
        marker = Replaced("".join(self._chunks), flow.steps[-1], by)
        self._chunks.clear()
        return marker

    def _ending(self, final: Response) -> list[Event]:
        """The events that end the stream, once ``final`` is recorded."""
        return [
            *(("on_fallback", move) for move in fallback_moves(final)),
            ("on_stream_complete", {"response": final}),
            ("on_response", {"response": final}),
        ]


class CascadeStream(_Steps, ResponseStream):
    """A cascade streamed (see the module): iterate for text; ``events()`` for text and
    :class:`~orkestra.Replaced` markers; ``.response`` once it ends."""

    def __init__(
        self, cascade: CascadeCall, targets: Sequence[Target], routing: RoutingDecision
    ) -> None:
        self._cascade = cascade
        self._source = self._steps(targets)
        super().__init__(cascade.call, targets, routing)

    def events(self) -> Iterator[str | Replaced]:
        """Text chunks, and a :class:`~orkestra.Replaced` marker where a shown answer is
        withdrawn (``"replace"`` mode). Iterate either this or the stream, not both."""
        return self._source

    def close(self) -> None:
        self._iterator.close()
        self._source.close()

    def _run(self) -> Generator[str, None, None]:
        try:
            for item in self._source:
                yield item.separator if isinstance(item, Replaced) else item
        finally:
            self._source.close()

    def _steps(self, targets: Sequence[Target]) -> Generator[str | Replaced, None, None]:
        cascade, call = self._cascade, self._cascade.call
        rung = cascade.first
        self._started = cascade.flow.started
        try:
            while True:
                self._targets, self.routing = targets, rung.decision
                started = time.perf_counter()
                live = self._live(rung)
                result: Result | None = None
                if live:
                    for item in drivers.stream(call.flow(targets), call.open):
                        if isinstance(item, str):
                            self._chunks.append(item)
                            self._emit("on_chunk", {"chunk": item})
                            yield item
                        else:
                            result = item
                else:
                    result = drivers.complete(call.flow(targets), call.complete)
                assert result is not None  # a stream that ends normally has its result
                triage = self._triage(result, started, live)
                verdict = cascade.verify(triage) if triage.check else triage.verdict
                if cascade.settle(triage, verdict, started):
                    self._emit(*cascade.step_event(None))
                    if not live and triage.response.text:
                        self._chunks.append(triage.response.text)
                        self._emit("on_chunk", {"chunk": triage.response.text})
                        yield triage.response.text
                    self.response = cascade.final(triage.response)
                    events = self._ending(self.response)
                    self.routing = self.response.routing
                    break
                rung = cascade.climb()
                self._emit(*cascade.step_event(rung))
                if live:
                    yield self._replaced(rung)
                targets = cascade.plan(rung.decision)
        except OrkestraError as error:
            cascade.failed(self._targets, error)
            self._recorded = True
            self._emit("on_error", {"error": error, "partial_text": self.text})
            raise
        except GeneratorExit:
            cascade.closed(self._targets)
            raise
        for name, event in events:
            self._emit(name, event)


class AsyncCascadeStream(_Steps, AsyncResponseStream):
    """:class:`CascadeStream` for async code: ``async for chunk in stream``, or
    ``async for item in stream.events()``."""

    def __init__(
        self, cascade: CascadeCall, targets: Sequence[Target], routing: RoutingDecision
    ) -> None:
        self._cascade = cascade
        self._source = self._steps(targets)
        super().__init__(cascade.call, targets, routing)

    def events(self) -> AsyncIterator[str | Replaced]:
        """:meth:`CascadeStream.events` for async code."""
        return self._source

    async def aclose(self) -> None:
        await self._iterator.aclose()
        await self._source.aclose()

    async def _run(self) -> AsyncGenerator[str, None]:
        try:
            async for item in self._source:
                yield item.separator if isinstance(item, Replaced) else item
        finally:
            await self._source.aclose()

    async def _steps(self, targets: Sequence[Target]) -> AsyncGenerator[str | Replaced, None]:
        cascade, call = self._cascade, self._cascade.call
        rung = cascade.first
        self._started = cascade.flow.started
        try:
            while True:
                self._targets, self.routing = targets, rung.decision
                started = time.perf_counter()
                live = self._live(rung)
                result: Result | None = None
                if live:
                    async for item in drivers.astream(call.flow(targets), call.aopen):
                        if isinstance(item, str):
                            self._chunks.append(item)
                            await self._emit("on_chunk", {"chunk": item})
                            yield item
                        else:
                            result = item
                else:
                    result = await drivers.acomplete(call.flow(targets), call.acomplete)
                assert result is not None
                triage = await self._atriage(result, started, live)
                verdict = await cascade.averify(triage) if triage.check else triage.verdict
                if cascade.settle(triage, verdict, started):
                    await self._emit(*cascade.step_event(None))
                    if not live and triage.response.text:
                        self._chunks.append(triage.response.text)
                        await self._emit("on_chunk", {"chunk": triage.response.text})
                        yield triage.response.text
                    self.response = await cascade.afinal(triage.response)
                    events = self._ending(self.response)
                    self.routing = self.response.routing
                    break
                rung = cascade.climb()
                await self._emit(*cascade.step_event(rung))
                if live:
                    yield self._replaced(rung)
                targets = cascade.plan(rung.decision)
        except OrkestraError as error:
            cascade.failed(self._targets, error)
            self._recorded = True
            await self._emit("on_error", {"error": error, "partial_text": self.text})
            raise
        except GeneratorExit:
            cascade.closed(self._targets)
            raise
        for name, event in events:
            await self._emit(name, event)
