"""One async SDK client per running event loop (and key), closed when that loop shuts down.

An async HTTP client belongs to the event loop it first ran on: its pooled connections are that
loop's transports, which no other loop can use or even close, and which leak (``ResourceWarning``,
"unclosed transport") if the loop goes away first. So each adapter keeps one async client per
loop, and per key where it needs several (Gemini: one per API version).

Nothing tells a library that ``asyncio.run`` is about to close its loop, except one thing:
before closing it, ``asyncio.run`` calls ``loop.shutdown_asyncgens()``, which closes every async
generator still suspended in that loop. With a loop's first client a tiny generator is started
and left parked at its ``yield``; its ``finally`` closes the loop's clients, at the last moment
their connections can still be closed. ``asyncio.run`` can thus be called again and again,
each time with a fresh client, and nothing leaks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["LoopClients"]

K = TypeVar("K")
C = TypeVar("C")


@dataclass
class _Loop(Generic[K, C]):
    """The clients of one event loop, and the parked generator that closes them."""

    clients: dict[K, C]
    closer: AsyncGenerator[None, None]


async def _finish(closer: AsyncGenerator[None, None]) -> None:
    """Run a closer's ``finally`` (a coroutine, as the loop's task APIs want one)."""
    await closer.aclose()


class LoopClients(Generic[K, C]):
    """Async clients by (running event loop, ``key``), each closed with its loop.

    ``close`` is how one client is closed (awaited inside the client's own loop). Thread-safe:
    threads that each run a loop get their own clients, made once per key however they race.
    """

    def __init__(self, close: Callable[[C], Awaitable[None]]) -> None:
        self._close = close
        self._loops: dict[asyncio.AbstractEventLoop, _Loop[K, C]] = {}
        self._lock = threading.Lock()
        # Closes scheduled on other loops: kept referenced until they are done.
        self._pending: set[concurrent.futures.Future[None]] = set()

    async def get(self, key: K, make: Callable[[], C]) -> C:
        """The running loop's client for ``key``, made by ``make()`` on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [known for known in self._loops if known.is_closed()]:
                del self._loops[stale]  # closed with its loop (or past closing)
            entry = self._loops.get(loop)
            if entry is not None and key in entry.clients:
                return entry.clients[key]
            client = make()  # before anything is registered: a failing make() leaves no trace
            fresh = entry is None
            if entry is None:
                clients: dict[K, C] = {}
                entry = self._loops[loop] = _Loop(clients, self._closer(loop, clients))
            entry.clients[key] = client
        if fresh:
            # Runs to the ``yield`` without suspending; from now the loop finalises it.
            await anext(entry.closer)
        return client

    async def _closer(
        self, loop: asyncio.AbstractEventLoop, clients: dict[K, C]
    ) -> AsyncGenerator[None, None]:
        """Parked at ``yield`` for the loop's life; its end closes the loop's clients."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._loops.get(loop)
                if entry is not None and entry.clients is clients:
                    del self._loops[loop]  # the loop's next get() makes new clients
                closing = list(clients.values())
                clients.clear()
            for client in closing:
                await self._close(client)

    def close(self) -> None:
        """Close every client whose loop can run its close now.

        A closed loop's clients were closed at its shutdown (or are past closing) and are
        forgotten. A running loop (another thread's, or this one when called from its own code)
        closes them soon, as a task. An idle loop is driven here to close them, unless another
        loop runs in this thread: such clients stay parked and their loop's shutdown closes them.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        with self._lock:
            leaving = [
                (loop, entry)
                for loop, entry in self._loops.items()
                if loop.is_closed() or loop.is_running() or running is None
            ]
            for loop, _ in leaving:
                del self._loops[loop]
        for loop, entry in leaving:
            if loop.is_running():
                future = asyncio.run_coroutine_threadsafe(_finish(entry.closer), loop)
                self._pending.add(future)
                future.add_done_callback(self._pending.discard)
            elif not loop.is_closed():  # idle, and no loop runs in this thread
                loop.run_until_complete(_finish(entry.closer))

    async def aclose(self) -> None:
        """Close the running loop's clients now, and the other loops' as :meth:`close` does.

        Clients asked for afterwards are new ones.
        """
        running = asyncio.get_running_loop()
        with self._lock:
            mine = self._loops.pop(running, None)
        if mine is not None:
            await mine.closer.aclose()
        self.close()
