"""Log lines a flood cannot multiply: the same warning at most once a minute, then a count.

A flood of bad requests (20,000 slow connections, a page hammering the proxy from a browser)
must not turn into millions of identical lines: :class:`Throttle` lets the first line of a kind
through, counts the others for ``interval`` seconds, and adds the count to the next line of
that kind that gets through ("… (1,234 more like this in the last 60 s)"). :class:`ThrottleFilter`
does the same for every WARNING-or-worse record of a handler (uvicorn's "Invalid HTTP request
received.", asyncio's "socket.accept() out of system resource"), keyed by the message template.
INFO lines (one per call) pass untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["Throttle", "ThrottleFilter"]

DEFAULT_INTERVAL = 60.0


class Throttle:
    """Which lines of a kind to let through: the first, then one per ``interval`` seconds."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def admit(self, kind: Hashable) -> int | None:
        """None to drop this line; else how many of its kind were dropped since the last one."""
        now = self._clock()
        with self._lock:
            if now < self._next.get(kind, float("-inf")):
                self._held[kind] = self._held.get(kind, 0) + 1
                return None
            if len(self._next) > 10_000:  # kinds are message templates: this is a safety net
                self._next.clear()
                self._held.clear()
            self._next[kind] = now + self.interval
            return self._held.pop(kind, 0)

    def suffix(self, dropped: int) -> str:
        if not dropped:
            return ""
        return f" ({dropped:,} more like this in the last {self.interval:g} s, not logged)"

    def log(
        self, logger: logging.Logger, level: int, kind: Hashable, message: str, *args: object
    ) -> None:
        """``logger.log(level, message, *args)``, throttled by ``kind``."""
        if not logger.isEnabledFor(level):
            return
        dropped = self.admit(kind)
        if dropped is not None:
            logger.log(level, message + "%s", *args, self.suffix(dropped))


class ThrottleFilter(logging.Filter):
    """A handler filter: WARNING-or-worse records throttled per (logger, message template)."""

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        super().__init__()
        self.throttle = Throttle(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        dropped = self.throttle.admit((record.name, str(record.msg)))
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.msg}{self.throttle.suffix(dropped)}"
        return True
