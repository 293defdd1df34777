"""What Provider and MultiProvider share around a call: hooks, and running chat/stream in them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orkestra._types import Response, RoutingDecision
from orkestra.hooks import (
    CallData,
    Handler,
    Hooks,
    Middleware,
    Notify,
    fallbacks,
    global_hooks,
    hooked,
)
from orkestra.resilience.call import Call, ResponseStream
from orkestra.resilience.executor import Target

__all__ = ["HookedCalls"]


class HookedCalls:
    """Mixin: ``chat``/``stream`` run ``_prepare`` (route + plan) inside the middleware and
    events of the global hooks and of ``self.hooks``."""

    hooks: Hooks

    def _prepare(
        self, d: CallData, notify: Notify
    ) -> tuple[Call, Sequence[Target], RoutingDecision]:
        raise NotImplementedError

    def _layers(self) -> tuple[Hooks, ...]:
        return (global_hooks(), self.hooks)

    def _hooked_chat(self, data: CallData) -> Response:
        response: Response = hooked(self._layers(), data, self._run_chat)
        return response

    def _hooked_stream(self, data: CallData) -> ResponseStream:
        data["stream"] = True
        stream: ResponseStream = hooked(self._layers(), data, self._run_stream, streaming=True)
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

    def middleware(self, fn: Middleware) -> Middleware:
        """Decorator: ``fn(data, next)`` wraps every call made through this object."""
        return self.hooks.add_middleware(fn)

    def event(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: run the function on event ``name`` of calls made through this object."""

        def decorate(fn: Handler) -> Handler:
            return self.hooks.add_handler(name, fn)

        return decorate
