"""Middleware and events: user code around every call, global or per provider.

Middleware wraps a call::

    @o.register_middleware
    def tag(data, next):
        data["prompt"] = data["prompt"].strip()      # change the request before the call
        response = next(data)                        # the call (and any inner middleware)
        return response                              # read or replace the response after it

``data`` is a dict with ``prompt``, ``model`` (None: let the router choose), ``provider``,
``max_tokens``, ``temperature``, ``quality``, ``stream`` (bool) and, for a multi-provider call,
``strategy``. For a streaming call ``next`` returns the :class:`~orkestra.ResponseStream`.

Events are notifications; a handler that raises is logged and never breaks the call::

    @o.register_event("on_response")
    def log_cost(event):
        print(event["response"].cost)

Events: ``on_request`` (before routing), ``on_route`` (decision made), ``on_chat`` (a
non-streaming call starts), ``on_stream`` (a stream starts), ``on_chunk`` (each text chunk),
``on_stream_complete`` (a stream ended with its response), ``on_response`` (any call's response),
``on_error`` (a call failed), ``on_fallback`` (the call moved to another model).

Global hooks run for every provider, outside (before) the provider's own.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from orkestra.errors import ConfigurationError

__all__ = [
    "EVENTS",
    "Hooks",
    "global_hooks",
    "register_event",
    "register_middleware",
]

log = logging.getLogger("orkestra.hooks")

EVENTS = (
    "on_request",
    "on_route",
    "on_chat",
    "on_stream",
    "on_chunk",
    "on_stream_complete",
    "on_response",
    "on_error",
    "on_fallback",
)

CallData = dict[str, Any]
Next = Callable[[CallData], Any]
Middleware = Callable[[CallData, Next], Any]
Handler = Callable[[dict[str, Any]], object]
F = TypeVar("F", bound=Callable[..., Any])


class Hooks:
    """A set of middleware and event handlers (one global set, one per provider)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._middleware: list[Middleware] = []
        self._handlers: dict[str, list[Handler]] = {name: [] for name in EVENTS}

    def __bool__(self) -> bool:
        return bool(self._middleware) or any(self._handlers.values())

    def add_middleware(self, fn: Middleware) -> Middleware:
        if not callable(fn):
            raise ConfigurationError("middleware must be callable as fn(data, next)")
        with self._lock:
            self._middleware.append(fn)
        return fn

    def add_handler(self, name: str, fn: Handler) -> Handler:
        if name not in self._handlers:
            raise ConfigurationError(f"unknown event {name!r}; events: {', '.join(EVENTS)}")
        if not callable(fn):
            raise ConfigurationError("an event handler must be callable as fn(event)")
        with self._lock:
            self._handlers[name].append(fn)
        return fn

    def clear(self) -> None:
        with self._lock:
            self._middleware.clear()
            for handlers in self._handlers.values():
                handlers.clear()

    def middleware(self) -> list[Middleware]:
        with self._lock:
            return list(self._middleware)

    def handlers(self, name: str) -> list[Handler]:
        with self._lock:
            return list(self._handlers[name])


_GLOBAL = Hooks()


def global_hooks() -> Hooks:
    return _GLOBAL


def register_middleware(fn: F) -> F:
    """Add middleware that wraps every call of every provider (usable as a decorator)."""
    _GLOBAL.add_middleware(fn)
    return fn


def register_event(name: str) -> Callable[[F], F]:
    """Decorator: run the function on event ``name`` for every provider."""

    def decorate(fn: F) -> F:
        _GLOBAL.add_handler(name, fn)
        return fn

    return decorate


def emit(layers: Iterable[Hooks], name: str, **event: Any) -> None:
    """Call every handler of ``name`` (global first); a failing handler is logged, not raised."""
    event["event"] = name
    for hooks in layers:
        for handler in hooks.handlers(name):
            try:
                handler(event)
            except Exception:
                log.exception("orkestra: the %s handler %r raised; the call goes on", name, handler)


def run_middleware(layers: Iterable[Hooks], data: CallData, call: Next) -> Any:
    """Run ``call(data)`` inside every middleware (global outermost)."""
    chain = [fn for hooks in layers for fn in hooks.middleware()]

    def step(index: int) -> Next:
        if index == len(chain):
            return call

        def next_(d: CallData) -> Any:
            return chain[index](d, step(index + 1))

        return next_

    return step(0)(data)


Notify = Callable[..., None]


def _silent(name: str, **event: Any) -> None:
    """The notifier when no handler is registered anywhere."""


def hooked(
    layers: Iterable[Hooks],
    data: CallData,
    run: Callable[[CallData, Notify], Any],
    *,
    streaming: bool = False,
) -> Any:
    """Run one call inside the middleware of ``layers``, emitting its events.

    ``run(data, notify)`` makes the call from (possibly middleware-changed) ``data``. For a
    non-streaming call ``on_response`` is emitted here; a stream emits its own at its end.
    """
    chain = tuple(layers)
    if not any(chain):
        return run(data, _silent)

    def notify(name: str, **event: Any) -> None:
        emit(chain, name, **event)

    notify("on_request", request=dict(data))

    def call(d: CallData) -> Any:
        try:
            result = run(d, notify)
        except Exception as error:
            notify("on_error", error=error, request=dict(d))
            raise
        if not streaming:
            notify("on_response", response=result)
        return result

    return run_middleware(chain, data, call)


def fallbacks(response: Any) -> list[dict[str, Any]]:
    """The model changes a finished call went through (for ``on_fallback``)."""
    attempts = list(getattr(response, "attempts", ()) or ())
    moves = []
    for before, after in itertools.pairwise(attempts):
        if (before.provider, before.model) != (after.provider, after.model):
            moves.append(
                {
                    "from_provider": before.provider,
                    "from_model": before.model,
                    "to_provider": after.provider,
                    "to_model": after.model,
                    "error": before.error,
                }
            )
    return moves
