"""A stream session's ends: finished, failed mid-way, or cut off by the client."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anyio

from orkestra import Response, RoutingDecision, StreamInterruptedError, Usage
from orkestra.server.response import ChunkFormatter
from orkestra.server.streaming import ClientDisconnected, StreamSession

DECISION = RoutingDecision("openai", "gpt-4o-mini", "budget", {}, None, "test", 0.1)


def answer(text: str) -> Response:
    return Response(
        text=text,
        provider="openai",
        model="gpt-4o-mini",
        usage=Usage(3, 4),
        input_cost=0.001,
        output_cost=0.002,
        base_model="o3",
        base_cost=0.01,
        routing=DECISION,
        finish_reason="stop",
    )


class ScriptedStream:
    """Stands in for an AsyncResponseStream: yields ``chunks``, then fails or finishes."""

    def __init__(self, chunks: list[str], *, fail: Exception | None = None) -> None:
        self.routing = DECISION
        self.response: Response | None = None
        self.closed = False
        self._chunks, self._fail = chunks, fail
        self._iterator = self._run()

    async def _run(self) -> AsyncGenerator[str, None]:
        try:
            for chunk in self._chunks:
                yield chunk
            if self._fail is not None:
                raise self._fail
            self.response = answer("".join(self._chunks))
        finally:
            self.closed = True

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> str:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        await self._iterator.aclose()


class Outcomes:
    def __init__(self) -> None:
        self.ended: list[Any] = []

    def ignored_params(self, response: Response) -> tuple[str, ...]:
        return ()

    def succeeded(self, response: Response) -> None:
        self.ended.append(response)

    def failed(self, error: BaseException, routing: RoutingDecision | None) -> None:
        self.ended.append(error)


def session(stream: ScriptedStream) -> tuple[StreamSession, Outcomes]:
    """A session over a scripted stream (budgets and the usage log are the library's: a real
    stream settles and records itself, see tests/test_call_layers.py)."""
    outcomes = Outcomes()
    formatter = ChunkFormatter("chatcmpl-x", 0, "gpt-4o-mini", include_usage=True)
    return (
        StreamSession(stream, formatter, outcomes),  # type: ignore[arg-type]
        outcomes,
    )


def test_a_finished_stream_ends_once() -> None:
    stream = ScriptedStream(["a", "b"])
    s, outcomes = session(stream)

    async def run() -> list[bytes]:
        await s.start()
        events = [event async for event in s.events()]
        await s.aclose()
        return events

    events = anyio.run(run)
    assert events[-1] == b"data: [DONE]\n\n"
    assert len(events) == 6  # role, a, b, finish, usage, [DONE]
    assert [type(e) for e in outcomes.ended] == [Response]


def test_a_stream_that_breaks_ends_with_an_error_event() -> None:
    error = StreamInterruptedError("cut", provider="openai", model="gpt-4o-mini")
    s, outcomes = session(ScriptedStream(["a"], fail=error))

    async def run() -> list[bytes]:
        await s.start()
        return [event async for event in s.events()]

    events = anyio.run(run)
    assert b'"error"' in events[-1] and b"[DONE]" not in b"".join(events)
    assert outcomes.ended == [error]


def test_a_client_that_goes_away_closes_the_stream() -> None:
    stream = ScriptedStream(["a", "b", "c", "d"])
    s, outcomes = session(stream)

    async def run() -> None:
        await s.start()
        events = s.events()
        await events.__anext__()  # the role chunk
        await events.__anext__()  # "a"
        await s.aclose()  # the client is gone

    anyio.run(run)
    assert stream.closed
    assert [type(e) for e in outcomes.ended] == [ClientDisconnected]
