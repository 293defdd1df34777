"""The default usage log: one SQLite file (``$ORKESTRA_HOME/usage.db``), in WAL mode.

WAL lets readers (``orkestra usage``) run while a writer writes; ``synchronous=NORMAL`` is
durable against a crash of the process (a power cut may lose the last transactions, never
corrupt the file); ``busy_timeout`` makes a second process wait for the write lock instead of
failing. The file is created readable by its owner only (it may hold prompts).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orkestra._session import DEFAULT_SESSION_TTL
from orkestra.usage.base import SQLUsageLog
from orkestra.usage.ledger import SQLiteSpendStore
from orkestra.usage.migrations import migrate_sqlite
from orkestra.usage.query import Dialect
from orkestra.usage.records import UsageRecord
from orkestra.usage.sessions import SQLiteSessionStore

__all__ = ["SQLiteUsageLog"]


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_CREAT with mode 0600 creates it owner-only (SQLite gives its -wal/-shm the same mode);
    # an existing file keeps the mode its owner chose.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


class SQLiteUsageLog(SQLUsageLog):
    """The usage log in a SQLite file.

    >>> log = SQLiteUsageLog("usage.db")  # doctest: +SKIP
    >>> log.record(UsageRecord.from_response(response))  # doctest: +SKIP
    """

    dialect = Dialect(
        param="?",
        day="substr(ts, 1, 10)",
        casts={},
        epoch="CAST(strftime('%s', ts) AS INTEGER)",
        knob="ROUND(knob, 4)",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        store_prompts: bool = False,
        busy_timeout: float = 5.0,
        writer_options: dict[str, Any] | None = None,
        journal: bool | str | os.PathLike[str] = True,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        self._busy_timeout = busy_timeout
        _create_private(self.path)
        reader = self._connect()
        try:
            migrate_sqlite(reader)
        except BaseException:
            reader.close()
            raise
        self._reader: sqlite3.Connection | None = reader
        self._writer_conn: sqlite3.Connection | None = None
        if journal is True:
            journal = self.path.with_name(self.path.name + ".journal")
        try:
            super().__init__(
                store_prompts=store_prompts,
                writer_options=writer_options,
                journal=None if journal is False else Path(journal),
                fsync=fsync,
            )
        except BaseException:
            self._close_connections()
            raise

    def __repr__(self) -> str:
        return f"SQLiteUsageLog({str(self.path)!r}, store_prompts={self.store_prompts})"

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE.
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        self._enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL may fail with "database is locked" at once, without the
        # busy handler, while another process does the same: wait as busy_timeout would.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def spend_store(self) -> SQLiteSpendStore:
        return SQLiteSpendStore(self.path, busy_timeout=self._busy_timeout)

    def session_store(self, *, ttl: float = DEFAULT_SESSION_TTL) -> SQLiteSessionStore:
        return SQLiteSessionStore(self.path, ttl=ttl, busy_timeout=self._busy_timeout)

    @staticmethod
    def dialect_ts(ts: datetime) -> Any:
        # Fixed width, so that comparing the text compares the times (isoformat pads the
        # year to four digits, which strftime's %Y does not do before the year 1000).
        return ts.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def _write(self, batch: list[UsageRecord]) -> None:
        if self._writer_conn is None:
            self._writer_conn = self._connect()
        conn = self._writer_conn
        rows = [self._row(record) for record in batch]
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(self.dialect.insert(), rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _is_transient(self, exc: Exception) -> bool:
        # "database is locked", disk full, I/O errors; an IntegrityError is not.
        return isinstance(exc, sqlite3.OperationalError)

    def ping(self) -> None:
        """The file and its directory are writable (WAL writes beside the file), and a
        query on the log's tables answers."""
        for path, what in ((self.path, "file"), (self.path.parent, "directory")):
            if not os.access(path, os.W_OK):
                raise PermissionError(f"the usage log's {what} {str(path)!r} is not writable")
        super().ping()
        for _ in self._rows("SELECT 1 FROM _migrations LIMIT 1", []):
            pass

    def _rows(self, sql: str, params: list[Any], *, stream: bool = False) -> Iterator[Any]:
        with self._read_lock:
            if self._reader is None:
                self._reader = self._connect()
            cursor = self._reader.execute(sql, params)
            try:
                while chunk := cursor.fetchmany(1000):
                    yield from chunk
            finally:
                cursor.close()
