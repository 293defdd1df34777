"""The clients of an adapter whose SDK is built by Stainless (``openai``, ``anthropic``).

Both SDKs take the same client options (``api_key``, ``base_url``, a ``Timeout`` with its
connect part, ``max_retries``) and have a sync and an async client class. An adapter keeps one
sync client, made on first use (once, even when threads race), and one async client per event
loop (:class:`~orkestra.providers._loops.LoopClients`); the SDK is imported on first use only.
"""

from __future__ import annotations

import threading
from importlib import import_module
from typing import Any, Generic, TypeVar

from orkestra.providers._loops import LoopClients
from orkestra.providers.base import ClientSettings

__all__ = ["StainlessClients"]

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
        self._async: LoopClients[None, A] = LoopClients(lambda client: client.close())  # type: ignore[attr-defined]

    def _make(self, class_name: str, http_client_class: str) -> Any:
        sdk = import_module(self._sdk)
        s = self._settings
        options: dict[str, Any] = {}
        if s.max_connections is not None:
            # The endpoint lets at most max_connections calls through at once: keep that many
            # connections alive (the SDKs' default keeps 100, so a busier client would open
            # and close connections, each a new TLS handshake).
            http_client = getattr(sdk, http_client_class)
            options["http_client"] = http_client(limits=_limits(http_client, s.max_connections))
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
                self._sync = self._make(self._sync_class, "DefaultHttpxClient")
            return self._sync

    async def async_(self) -> A:
        """The running loop's async client (made on first use in that loop)."""
        client: A = await self._async.get(
            None, lambda: self._make(self._async_class, "DefaultAsyncHttpxClient")
        )
        return client

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
