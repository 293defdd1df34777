"""Sticky sessions shared by several processes: each session's pin, in the usage database.

A :class:`~orkestra.SessionStore` for ``--workers`` on one SQLite file and for proxy replicas on
one PostgreSQL: table ``session_pins``, one row per (scope, session). Recording an answered
turn is one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` whose condition is the session rule (no
row, an expired row, the same tier or higher, or a move because the old model could not serve
the turn): the database applies it to the row as it is when the statement runs, under the row's
lock, so two processes racing on one session leave it on one model and never move it down.

- The session id is stored as its sha256: an id a client sent (``prompt_cache_key``) may be
  long or say something about its user, and only equality matters here.
- ``scope`` keeps apart the sessions of routers that must not share them (the proxy: one per
  client key and provider set).
- Reading skips expired rows; they are deleted, by any process, at most every
  ``_PURGE_EVERY`` seconds, through the index on ``expires``.
- A database that is away does not fail calls: a pin that cannot be read is routed afresh and
  one that cannot be written is lost (both logged as warnings); the answer is right either way,
  only the provider's prompt cache may be colder.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import cast

from orkestra._session import DEFAULT_SESSION_TTL, Pin, SessionStore, tier_rank
from orkestra._types import TIERS, Tier
from orkestra.usage._connections import Connections, PostgresPool, SQLiteConnection

__all__ = ["PostgresSessionStore", "SQLSessionStore", "SQLiteSessionStore"]

logger = logging.getLogger("orkestra.sessions")

# Expired pins are deleted at most this often by one store (reading skips them anyway).
_PURGE_EVERY = 300.0

_GET = (
    "SELECT provider, model, tier FROM session_pins "
    "WHERE scope = ? AND session = ? AND expires >= ?"
)
# The session rule, applied by the database to the row as it stands: see the module's text.
_PIN = (
    "INSERT INTO session_pins (scope, session, provider, model, tier, rank, expires) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (scope, session) DO UPDATE SET provider = excluded.provider, "
    "model = excluded.model, tier = excluded.tier, rank = excluded.rank, "
    "expires = excluded.expires "
    "WHERE ? OR session_pins.expires < ? OR excluded.rank >= session_pins.rank"
)
# The turn went lower (a fallback): the pin stays, its time to live starts again.
_TOUCH = "UPDATE session_pins SET expires = ? WHERE scope = ? AND session = ? AND expires < ?"
_FORGET = "DELETE FROM session_pins WHERE scope = ? AND session = ?"
_PURGE = "DELETE FROM session_pins WHERE expires < ?"


def session_key(session: str) -> str:
    """What the table stores for a session id: its sha256, in hex."""
    return hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()


class SQLSessionStore(SessionStore):
    """The pins in a SQL database, on ``db``'s connections (``param``: the driver's
    placeholder).

    :meth:`scoped` gives a view on the same connections under another scope (the proxy makes
    one per client key and provider set); closing any of them closes the connections.
    """

    blocking = True

    def __init__(
        self,
        db: Connections,
        param: str,
        *,
        scope: str = "",
        ttl: float = DEFAULT_SESSION_TTL,
    ) -> None:
        self.scope = scope
        self.ttl = ttl
        self._db = db
        self._param = param
        self._purge = _PurgeClock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scope={self.scope!r}, ttl={self.ttl:g})"

    def _q(self, sql: str) -> str:
        return sql.replace("?", self._param)

    def scoped(self, scope: str) -> SQLSessionStore:
        """A view of this store's database under ``scope``: its sessions are apart from
        those of every other scope."""
        view = SQLSessionStore(self._db, self._param, scope=scope, ttl=self.ttl)
        view._purge = self._purge
        return view

    def close(self) -> None:
        self._db.close()

    def get(self, session: str) -> Pin | None:
        try:
            with self._db.autocommit() as cur:
                cur.execute(self._q(_GET), (self.scope, session_key(session), time.time()))
                row = cur.fetchone()
        except Exception as exc:
            logger.warning("sticky sessions: reading a pin failed, routing afresh: %s", exc)
            return None
        if row is None or row[2] not in TIERS:
            return None
        return Pin(str(row[0]), str(row[1]), cast("Tier", row[2]))

    def pin(self, session: str, new: Pin, *, moved: bool = False) -> None:
        now = time.time()
        key = session_key(session)
        expires = now + self.ttl
        try:
            # One statement, one round trip: the rule is in it, atomic on its own.
            with self._db.autocommit() as cur:
                cur.execute(
                    self._q(_PIN),
                    (
                        *(self.scope, key, new.provider, new.model, new.tier),
                        *(tier_rank(new.tier), expires, moved, now),
                    ),
                )
                if cur.rowcount == 0:
                    cur.execute(self._q(_TOUCH), (expires, self.scope, key, expires))
                if self._purge.due(now):
                    cur.execute(self._q(_PURGE), (now,))
        except Exception as exc:
            logger.warning("sticky sessions: recording a pin failed: %s", exc)

    def forget(self, session: str) -> None:
        with self._db.autocommit() as cur:
            cur.execute(self._q(_FORGET), (self.scope, session_key(session)))


class _PurgeClock:
    """When a store (and its scoped views) last deleted the expired pins."""

    def __init__(self) -> None:
        self._last = 0.0
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        with self._lock:
            if now - self._last < _PURGE_EVERY:
                return False
            self._last = now
            return True


class SQLiteSessionStore(SQLSessionStore):
    """The pins in the usage log's SQLite file (workers on one machine)."""

    def __init__(
        self,
        path: str | Path,
        *,
        scope: str = "",
        ttl: float = DEFAULT_SESSION_TTL,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        db = SQLiteConnection(self.path, busy_timeout=busy_timeout)
        super().__init__(db, "?", scope=scope, ttl=ttl)

    def __repr__(self) -> str:
        return f"SQLiteSessionStore({str(self.path)!r}, scope={self.scope!r})"


class PostgresSessionStore(SQLSessionStore):
    """The pins in the usage log's PostgreSQL database (replicas on several machines); a
    statement that takes longer than ``timeout`` seconds fails (the turn is routed afresh)."""

    def __init__(
        self,
        url: str,
        *,
        scope: str = "",
        ttl: float = DEFAULT_SESSION_TTL,
        pool_size: int = 4,
        connect_timeout: int = 10,
        timeout: float = 5.0,
    ) -> None:
        db = PostgresPool(
            url,
            application_name="orkestra-sessions",
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            timeout=timeout,
        )
        super().__init__(db, "%s", scope=scope, ttl=ttl)
