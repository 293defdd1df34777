"""Following a usage log as calls land, from any process: a polling cursor over ``(ts, id)``.

The log is read, not subscribed to, so calls recorded by another process (a proxy, a script)
appear as well as this process's own. A record's ``ts`` is when its call finished, but it
reaches the database a little later (writers batch, and retry when the database is busy), so a
record may land *behind* one already seen. Each poll therefore re-reads the last ``lookback``
seconds and remembers the ids it has sent from them: a record that lands up to ``lookback`` late
is still sent, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from orkestra.dashboard._summary import Cursor
from orkestra.usage import UsageLog, UsageRecord

__all__ = ["CallTail"]

DEFAULT_LOOKBACK = 5.0


class CallTail:
    """The records of ``log`` after ``after`` (default: now), each returned by :meth:`poll` once.

    >>> tail = CallTail(log)           # doctest: +SKIP
    >>> tail.poll()                    # doctest: +SKIP  (the calls recorded since)
    """

    def __init__(
        self,
        log: UsageLog,
        *,
        after: Cursor | None = None,
        lookback: float = DEFAULT_LOOKBACK,
    ) -> None:
        self._log = log
        self._floor = after or Cursor(datetime.now(timezone.utc), "")
        self._lookback = timedelta(seconds=lookback)
        self._newest = self._floor.ts
        self._sent: dict[str, datetime] = {}

    def poll(self) -> list[UsageRecord]:
        """The records not returned yet, oldest first (reads the log: call it off the loop)."""
        records = self._log.query(self._newest - self._lookback)
        fresh = [r for r in records if r.id not in self._sent and Cursor(r.ts, r.id) > self._floor]
        for record in fresh:
            self._sent[record.id] = record.ts
            self._newest = max(self._newest, record.ts)
        if fresh:
            horizon = self._newest - self._lookback
            self._sent = {rid: ts for rid, ts in self._sent.items() if ts >= horizon}
        return fresh
