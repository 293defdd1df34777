"""Middleware and events: user code around every call, global or per provider.

Middleware wraps a call::

    @o.register_middleware
    def tag(data, next):
        data["prompt"] = data["prompt"].strip()      # change the request before the call
        response = next(data)                        # the call (and any inner middleware)
        return response                              # read or replace the response after it

``data`` is a dict with ``prompt``, ``messages``, ``model`` (None: let the router choose),
``provider``, ``max_tokens``, ``temperature``, ``quality``, ``tools``, ``tool_choice``,
``response_format``, ``session_id``, ``cascade``, ``verifier``, ``cascade_streaming``,
``stream`` (bool) and, for a multi-provider call, ``strategy`` — the call's arguments as given.
For a streaming call ``next`` returns the :class:`~orkestra.ResponseStream`
(:class:`~orkestra.resilience.call.AsyncResponseStream` in an async call).

Events are notifications; a handler that raises is logged and never breaks the call::

    @o.register_event("on_response")
    def log_cost(event):
        print(event["response"].cost)

Events: ``on_request`` (before routing), ``on_route`` (decision made), ``on_chat`` (a
non-streaming call starts), ``on_stream`` (a stream starts), ``on_chunk`` (each text chunk),
``on_stream_complete`` (a stream ended with its response), ``on_response`` (any call's response),
``on_error`` (a call failed), ``on_fallback`` (the call moved to another model),
``on_cascade_step`` (a cascade's answer was checked: ``step`` is the
:class:`~orkestra.CascadeStep`, ``escalating`` whether a stronger model is asked next, ``to``
which).

Global hooks run for every provider, outside (before) the provider's own.

Async calls (``achat``/``astream``/``astream_text``) run the same middleware and events, in the
same order with the same payloads, so one set of hooks serves both kinds of call:

- A handler may be a plain function or ``async def``. In an async call a coroutine handler is
  awaited. In a sync call it is run to completion with :func:`asyncio.run`; if the sync call is
  made from a thread whose event loop is running (blocking code inside async code), it cannot
  be, so it is skipped with a warning in the log.
- Middleware may be ``fn(data, next)`` or ``async def fn(data, next)`` (``await next(data)``).
  In an async call a sync middleware runs in a worker thread (:func:`asyncio.to_thread`) and
  its ``next(data)`` blocks that thread, not the event loop, until the inner call is done: the
  same middleware works unchanged for both kinds of call. In a sync call an async middleware
  runs with :func:`asyncio.run`, its ``next`` running the rest of the call in a worker thread;
  made from a thread whose loop is running, the call raises :class:`ConfigurationError`.
- With no hooks registered anywhere a call runs with none of this: no threads, no wrapping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol, TypeVar

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
    "on_cascade_step",
)

CallData = dict[str, Any]
Next = Callable[[CallData], Any]
AsyncNext = Callable[[CallData], Awaitable[Any]]
Middleware = Callable[[CallData, Next], Any]
"""``fn(data, next)``, or ``async def fn(data, next)`` whose ``next`` is an :data:`AsyncNext`."""
Handler = Callable[[dict[str, Any]], object]
"""``fn(event)``; it may return an awaitable (an ``async def`` handler), which is awaited."""
F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A", bound="CallArguments")


class CallArguments(Protocol):
    """A call's arguments, typed, that middleware sees as its ``data`` dict."""

    def data(self) -> CallData:
        """The ``data`` dict middleware is given."""
        ...

    def with_data(self: A, data: Mapping[str, Any]) -> A:
        """The arguments as middleware left ``data``."""
        ...


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


# -- sync or async user code -----------------------------------------------------------------


def _loop_running() -> bool:
    """Whether this thread is inside a running event loop (``asyncio.run`` would fail)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _is_async(fn: object) -> bool:
    """An ``async def`` function (or object whose ``__call__`` is one): it must be awaited, so
    which kind a middleware is has to be known before it is called."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    """A coroutine for any awaitable (``asyncio.run`` and ``run_coroutine_threadsafe`` take
    only coroutines)."""
    return await awaitable


# -- events ----------------------------------------------------------------------------------


def _logged(name: str, handler: Handler) -> None:
    log.exception("orkestra: the %s handler %r raised; the call goes on", name, handler)


def emit(layers: Iterable[Hooks], name: str, **event: Any) -> None:
    """Call every handler of ``name`` (global first); a failing handler is logged, not raised.

    An async handler's coroutine is run with :func:`asyncio.run`; if this thread's loop is
    running that is impossible, so it is skipped with a warning instead of blocking the loop.
    """
    event["event"] = name
    for hooks in layers:
        for handler in hooks.handlers(name):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    if _loop_running():
                        if inspect.iscoroutine(result):
                            result.close()  # never awaited on purpose: no RuntimeWarning
                        log.warning(
                            "orkestra: the async %s handler %r was skipped: this sync call runs "
                            "inside a running event loop (use achat/astream there)",
                            name,
                            handler,
                        )
                        continue
                    asyncio.run(_awaited(result))
            except Exception:
                _logged(name, handler)


async def aemit(layers: Iterable[Hooks], name: str, **event: Any) -> None:
    """:func:`emit` in an async call: a handler's awaitable result is awaited."""
    event["event"] = name
    for hooks in layers:
        for handler in hooks.handlers(name):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _logged(name, handler)


# -- middleware ------------------------------------------------------------------------------

_Step = Callable[[CallData], Coroutine[Any, Any, Any]]
"""An async ``next``: calling it gives the coroutine of the rest of the call."""


