"""Sticky sessions: a conversation stays on the model it started on.

A provider's prompt cache only pays off when the next turn goes to the *same* model: moving a
conversation to another model re-sends (and re-bills) the whole history uncached. So a call with
``session_id=`` (or through :class:`orkestra.Conversation`) keeps the session's model, unless the
router sees a turn that needs a *higher* tier: then the session escalates, and stays on the higher
model from there. It never silently moves down mid-conversation.

Where the pins live is a :class:`SessionStore`: by default :class:`Sessions`, in memory, per
``Provider``/``MultiProvider`` object (least recently used first out); to share them between
processes (``--workers``, proxy replicas), the usage database's
(:meth:`orkestra.usage.SQLUsageLog.session_store`), passed as ``Provider(..., sessions=...)``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from orkestra._types import TIERS, Response, RoutingDecision, Tier
from orkestra.errors import ConfigurationError, InvalidRequestError

__all__ = ["DEFAULT_SESSION_TTL", "Conversation", "Pin", "SessionStore", "Sessions"]

DEFAULT_SESSION_TTL = 24 * 3600.0
"""A session not answered for this long (seconds) is forgotten."""


@dataclass(frozen=True)
class Pin:
    """The model a session is on."""

    provider: str
    model: str
    tier: Tier


def tier_rank(tier: Tier) -> int:
    """``tier``'s place in :data:`~orkestra.TIERS`, cheapest first: a session moves only to the
    same rank or higher."""
    return TIERS.index(tier)


_rank = tier_rank


def _steer(pin: Pin, routed: RoutingDecision, movable: bool) -> RoutingDecision:
    """The session's model, unless the router wants a higher tier (escalation) or the session's
    model can't serve this turn (``movable``)."""
    if (pin.provider, pin.model) == (routed.provider, routed.model):
        return routed
    if _rank(routed.tier) > _rank(pin.tier):
        return dataclasses.replace(
            routed,
            reason=f"session escalated from {pin.provider}/{pin.model} ({pin.tier}): "
            f"{routed.reason}",
        )
    if movable:
        return dataclasses.replace(
            routed,
            reason=f"session moved: {pin.provider}/{pin.model} cannot serve this turn; "
            f"{routed.reason}",
        )
    return dataclasses.replace(
        routed,
        provider=pin.provider,
        model=pin.model,
        tier=pin.tier,
        reason=f"sticky session: stays on {pin.provider}/{pin.model} ({pin.tier}) to keep "
        f"its prompt cache; the router alone would pick {routed.provider}/{routed.model} "
        f"({routed.tier}): {routed.reason}",
    )


class SessionStore(ABC):
    """Where sticky sessions' pins live: session id → the model it is on.

    The rule of :meth:`pin` (move to the same tier or higher, never down) must be applied
    atomically by the store, so that several threads or processes answering turns of one
    session at once leave it on one model. :meth:`turn` and :meth:`settle` are what a call does
    with the store; a store implements :meth:`get`, :meth:`pin` and :meth:`forget`.
    """

    ttl: float
    """Seconds after its last answered turn that a session is forgotten."""
    blocking: ClassVar[bool] = False
    """Whether reading and writing pins wait on I/O (a database): async calls with a session
    then route and settle it in a worker thread, off the event loop."""

    @abstractmethod
    def get(self, session: str) -> Pin | None:
        """The session's pin (None: unknown, or expired)."""

    @abstractmethod
    def pin(self, session: str, new: Pin, *, moved: bool = False) -> None:
        """Record that a turn of ``session`` was answered on ``new``, in one atomic step: the
        session moves there if it has no pin (or an expired one), if ``new`` is the same tier
        or higher, or if ``moved`` (its model could not serve the turn); otherwise it keeps its
        pin. Either way its time to live starts again."""

    @abstractmethod
    def forget(self, session: str) -> None:
        """Drop the session's pin."""

    def close(self) -> None:  # noqa: B027 - a store with nothing to release needs none
        """Release what the store holds (connections); the in-memory store holds nothing."""

    def turn(
        self,
        session: str | None,
        pin: Pin | None,
        routed: RoutingDecision,
        serves: Callable[[Pin], bool],
    ) -> tuple[RoutingDecision, Callable[[Response], None] | None]:
        """This turn's decision for ``session`` (None: no session, ``routed`` as it is) and
        what to call with its response. ``pin``: the session's pin, read by the caller (once:
        a cascade needs it too, and with a database store every read is a round trip).
        ``serves(pin)``: whether the session's model can serve this turn (it may lack a
        capability the turn needs)."""
        if session is None:
            return routed, None
        movable = pin is not None and not serves(pin)
        decision = routed if pin is None else _steer(pin, routed, movable)
        return decision, lambda response: self.settle(session, response, moved=movable)

    def settle(self, session: str, response: Response, *, moved: bool = False) -> None:
        """Record where a session's turn was answered: the session moves there if that is the
        same tier or higher (or ``moved``: its old model could not serve the turn)."""
        self.pin(session, Pin(response.provider, response.model, response.tier), moved=moved)


