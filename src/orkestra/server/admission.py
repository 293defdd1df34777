"""Backpressure: at most ``max_concurrency`` chat requests in flight in one process.

A request past the limit waits for a slot, in arrival order, at most ``queue_timeout`` seconds;
then it is answered ``503 server_busy`` with ``Retry-After``, rather than queued without end
while its latency grows (an OpenAI client retries a 503 after the delay it names). A streamed
answer holds its slot until the stream ends. The same answer comes when a provider's own
``max_connections`` stay busy for ``queue_timeout`` (the library's
:class:`~orkestra.PoolTimeoutError`).
"""

from __future__ import annotations

import anyio

from orkestra.server.errors import server_busy

__all__ = ["Admission", "Slot"]


class Slot:
    """One request's place among those in flight; :meth:`release` it once (again: no-op)."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self._limiter: anyio.CapacityLimiter | None = limiter

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.release_on_behalf_of(self)


class Admission:
    """The in-flight limit of one app (made on first use, in the event loop)."""

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def in_flight(self) -> int:
        return 0 if self._limiter is None else self._limiter.borrowed_tokens

    async def enter(self) -> Slot:
        """A slot, waiting for one at most ``timeout`` seconds (then a 503 ProxyError)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limit)
        slot = Slot(self._limiter)
        try:
            self._limiter.acquire_on_behalf_of_nowait(slot)
        except anyio.WouldBlock:
            with anyio.move_on_after(self.timeout) as waiting:
                await self._limiter.acquire_on_behalf_of(slot)
            if waiting.cancelled_caught:
                raise server_busy(
                    f"The proxy is serving its limit of {self.limit} requests at once and none "
                    f"finished within {self.timeout:g} s; try again shortly."
                ) from None
        return slot