def _chain(layers: Iterable[Hooks]) -> list[tuple[bool, list[Middleware]]]:
    """The middleware of ``layers`` (global outermost) in runs of one kind: (async?, fns).

    A run of sync middleware shares one worker thread in an async call (and a run of async
    middleware one ``asyncio.run`` in a sync call): fewer hops, and a call holds one thread
    of the default executor per run, not one per middleware.
    """
    fns = [fn for hooks in layers for fn in hooks.middleware()]
    return [(kind, list(run)) for kind, run in itertools.groupby(fns, key=_is_async)]


def _compose(fns: list[Middleware], inner: Next) -> Next:
    """Sync middleware around ``inner``, the first outermost."""
    step = inner
    for fn in reversed(fns):
        step = _bind(fn, step)
    return step


def _bind(fn: Middleware, inner: Next) -> Next:
    return lambda d: fn(d, inner)


def _acompose(fns: list[Middleware], inner: AsyncNext) -> _Step:
    """Async middleware around ``inner``, the first outermost."""
    step: AsyncNext = inner
    for fn in reversed(fns):
        step = _abind(fn, step)
    return lambda d: _awaited(step(d))


def _abind(fn: Middleware, inner: AsyncNext) -> AsyncNext:
    async def next_(d: CallData) -> Any:
        return await fn(d, inner)

    return next_


def run_middleware(layers: Iterable[Hooks], data: CallData, call: Next) -> Any:
    """Run ``call(data)`` inside every middleware (global outermost), in a sync call.

    A run of async middleware is run with :func:`asyncio.run`; its ``next`` runs the rest of
    the call in a worker thread (which may itself hold async middleware needing its own loop).
    """
    runs = _chain(layers)
    if _loop_running():
        asynchronous = [fn for kind, fns in runs if kind for fn in fns]
        if asynchronous:
            raise ConfigurationError(
                f"the async middleware {asynchronous[0]!r} cannot run in a sync call made "
                "inside a running event loop: use achat/astream there, or make the "
                "middleware a plain function"
            )

    def build(index: int) -> Next:
        if index == len(runs):
            return call
        is_async, fns = runs[index]
        inner = build(index + 1)
        if not is_async:
            return _compose(fns, inner)

        def in_thread(d: CallData) -> Awaitable[Any]:
            return asyncio.to_thread(inner, d)

        outer = _acompose(fns, in_thread)
        return lambda d: asyncio.run(outer(d))

    return build(0)(data)


async def arun_middleware(layers: Iterable[Hooks], data: CallData, call: _Step) -> Any:
    """Run ``await call(data)`` inside every middleware (global outermost), in an async call.

    A run of sync middleware is run in a worker thread; its ``next(data)`` hands the rest of
    the call back to this loop and blocks the worker (not the loop) until it is done. A thread
    cannot be cancelled, but the call it is waiting for can: cancelling the async call cancels
    that (so nothing goes on being sent or billed), and the middleware's ``next`` raises.
    """
    runs = _chain(layers)
    loop = asyncio.get_running_loop()

    def build(index: int) -> _Step:
        if index == len(runs):
            return call
        is_async, fns = runs[index]
        inner = build(index + 1)
        if is_async:
            return _acompose(fns, inner)

        async def in_thread(d: CallData) -> Any:
            waiting: list[concurrent.futures.Future[Any]] = []

            def blocking(d2: CallData) -> Any:
                waiting.append(asyncio.run_coroutine_threadsafe(inner(d2), loop))
                return waiting[-1].result()

            try:
                return await asyncio.to_thread(_compose(fns, blocking), d)
            except asyncio.CancelledError:
                for future in waiting:
                    future.cancel()
                raise

        return in_thread

    return await build(0)(data)


# -- a call in its hooks ---------------------------------------------------------------------

Notify = Callable[..., None]
AsyncNotify = Callable[..., Awaitable[None]]


def _silent(name: str, **event: Any) -> None:
    """The notifier when no handler is registered anywhere."""


async def asilent(name: str, **event: Any) -> None:
    """The async notifier when no handler is registered anywhere (compare with ``is``)."""


def hooked(
    layers: Iterable[Hooks],
    args: A,
    run: Callable[[A, Notify], Any],
    *,
    streaming: bool = False,
) -> Any:
    """Run one call inside the middleware of ``layers``, emitting its events.

    ``run(args, notify)`` makes the call from (possibly middleware-changed) ``args``; with no
    hooks anywhere it gets them as they are, and nothing else happens. For a non-streaming call
    ``on_response`` is emitted here; a stream emits its own at its end.
    """
    chain = tuple(layers)
    if not any(chain):
        return run(args, _silent)

    def notify(name: str, **event: Any) -> None:
        emit(chain, name, **event)

    data = args.data()
    notify("on_request", request=dict(data))

    def call(d: CallData) -> Any:
        try:
            result = run(args.with_data(d), notify)
        except Exception as error:
            notify("on_error", error=error, request=dict(d))
            raise
        if not streaming:
            notify("on_response", response=result)
        return result

    return run_middleware(chain, data, call)


async def ahooked(
    layers: Iterable[Hooks],
    args: A,
    run: Callable[[A, AsyncNotify], Awaitable[Any]],
    *,
    streaming: bool = False,
) -> Any:
    """:func:`hooked` for an async call: the same events in the same order, awaited.

    ``run(args, notify)`` is awaited; with no hooks anywhere it gets :func:`asilent` and
    nothing else happens (no thread, no wrapping).
    """
    chain = tuple(layers)
    if not any(chain):
        return await run(args, asilent)

    async def notify(name: str, **event: Any) -> None:
        await aemit(chain, name, **event)

    data = args.data()
    await notify("on_request", request=dict(data))

    async def call(d: CallData) -> Any:
        try:
            result = await run(args.with_data(d), notify)
        except Exception as error:
            await notify("on_error", error=error, request=dict(d))
            raise
        if not streaming:
            await notify("on_response", response=result)
        return result

    return await arun_middleware(chain, data, call)