class Sessions(SessionStore):
    """Session id → the model it is on, in this process's memory (at most ``max_sessions``,
    least recently used first out; idle ones expire after ``ttl`` seconds)."""

    def __init__(self, max_sessions: int = 10_000, ttl: float = DEFAULT_SESSION_TTL) -> None:
        self.max_sessions, self.ttl = max_sessions, ttl
        self._pins: OrderedDict[str, tuple[Pin, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Sessions({len(self)} in memory, max_sessions={self.max_sessions})"

    def __len__(self) -> int:
        return len(self._pins)

    def get(self, session: str) -> Pin | None:
        with self._lock:
            entry = self._pins.get(session)
            if entry is None:
                return None
            pin, seen = entry
            if time.monotonic() - seen > self.ttl:
                del self._pins[session]
                return None
            self._pins.move_to_end(session)
            return pin

    def pin(self, session: str, new: Pin, *, moved: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._pins.get(session)
            if (
                entry is None
                or moved
                or now - entry[1] > self.ttl
                or _rank(new.tier) >= _rank(entry[0].tier)
            ):
                self._pins[session] = (new, now)
            else:
                self._pins[session] = (entry[0], now)
            self._pins.move_to_end(session)
            while len(self._pins) > self.max_sessions:
                self._pins.popitem(last=False)

    def forget(self, session: str) -> None:
        with self._lock:
            self._pins.pop(session, None)


class Conversation:
    """A multi-turn conversation that keeps its history and stays on one model.

    >>> chat = Conversation(provider, system="Answer briefly.")   # doctest: +SKIP
    >>> chat.chat("What is a B-tree?").text                       # doctest: +SKIP
    >>> chat.chat("And a hash table?").model                      # the same model, cache warm

    Each turn is sent with the whole history and the conversation's ``session_id``: it stays on
    the model it started on (so the provider's prompt cache stays warm; ``Response.cache_savings``
    shows what that saved) unless the router sees a turn that needs a higher tier — then it
    escalates, and never moves down again. A failed turn leaves the history as it was.

    Args:
        router: a :class:`~orkestra.Provider` or :class:`~orkestra.MultiProvider`.
        system: the system prompt.
        messages: earlier turns to start from (OpenAI format).
        session_id: the sticky session's id (default: a new random one).
        **defaults: arguments for every turn (``tools=``, ``response_format=``, ``quality=``,
            ``max_tokens=``...); a turn's own arguments override them.
    """

    def __init__(
        self,
        router: Any,
        *,
        system: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        session_id: str | None = None,
        **defaults: Any,
    ) -> None:
        if not hasattr(router, "chat") or not hasattr(router, "sessions"):
            raise ConfigurationError(
                f"Conversation needs a Provider or MultiProvider, not {type(router).__name__}"
            )
        if "messages" in defaults or "prompt" in defaults or "session_id" in defaults:
            raise ConfigurationError("a Conversation keeps its own messages and session_id")
        self.router = router
        self.session_id = session_id or f"conv-{uuid.uuid4().hex}"
        self._messages: list[Mapping[str, Any]] = []
        if system is not None:
            self._messages.append({"role": "system", "content": system})
        self._messages.extend(dict(m) for m in messages or ())
        self.defaults = defaults
        self.responses: list[Response] = []
        """Every answer of this conversation, in order."""

    def __repr__(self) -> str:
        return (
            f"Conversation({self.router!r}, turns={len(self._messages)}, "
            f"model={self.model!r}, session_id={self.session_id!r})"
        )

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        """The history so far (a copy), ready to send as ``messages=``."""
        return list(self._messages)

    @property
    def model(self) -> str | None:
        """The model of the last answer (None before the first)."""
        return self.responses[-1].model if self.responses else None

    @property
    def tier(self) -> Tier | None:
        return self.responses[-1].tier if self.responses else None

    @property
    def cost(self) -> float:
        """What every turn cost together, in dollars (failed attempts included)."""
        return sum(r.total_cost for r in self.responses)

    @property
    def cache_savings(self) -> float:
        """What the provider's prompt cache saved over the conversation, in dollars."""
        return sum(r.cache_savings for r in self.responses)

    def add_tool_result(self, tool_call_id: str, content: Any) -> None:
        """Answer one of the last response's tool calls (``content``: text, or anything
        JSON-serialisable); then call :meth:`chat` with no text to continue."""
        text = content if isinstance(content, str) else json.dumps(content)
        self._messages.append({"role": "tool", "tool_call_id": tool_call_id, "content": text})

    def _turn(self, content: Any, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mark = len(self._messages)
        if content is not None:
            self._messages.append({"role": "user", "content": content})
        elif not self._messages or self._messages[-1].get("role") not in ("user", "tool"):
            raise InvalidRequestError(
                "nothing to answer: pass the user's text, or add_tool_result(...) first"
            )
        args = {**self.defaults, **kwargs}
        args.update(messages=list(self._messages), session_id=self.session_id)
        return mark, args

    def _answered(self, response: Response) -> Response:
        self._messages.append(response.message())
        self.responses.append(response)
        return response

    def chat(self, content: Any = None, **kwargs: Any) -> Response:
        """Send the user's ``content`` (text or content parts) with the history; the answer is
        appended to it."""
        mark, args = self._turn(content, kwargs)
        try:
            response = self.router.chat(**args)
        except BaseException:
            del self._messages[mark:]
            raise
        return self._answered(response)

    def stream_text(self, content: Any = None, **kwargs: Any) -> Iterator[str]:
        """Like :meth:`chat`, streaming the answer's text; it joins the history at its end."""
        mark, args = self._turn(content, kwargs)
        try:
            stream = self.router.stream(**args)
            yield from stream
        except BaseException:
            del self._messages[mark:]
            raise
        if stream.response is not None:
            self._answered(stream.response)

    async def achat(self, content: Any = None, **kwargs: Any) -> Response:
        """:meth:`chat` for asyncio."""
        mark, args = self._turn(content, kwargs)
        try:
            response = await self.router.achat(**args)
        except BaseException:
            del self._messages[mark:]
            raise
        return self._answered(response)

    async def astream_text(self, content: Any = None, **kwargs: Any) -> AsyncIterator[str]:
        """:meth:`stream_text` for asyncio."""
        mark, args = self._turn(content, kwargs)
        try:
            stream = await self.router.astream(**args)
            async for chunk in stream:
                yield chunk
        except BaseException:
            del self._messages[mark:]
            raise
        if stream.response is not None:
            self._answered(stream.response)

    def reset(self) -> None:
        """Forget the history (the system prompt stays) and start a new session."""
        self._messages = [m for m in self._messages if m.get("role") == "system"]
        self.responses.clear()
        self.router.sessions.forget(self.session_id)
        self.session_id = f"conv-{uuid.uuid4().hex}"
