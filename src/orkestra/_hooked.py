"""What Provider and MultiProvider share around a call: hooks, and running chat/stream in them
(sync, and async for ``achat``/``astream``).

A call's arguments travel typed (:class:`CallArgs`); middleware sees them as its
documented ``data`` dict, and only when there is middleware or a handler anywhere."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orkestra._call import Request, read_input
from orkestra._cascade import CascadeCall
from orkestra._conversation import Messages
from orkestra._request import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from orkestra._session import SessionStore
from orkestra._types import Response, RoutingDecision
from orkestra.errors import CapabilityError, InvalidRequestError, OrkestraError
from orkestra.hooks import (
    AsyncNotify,
    Handler,
    Hooks,
    Middleware,
    Notify,
    ahooked,
    asilent,
    global_hooks,
    hooked,
)
from orkestra.resilience.budget import Budget
from orkestra.resilience.call import AsyncResponseStream, Call, ResponseStream, fallback_moves
from orkestra.resilience.executor import Target
from orkestra.usage import UsageSink

__all__ = ["CallArgs", "HookedCalls"]

DATA_KEYS = (
    "prompt",
    "messages",
    "model",
    "strategy",
    "max_tokens",
    "temperature",
    "quality",
    "tools",
    "tool_choice",
    "response_format",
    "session_id",
    "cascade",
    "verifier",
    "cascade_streaming",
    "params",
)
"""The arguments of a call, as middleware sees them in ``data`` (with ``provider``, ``stream``);
``params`` is a dict of the optional parameters given (``stop``, ``top_p``...)."""


@dataclass(frozen=True)
class CallArgs:
    """A call's arguments as given (checked by :meth:`request`), and where it was made."""

    prompt: str | None = None
    messages: Messages | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    model: str | None = None
    strategy: str | None = None
    quality: float | None = None
    tools: Sequence[Any] | None = None
    tool_choice: Any = None
    response_format: Any = None
    session_id: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The optional parameters given (``stop=``, ``top_p=``...), checked by :meth:`request`."""
    budget: Budget | None = None
    """A spend cap for this call alone, on top of the provider's and the process's."""
    usage_sink: UsageSink | None = None
    """Where this call's usage record goes (default: the provider's sink)."""
    cascade: bool | None = None
    """True/False: a cascade or a routed call (None: the provider's ``mode``)."""
    verifier: Any = None
    """The verifier of this call's cascade (None: the provider's)."""
    cascade_streaming: str | None = None
    """``"buffer"`` or ``"replace"`` (None: the provider's cascade policy's)."""
    provider: str | None = None
    """The provider the call was made on (None: a ``MultiProvider``)."""
    multi: bool = False
    stream: bool = False

    def data(self) -> dict[str, Any]:
        """The ``data`` dict middleware sees (see :mod:`orkestra.hooks`)."""
        data = {key: getattr(self, key) for key in DATA_KEYS}
        data["params"] = dict(self.params)
        if not self.multi:
            del data["strategy"]
        data.update(provider=self.provider, stream=self.stream)
        return data

    def with_data(self, data: Mapping[str, Any]) -> CallArgs:
        """These arguments as (possibly) changed by middleware."""
        changes: dict[str, Any] = {key: data[key] for key in DATA_KEYS if key in data}
        return dataclasses.replace(self, **changes)

    def request(self) -> Request:
        """The checked :class:`Request` (raises :class:`InvalidRequestError` before anything
        is sent)."""
        return read_input(
            self.prompt,
            self.messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            tools=self.tools,
            tool_choice=self.tool_choice,
            response_format=self.response_format,
            session_id=self.session_id,
            params=self.params,
        )


class HookedCalls:
    """Mixin: ``chat``/``stream`` (and ``achat``/``astream``) run ``_prepare`` (route + plan)
    inside the middleware and events of the global hooks and of ``self.hooks``."""

    hooks: Hooks
    sessions: SessionStore

    def _prepare(
        self, args: CallArgs, notify: Notify
    ) -> tuple[Call | CascadeCall, Sequence[Target], RoutingDecision]:
        raise NotImplementedError

    def _refusal_sink(self, args: CallArgs) -> tuple[UsageSink | None, str | None]:
        """Where a call refused before any model was tried is recorded, and its provider."""
        return args.usage_sink, args.provider

    def _refused(self, args: CallArgs, error: OrkestraError) -> None:
        """Record a call that failed before any attempt (no model can serve it, an unknown
        model, no key...): the usage log shows refusals too. Arguments the caller got wrong
        (:class:`InvalidRequestError`, but :class:`CapabilityError`) are the caller's bug, not
        a call: not recorded."""
        if isinstance(error, InvalidRequestError) and not isinstance(error, CapabilityError):
            return
        sink, provider = self._refusal_sink(args)
        if sink is not None:
            sink.record_error(
                error,
                provider=provider,
                model=args.model,
                prompt=args.prompt if isinstance(args.prompt, str) else None,
            )

    def _prepared(
        self, args: CallArgs, notify: Notify
    ) -> tuple[Call | CascadeCall, Sequence[Target], RoutingDecision]:
        try:
            return self._prepare(args, notify)
        except OrkestraError as error:
            self._refused(args, error)
            raise

    def _cold_routers(self) -> list[Callable[[], object]]:
        """Loaders of the routers this object's calls need and has not loaded yet."""
        return []

    def _layers(self) -> tuple[Hooks, ...]:
        return (global_hooks(), self.hooks)

    def _hooked_chat(self, args: CallArgs) -> Response:
        response: Response = hooked(self._layers(), args, self._run_chat)
        return response

    def _hooked_stream(self, args: CallArgs) -> ResponseStream:
        args = dataclasses.replace(args, stream=True)
        stream: ResponseStream = hooked(self._layers(), args, self._run_stream, streaming=True)
        return stream

    async def _hooked_achat(self, args: CallArgs) -> Response:
        response: Response = await ahooked(self._layers(), args, self._arun_chat)
        return response

    async def _hooked_astream(self, args: CallArgs) -> AsyncResponseStream:
        args = dataclasses.replace(args, stream=True)
        stream: AsyncResponseStream = await ahooked(
            self._layers(), args, self._arun_stream, streaming=True
        )
        return stream

    def _run_chat(self, args: CallArgs, notify: Notify) -> Response:
        call, targets, decision = self._prepared(args, notify)
        notify("on_chat", decision=decision)
        if isinstance(call, CascadeCall):
            call.notify = notify
        response = call.chat(targets)
        for move in fallback_moves(response):
            notify("on_fallback", **move)
        return response

    def _run_stream(self, args: CallArgs, notify: Notify) -> ResponseStream:
        call, targets, decision = self._prepared(args, notify)
        notify("on_stream", decision=decision)
        stream = call.stream(targets, decision)
        stream.notify = notify
        return stream

    async def _aprepare(
        self, args: CallArgs, notify: AsyncNotify
    ) -> tuple[Call | CascadeCall, Sequence[Target], RoutingDecision]:
        """``_prepare`` in an async call. It is CPU-only and fast, so it runs on the loop (in a
        worker thread when it reads a session's pin from a database); the events it emits are
        held and emitted (awaited, in order) as soon as it returns or raises, before anything
        else happens."""
        for load in self._cold_routers():
            # Loading a router (first call in a process: ~0.3 s) must not stall the loop.
            await asyncio.to_thread(load)
        offload = args.session_id is not None and self.sessions.blocking
        held: list[tuple[str, dict[str, Any]]] = []

        def hold(name: str, **event: Any) -> None:
            held.append((name, event))

        events: Notify = _ignore if notify is asilent else hold
        try:
            if offload:
                return await asyncio.to_thread(self._prepared, args, events)
            return self._prepared(args, events)
        finally:
            for name, event in held:
                await notify(name, **event)

    async def _arun_chat(self, args: CallArgs, notify: AsyncNotify) -> Response:
        call, targets, decision = await self._aprepare(args, notify)
        await notify("on_chat", decision=decision)
        if isinstance(call, CascadeCall) and notify is not asilent:
            call.anotify = notify
        response = await call.achat(targets)
        for move in fallback_moves(response):
            await notify("on_fallback", **move)
        return response

    async def _arun_stream(self, args: CallArgs, notify: AsyncNotify) -> AsyncResponseStream:
        call, targets, decision = await self._aprepare(args, notify)
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
