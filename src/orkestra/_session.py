"""Sticky sessions: a conversation stays on the model it started on.

A provider's prompt cache only pays off when the next turn goes to the *same* model: moving a
conversation to another model re-sends (and re-bills) the whole history uncached. So a call with
``session_id=`` (or through :class:`orkestra.Conversation`) keeps the session's model, unless the
router sees a turn that needs a *higher* tier: then the session escalates, and stays on the higher
model from there. It never silently moves down mid-conversation.

Sessions live in memory, per ``Provider``/``MultiProvider`` object, least recently used first out.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from orkestra._types import TIERS, Response, RoutingDecision, Tier

__all__ = ["Pin", "Sessions"]


@dataclass(frozen=True)
class Pin:
    """The model a session is on."""

    provider: str
    model: str
    tier: Tier


def _rank(tier: Tier) -> int:
    return TIERS.index(tier)


class Sessions:
    """Session id → the model it is on (at most ``max_sessions``, idle ones expire)."""

    def __init__(self, max_sessions: int = 10_000, ttl: float = 24 * 3600.0) -> None:
        self.max_sessions, self.ttl = max_sessions, ttl
        self._pins: OrderedDict[str, tuple[Pin, float]] = OrderedDict()
        self._lock = threading.Lock()

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

    def steer(self, session: str, routed: RoutingDecision, serves: bool = True) -> RoutingDecision:
        """The decision for this turn of ``session``: the session's model, unless the router
        wants a higher tier (escalation) or the session's model can't serve this turn
        (``serves`` False: it lacks a capability the turn needs)."""
        pin = self.get(session)
        if pin is None:
            return routed
        if (pin.provider, pin.model) == (routed.provider, routed.model):
            return routed
        if _rank(routed.tier) > _rank(pin.tier):
            return dataclasses.replace(
                routed,
                reason=f"session escalated from {pin.provider}/{pin.model} ({pin.tier}): "
                f"{routed.reason}",
            )
        if not serves:
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

    def settle(self, session: str, response: Response, *, moved: bool = False) -> None:
        """Record where a session's turn was answered: the session moves there if that is the
        same tier or higher (or ``moved``: its old model could not serve the turn)."""
        new = Pin(response.provider, response.model, response.tier)
        with self._lock:
            entry = self._pins.get(session)
            if entry is None or moved or _rank(new.tier) >= _rank(entry[0].tier):
                self._pins[session] = (new, time.monotonic())
            else:
                self._pins[session] = (entry[0], time.monotonic())
            self._pins.move_to_end(session)
            while len(self._pins) > self.max_sessions:
                self._pins.popitem(last=False)

    def forget(self, session: str) -> None:
        with self._lock:
            self._pins.pop(session, None)
