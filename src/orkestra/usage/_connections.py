"""Connections for the state several processes share through the usage database (budgets,
sticky sessions): short transactions on connections of their own, apart from the log's writer.

- :class:`SQLiteConnection`: one connection to the log's file, used by one thread at a time;
  a write transaction takes SQLite's database-wide write lock (``BEGIN IMMEDIATE``), so two
  processes on one file take turns.
- :class:`PostgresPool`: a few connections (``pool_size``) in autocommit mode, so that the
  transactions of different threads do not wait for each other; a statement that takes longer
  than ``timeout`` (a lock wait included) fails rather than leaves the call waiting.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

__all__ = ["Connections", "PostgresPool", "SQLiteConnection"]


class Connections(Protocol):
    """What a store needs of its connections (both classes here)."""

    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...

    def autocommit(self) -> contextlib.AbstractContextManager[Any]: ...

    def close(self) -> None: ...


class SQLiteConnection:
    """One connection to a SQLite file, shared by the threads of one store (one at a time)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._mutex = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")  # the file is in WAL mode already
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Cursor]:
        """A cursor in a transaction, committed on success and rolled back on error.
        ``write``: take the write lock first (``BEGIN IMMEDIATE``), so that what the
        transaction reads cannot change before it writes."""
        with self._mutex:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[sqlite3.Cursor]:
        """A cursor whose each statement is its own transaction."""
        with self._mutex:
            cur = self._connection().cursor()
            try:
                yield cur
            finally:
                cur.close()

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None


class PostgresPool:
    """A few autocommit connections to one PostgreSQL database, made when first needed."""

    def __init__(
        self,
        url: str,
        *,
        application_name: str,
        pool_size: int = 4,
        connect_timeout: int = 10,
        timeout: float = 10.0,
    ) -> None:
        import psycopg

        self._psycopg = psycopg
        self._options: dict[str, Any] = psycopg.conninfo.conninfo_to_dict(url)
        self._options.setdefault("connect_timeout", connect_timeout)
        self._options.setdefault("application_name", application_name)
        self._options["options"] = f"-c statement_timeout={int(timeout * 1000)}"
        self._idle: list[psycopg.Connection[Any]] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._mutex = threading.Lock()
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    def _take(self) -> psycopg.Connection[Any]:
        with self._mutex:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
        fresh: psycopg.Connection[Any] = self._psycopg.connect(autocommit=True, **self._options)
        return fresh

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        with self._mutex:
            if not self._closed and not conn.closed and not conn.broken:
                self._idle.append(conn)
                return
        with contextlib.suppress(Exception):
            conn.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool (autocommit: each statement is its own transaction)."""
        with self._slots:
            conn = self._take()
            try:
                yield conn
            finally:
                self._give_back(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in a transaction (committed on success, rolled back on error)."""
        with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Any]:
        """A cursor whose each statement is its own transaction."""
        with self.connection() as conn, conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()
