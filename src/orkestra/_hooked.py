"""What Provider and MultiProvider share around a call: hooks, and running chat/stream in them
(sync, and async for ``achat``/``astream``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from orkestra._types import Response, RoutingDecision
from orkestra.hooks import (
    AsyncNotify,
    CallData,
    Handler,
    Hooks,
    Middleware,
    Notify,
    ahooked,
    asilent,
    fallbacks,
    global_hooks,
    hooked,
)
from orkestra.resilience.call import AsyncResponseStream, Call, ResponseStream
from orkestra.resilience.executor import Target

__all__ = ["HookedCalls"]


class HookedCalls:
    """Mixin: ``chat``/``stream`` (and ``achat``/``astream``) run ``_prepare`` (route + plan)
    inside the middleware and events of the global hooks and of ``self.hooks``."""

    hooks: Hooks

    def _prepare(
        self, d: CallData, notify: Notify
    ) -> tuple[Call, Sequence[Target], RoutingDecision]:
        raise NotImplementedError

    def _cold_routers(self) -> list[Callable[[], object]]:
        """Loaders of the routers this object's calls need and has not loaded yet."""
        return []

    def _layers(self) -> tuple[Hooks, ...]:
        return (global_hooks(), self.hooks)

    def _hooked_chat(self, data: CallData) -> Response:
        response: Response = hooked(self._layers(), data, self._run_chat)
        return response

    def _hooked_stream(self, data: CallData) -> ResponseStream:
        data["stream"] = True
        stream: ResponseStream = hooked(self._layers(), data, self._run_stream, streaming=True)
        return stream

    async def _hooked_achat(self, data: CallData) -> Response:
        response: Response = await ahooked(self._layers(), data, self._arun_chat)
        return response

    async def _hooked_astream(self, data: CallData) -> AsyncResponseStream:
        data["stream"] = True
        stream: AsyncResponseStream = await ahooked(
            self._layers(), data, self._arun_stream, streaming=True
        )
        return stream

    def _run_chat(self, d: CallData, notify: Notify) -> Response:
        call, targets, decision = self._prepare(d, notify)
        notify("on_chat", decision=decision)
        response = call.chat(targets)
        for move in fallbacks(response):
            notify("on_fallback", **move)
        return response

    def _run_stream(self, d: CallData, notify: Notify) -> ResponseStream:
        call, targets, decision = self._prepare(d, notify)
        notify("on_stream", decision=decision)
        stream = call.stream(targets, decision)
        stream.notify = notify
        return stream

    async def _aprepare(
        self, d: CallData, notify: AsyncNotify
    ) -> tuple[Call, Sequence[Target], RoutingDecision]:
        """``_prepare`` in an async call. It is CPU-only and fast, so it runs on the loop; the
        events it emits are held and emitted (awaited, in order) as soon as it returns or
        raises, before anything else happens."""
        for load in self._cold_routers():
            # Loading a router (first call in a process: ~0.3 s) must not stall the loop.
            await asyncio.to_thread(load)
        if notify is asilent:
            return self._prepare(d, _ignore)
        held: list[tuple[str, dict[str, Any]]] = []
        try:
            return self._prepare(d, lambda name, **event: held.append((name, event)))
        finally:
            for name, event in held:
                await notify(name, **event)

    async def _arun_chat(self, d: CallData, notify: AsyncNotify) -> Response:
        call, targets, decision = await self._aprepare(d, notify)
        await notify("on_chat", decision=decision)
        response = await call.achat(targets)
        for move in fallbacks(response):
            await notify("on_fallback", **move)
        return response

    async def _arun_stream(self, d: CallData, notify: AsyncNotify) -> AsyncResponseStream:
        call, targets, decision = await self._aprepare(d, notify)
        await notify("on_stream", decision=decision)
        stream = call.astream(targets, decision)
        if notify is not asilent:  # no hooks: no per-chunk await
            stream.notify = notify
        return stream

    def middleware(self, fn: Middleware) -> Middleware:
        """Decorator: ``fn(data, next)`` (or ``async def``) wraps every call made through this
        object, sync or async (see :mod:`orkestra.hooks`)."""
        return self.hooks.add_middleware(fn)

    def event(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: run the function (or coroutine function) on event ``name`` of calls made
        through this object."""

        def decorate(fn: Handler) -> Handler:
            return self.hooks.add_handler(name, fn)

        return decorate


def _ignore(name: str, **event: Any) -> None:
    """The notifier ``_prepare`` gets in an async call with no hooks."""
