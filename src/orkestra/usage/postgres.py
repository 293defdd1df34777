"""The usage log in PostgreSQL, for several proxy replicas sharing one log and one set of budgets.

``ORKESTRA_DATABASE_URL=postgresql://user:password@host:5432/dbname`` (any libpq URL). Same schema
as SQLite (``JSONB`` for the JSON columns, ``TIMESTAMPTZ`` for ``ts``), same migrations. Needs
psycopg 3, an optional extra: ``pip install 'orkestra-router[postgres]'``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orkestra._session import DEFAULT_SESSION_TTL
from orkestra.usage.base import SQLUsageLog
from orkestra.usage.ledger import PostgresSpendStore
from orkestra.usage.migrations import migrate_postgres
from orkestra.usage.query import Dialect
from orkestra.usage.records import UsageRecord
from orkestra.usage.sessions import PostgresSessionStore

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresUsageLog", "redact_url"]

_POSTGRES_EXTRA_HINT = (
    "a PostgreSQL usage log needs psycopg 3: pip install 'orkestra-router[postgres]'"
)


def redact_url(url: str) -> str:
    """``url`` without its password: ``postgresql://app:***@db/usage``."""
    url = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def _default_journal(url: str) -> Path:
    """``$ORKESTRA_HOME/journal/<database>``: this machine's journal of the database at ``url``
    (one per server and database, whatever the password or options)."""
    from orkestra.routing.artifacts import orkestra_home

    info = _psycopg().conninfo.conninfo_to_dict(url)
    where = "|".join(str(info.get(k, "")) for k in ("host", "port", "dbname", "user"))
    return orkestra_home() / "journal" / hashlib.sha256(where.encode()).hexdigest()[:16]


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ImportError(_POSTGRES_EXTRA_HINT) from exc
    return psycopg


class PostgresUsageLog(SQLUsageLog):
    """The usage log in a PostgreSQL database (created tables: ``calls``, ``_migrations``)."""

    dialect = Dialect(
        param="%s",
        day="to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        casts={"scores": "::jsonb", "attempts_detail": "::jsonb"},
        epoch="CAST(floor(extract(epoch FROM ts)) AS BIGINT)",
        knob="CAST(ROUND(CAST(knob AS NUMERIC), 4) AS DOUBLE PRECISION)",
    )

    def __init__(
        self,
        url: str,
        *,
        store_prompts: bool = False,
        connect_timeout: int = 10,
        writer_options: dict[str, Any] | None = None,
        journal: bool | str | os.PathLike[str] = True,
        fsync: bool = False,
    ) -> None:
        self._psycopg = _psycopg()
        self._url = url
        self._connect_timeout = connect_timeout
        reader = self._connect()
        try:
            migrate_postgres(reader)
        except BaseException:
            reader.close()
            raise
        self._reader: psycopg.Connection[Any] | None = reader
        self._writer_conn: psycopg.Connection[Any] | None = None
        if journal is True:
            journal = _default_journal(url)
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

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"PostgresUsageLog({self.url!r}, store_prompts={self.store_prompts})"

    def _connect(self) -> psycopg.Connection[Any]:
        options = self._psycopg.conninfo.conninfo_to_dict(self._url)
        options.setdefault("connect_timeout", self._connect_timeout)
        options.setdefault("application_name", "orkestra")
        conn: psycopg.Connection[Any] = self._psycopg.connect(autocommit=True, **options)
        return conn

    def _live(self, conn: psycopg.Connection[Any] | None) -> psycopg.Connection[Any]:
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            conn = self._connect()
        return conn

    def spend_store(self) -> PostgresSpendStore:
        return PostgresSpendStore(self._url, connect_timeout=self._connect_timeout)

    def session_store(self, *, ttl: float = DEFAULT_SESSION_TTL) -> PostgresSessionStore:
        return PostgresSessionStore(self._url, ttl=ttl, connect_timeout=self._connect_timeout)

    def _write(self, batch: list[UsageRecord]) -> None:
        conn = self._writer_conn = self._live(self._writer_conn)
        rows = [self._row(record) for record in batch]
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(self.dialect.insert(), rows)

    def _is_transient(self, exc: Exception) -> bool:
        # Lost connections, server restarts, lock and serialization failures; not a bad value.
        transient: tuple[type[Exception], ...] = (
            self._psycopg.OperationalError,
            self._psycopg.InterfaceError,
        )
        return isinstance(exc, transient)

    def _rows(self, sql: str, params: list[Any], *, stream: bool = False) -> Iterator[Any]:
        with self._read_lock:
            conn = self._reader = self._live(self._reader)
            if not stream:
                yield from conn.execute(sql, params).fetchall()
                return
            # A server-side cursor, so a large export is not held in memory all at once.
            with conn.transaction(), conn.cursor(name=f"orkestra_{uuid.uuid4().hex}") as cursor:
                cursor.itersize = 1000
                cursor.execute(sql, params)
                yield from cursor

    @staticmethod
    def dialect_ts(ts: datetime) -> Any:
        return ts.astimezone(timezone.utc)
