"""The clients of an adapter whose SDK is built by Stainless (``openai``, ``anthropic``).

Both SDKs take the same client options (``api_key``, ``base_url``, a ``Timeout`` with its
connect part, ``max_retries``) and have a sync and an async client class. An adapter keeps one
sync client, made on first use (once, even when threads race), and per event loop its async
clients (:class:`~orkestra.providers._loops.LoopClients`); the SDK is imported on first use only.

With a connection limit above :data:`SHARD_CONNECTIONS` the async connections are split over
several clients, each with its own pool of at most that many, and each call takes the client
with the fewest calls in flight (:meth:`StainlessClients.lease`). The pool under the SDKs
(httpcore2, 2.16) walks every connection it holds each time a request starts or ends, and for an
idle one asks the socket whether it is readable (a ``poll`` call and a dict of socket
attributes built anew): ~25 µs per connection. With the proxy's 256 connections to one provider
that was ~5 ms of CPU per request at c=256, more than the rest of the request together
(docs/benchmarks.md); in pools of 32 the walk is an eighth as long.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any, Generic, TypeVar

from orkestra.providers._loops import LoopClients
from orkestra.providers.base import ClientSettings

__all__ = ["SHARD_CONNECTIONS", "StainlessClients", "shard_limits"]

SHARD_CONNECTIONS = 32
"""The most connections one async client's pool holds (see the module docstring)."""


def shard_limits(connections: int | None) -> tuple[int | None, ...]:
    """Each async client's connection limit for a limit of ``connections`` in all: as many
    clients as it takes to keep each at most :data:`SHARD_CONNECTIONS`, the limit split evenly
    (they add up to ``connections``). None (the SDK's own limits): one client."""
    if connections is None:
        return (None,)
    shards = max(1, -(-connections // SHARD_CONNECTIONS))
    base, extra = divmod(connections, shards)
    return tuple(base + (1 if i < extra else 0) for i in range(shards))


S = TypeVar("S")
A = TypeVar("A")


def _limits(http_client: type, connections: int) -> Any:
    """``Limits`` of the HTTP library the SDK's client class is built on (httpx or httpx2)."""
    base = next(c for c in http_client.__mro__ if c.__name__ in ("Client", "AsyncClient"))
    http = import_module(base.__module__.split(".")[0])
    return http.Limits(max_connections=connections, max_keepalive_connections=connections)


class StainlessClients(Generic[S, A]):
    """``sdk``'s ``sync_class`` and ``async_class`` clients for ``settings``."""

    def __init__(
        self, settings: ClientSettings, sdk: str, sync_class: str, async_class: str
    ) -> None:
        self._settings, self._sdk = settings, sdk
        self._sync_class, self._async_class = sync_class, async_class
        self._sync: S | None = None
        self._lock = threading.Lock()
        self._async: LoopClients[int, A] = LoopClients(lambda client: client.close())  # type: ignore[attr-defined]
        self._shards = shard_limits(settings.max_connections)
        # Calls in flight per shard (all loops together: it only picks the emptiest pool).
        self._in_flight = [0] * len(self._shards)

    def _make(self, class_name: str, http_client_class: str, connections: int | None) -> Any:
        sdk = import_module(self._sdk)
        s = self._settings
        options: dict[str, Any] = {}
        if connections is not None:
            # The endpoint lets at most max_connections calls through at once: keep that many
            # connections alive (the SDKs' default keeps 100, so a busier client would open
            # and close connections, each a new TLS handshake).
            http_client = getattr(sdk, http_client_class)
            options["http_client"] = http_client(limits=_limits(http_client, connections))
        return getattr(sdk, class_name)(
            api_key=s.api_key,
            base_url=s.base_url,
            timeout=sdk.Timeout(s.timeout, connect=s.connect_timeout),
            max_retries=s.max_retries,
            **options,
        )

    @property
    def sync(self) -> S:
        with self._lock:
            if self._sync is None:
                connections = self._settings.max_connections
                self._sync = self._make(self._sync_class, "DefaultHttpxClient", connections)
            return self._sync

    async def async_(self, shard: int = 0) -> A:
        """The running loop's async client of pool ``shard`` (made on first use in that loop)."""
        client: A = await self._async.get(
            shard,
            lambda: self._make(self._async_class, "DefaultAsyncHttpxClient", self._shards[shard]),
        )
        return client

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[A]:
        """The running loop's async client with the fewest calls in flight, for one call: hold
        it until the call's answer or stream is read (its connection is busy until then)."""
        counts = self._in_flight
        shard = counts.index(min(counts)) if len(counts) > 1 else 0
        client = await self.async_(shard)
        counts[shard] += 1
        try:
            yield client
        finally:
            counts[shard] -= 1

    def close(self) -> None:
        """Close the sync client and every async client whose loop can still run its close."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()  # type: ignore[attr-defined]
        self._async.close()

    async def aclose(self) -> None:
        """Close the async clients: this loop's now, the others' in their own loops."""
        await self._async.aclose()
