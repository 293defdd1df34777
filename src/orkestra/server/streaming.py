"""Streaming answers as Server-Sent Events, and the few blocking calls kept off the event loop.

The library's :class:`~orkestra.AsyncResponseStream` is read on the event loop, chunk by chunk,
with no thread in between. The first chunk is read *before* the response starts, so a request
that fails before any text (routing, budget, every candidate down) still gets a proper HTTP
error status; a failure after text has been sent arrives as an OpenAI-shaped ``data:
{"error": …}`` event, after which the stream ends without ``[DONE]`` (the ``openai`` client
raises ``APIError``). A client that goes away mid-stream cancels the read: the library closes
the upstream connection, settles the call's budget reservations at what it may have billed, and
records the call as closed.

What the events look like is the wire's (:class:`~orkestra.server.wire.StreamFormat`: Chat
Completions' below, the Responses API's and Anthropic's in their modules). For Chat
Completions the event order is OpenAI's: a chunk with the role (``content: null`` when the
answer is only tool calls), content chunks, one ``delta.tool_calls`` chunk per tool call (the
library hands them over whole, at the end of the stream), a chunk with ``finish_reason``, a
usage chunk (``choices: []``) when ``stream_options.include_usage`` is set, then ``data:
[DONE]``. Cost and savings are only known at the end, so they travel in the ``orkestra``
object of the finish and usage chunks rather than in headers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from orkestra import AsyncResponseStream, Response, RoutingDecision
from orkestra.errors import OrkestraError

if TYPE_CHECKING:
    from orkestra.server.wire import StreamFormat

__all__ = ["SSEResponse", "StreamSession", "Threads"]

logger = logging.getLogger("orkestra.server")

T = TypeVar("T")


class Threads:
    """Blocking calls (warming up, closing, re-reading budgets) in worker threads, at most
    ``limit`` at once (one limiter per app)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:  # made in the event loop: older anyio needs one running
            self._limiter = anyio.CapacityLimiter(self.limit)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


class Outcome(Protocol):
    """What the app does when a stream ends (logs it; the library records it in the usage
    log, and settles its budget reservations, itself)."""

    def ignored_params(self, response: Response) -> tuple[str, ...]: ...

    def succeeded(self, response: Response) -> None: ...

    def failed(self, error: BaseException, routing: RoutingDecision | None) -> None: ...


class ClientDisconnected(Exception):
    """The client went away before the stream ended (recorded as such in the usage log)."""


class StreamSession:
    """One streamed answer: reads the library's stream, writes SSE events, records the end."""

    def __init__(
        self,
        stream: AsyncResponseStream,
        formatter: StreamFormat,
        outcome: Outcome,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        self.formatter = formatter
        self.outcome = outcome
        self._on_close = on_close
        self._first: str | None = None
        self._ended = False
        self._events: AsyncGenerator[bytes, None] | None = None

    async def _next_chunk(self) -> str | None:
        """The next text chunk, or None at the end (chunks are never empty)."""
        return await anext(self.stream, None)

    async def start(self) -> None:
        """Read up to the first chunk; a failure here raises (and is recorded)."""
        try:
            self._first = await self._next_chunk()
        except BaseException as error:
            await self._end(error=error)
            raise

    async def _end(
        self, *, response: Response | None = None, error: BaseException | None = None
    ) -> None:
        if self._ended:
            return
        self._ended = True
        if response is not None:
            self.outcome.succeeded(response)
        elif error is not None:
            self.outcome.failed(error, self.stream.routing)

    def events(self) -> AsyncGenerator[bytes, None]:
        self._events = self._generate()
        return self._events

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        fmt = self.formatter
        chunk = self._first
        answered = self.stream.response
        only_calls = chunk is None and answered is not None and bool(answered.tool_calls)
        for event in fmt.opening(self.stream.routing, only_calls):
            yield event
        try:
            while chunk is not None:
                yield fmt.text(chunk)
                chunk = await self._next_chunk()
        except OrkestraError as error:
            await self._end(error=error)
            for event in fmt.cut(error, self.stream.routing):
                yield event
            return
        response = self.stream.response
        assert response is not None  # a stream that ends normally has its response
        await self._end(response=response)
        for event in fmt.closing(response, self.outcome.ignored_params(response)):
            yield event

    async def aclose(self) -> None:
        """Release everything, whatever happened: the client may have gone mid-stream."""
        with anyio.CancelScope(shield=True):
            try:
                if self._events is not None:
                    with contextlib.suppress(Exception):
                        await self._events.aclose()
                if not self._ended:
                    # Closing the stream settles the library's budget reservations, records
                    # the call and closes the provider's connection (a read the client's
                    # going away cancelled has done so already).
                    with contextlib.suppress(Exception):
                        await self.stream.aclose()
                    await self._end(error=ClientDisconnected("the client closed the stream"))
            finally:
                if self._on_close is not None:
                    self._on_close()


class SSEResponse(StreamingResponse):
    """A :class:`StreamSession` as ``text/event-stream``; the session is always closed."""

    def __init__(self, session: StreamSession, headers: dict[str, str]) -> None:
        super().__init__(
            session.events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
        )
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (ClientDisconnect, OSError):
            logger.debug("client went away mid-stream")
        finally:
            await self.session.aclose()
