"""The :class:`UsageLog` interface, and the part of it the SQLite and PostgreSQL logs share."""

from __future__ import annotations

import atexit
import contextlib
import copy
import csv
import json
import logging
import math
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Protocol, runtime_checkable

from orkestra._session import DEFAULT_SESSION_TTL
from orkestra.errors import ConfigurationError
from orkestra.usage._journal import INTERRUPTED, Hold, Journal, replay
from orkestra.usage._journal import SUPPORTED as JOURNAL_SUPPORTED
from orkestra.usage._writer import BatchWriter, UsageLogClosedError
from orkestra.usage.ledger import SQLSpendStore
from orkestra.usage.query import Dialect, Since, parse_since, totals_from_rows
from orkestra.usage.records import (
    COLUMNS,
    KnobCount,
    SeriesPoint,
    Totals,
    UsageRecord,
    dumps_json,
    key_id_for,
    scrub_secrets,
)
from orkestra.usage.sessions import SQLSessionStore

__all__ = ["SQLUsageLog", "UsageLog"]

logger = logging.getLogger("orkestra.usage")

# Reads first wait (at most this long) for this process's queued records, so a total or a spend
# includes the calls just made.
_READ_FLUSH_TIMEOUT = 10.0


@runtime_checkable
class UsageLog(Protocol):
    """Where every call is recorded. ``record()`` never waits for the database."""

    store_prompts: bool

    def record(self, record: UsageRecord) -> None:
        """Journal ``record`` (when the log has a journal) and queue it; a background thread
        writes it to the database."""

    def hold(
        self,
        call_id: str,
        amount: float,
        *,
        provider: str,
        model: str,
        tier: str | None = None,
        key_id: str | None = None,
        source: str = "library",
    ) -> None:
        """Journal that an attempt of call ``call_id`` is about to be sent and can bill at most
        ``amount``: if the process dies before :meth:`record` gets the call's record (same id),
        the call is counted at the sum of its holds (status ``Interrupted``)."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is durable; False if ``timeout`` ran out."""

    def close(self) -> None:
        """Flush and release the database (also done at interpreter exit)."""

    def query(self, since: Since = None, until: Since = None) -> list[UsageRecord]:
        """The records with ``since <= ts < until``, oldest first."""

    def totals(self, since: Since = None, by: str | None = None) -> list[Totals]:
        """Totals since ``since``, one per model/provider/tier/key/day (``by``), or overall."""

    def spend(self, key_id: str | None = None, since: Since = None) -> float:
        """Dollars spent since ``since``, by one key or by all (budgets shared by replicas)."""

    def series(self, since: Since = None, *, bucket: int = 3600) -> list[SeriesPoint]:
        """Calls, cost and base cost per ``bucket`` seconds since ``since``, oldest first;
        empty buckets are left out."""

    def knob_counts(self, since: Since = None) -> list[KnobCount]:
        """Calls and premium-tier calls per knob setting since ``since``, most calls first."""

    def oldest(self, since: Since = None) -> datetime | None:
        """When the first call since ``since`` was made (None: there is none)."""

    def latest(
        self, limit: int = 100, *, before: tuple[datetime, str] | None = None
    ) -> list[UsageRecord]:
        """The ``limit`` newest records, newest first; ``before``: only those before this
        ``(ts, id)`` (the next page)."""

    def export_csv(self, file: IO[str] | str | os.PathLike[str], since: Since = None) -> int:
        """Write the records (header first) as CSV; returns the number of records."""


def interrupted_record(call_id: str, holds: list[dict[str, Any]]) -> UsageRecord:
    """The record of a call whose process died while it was in flight: the sum of its
    attempts' holds (the most they could bill) as its cost, so that spend is not under-read."""
    last = holds[-1]
    cost = sum(float(h.get("hold") or 0.0) for h in holds)
    return UsageRecord(
        id=call_id,
        ts=datetime.fromisoformat(holds[0]["ts"]),
        provider=str(last.get("provider") or "unknown"),
        model=str(last.get("model") or "unknown"),
        tier=last.get("tier"),
        key_id=last.get("key_id"),
        source=str(last.get("source") or "library"),
        cost=cost,
        base_cost=cost,
        attempts=len(holds),
        status=INTERRUPTED,
        error=(
            "the process ended while this call was in flight; its cost is the most its "
            f"{len(holds)} attempt(s) could bill"
        ),
    )


def _aware(ts: datetime) -> datetime:
    """``ts``, a naive one taken as UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


# Connections never to be used nor closed again: those a child inherited over a fork (closing a
# libpq connection would end the parent's session, closing SQLite's could checkpoint under it),
# and a writer's still stuck in a database call when its log was closed.
_abandoned: list[object] = []


class SQLUsageLog(ABC):
    """A usage log on a SQL database, written by a :class:`BatchWriter` thread."""

    dialect: ClassVar[Dialect]
    # The connection reads use (guarded by ``_read_lock``) and the writer thread's own.
    _reader: Any = None
    _writer_conn: Any = None

    def __init__(
        self,
        *,
        store_prompts: bool,
        writer_options: dict[str, Any] | None,
        journal: Path | None = None,
        fsync: bool = False,
    ) -> None:
        self.store_prompts = store_prompts
        self._read_lock = threading.Lock()
        self._journal: Journal | None = None
        # Rows record() encoded, by the identity of the queued record (ids may repeat: the
        # same call recorded twice), for the writer to store as they are.
        self._encoded: dict[int, tuple[Any, ...]] = {}
        self.replayed = 0
        """Journal segments of dead processes this log wrote to the database when it opened."""
        if journal is not None and not JOURNAL_SUPPORTED:
            logger.warning("usage log: no write-ahead journal on this platform (no flock)")
            journal = None
        if journal is not None:
            self.replayed = replay(journal, self._replay)
            self._journal = Journal(journal, fsync=fsync)
        self._writer = BatchWriter(
            self._write,
            name=f"orkestra-usage-writer-{type(self).__name__}",
            is_transient=self._is_transient,
            on_fork=self._after_fork,
            on_written=self._written,
            on_lost=self._lost,
            close_at_exit=False,  # this log's close() does, connections included
            **(writer_options or {}),
        )
        atexit.register(self.close)

    # -- writing -------------------------------------------------------------------------

    @property
    def journal(self) -> Path | None:
        """The directory of this log's write-ahead journal (None: no journal)."""
        return None if self._journal is None else self._journal.directory

    def record(self, record: UsageRecord) -> None:
        journal = self._journal
        if journal is not None:
            if self._writer.closed:
                raise UsageLogClosedError("the usage log is closed")
            if id(record) in self._encoded:  # this very object is queued already
                record = copy.copy(record)
            row = self._encode(record)
            self._encoded[id(record)] = row  # the writer stores it as it is: encoded once
            journal.record(id(record), record.id, [row[0], record.ts.isoformat(), *row[2:]])
        if not self._writer.put(record) and journal is not None:
            self._encoded.pop(id(record), None)
            journal.lost([id(record)])

    def _row(self, record: UsageRecord) -> tuple[Any, ...]:
        """``record`` as the database stores it (encoded by :meth:`record` if journaled)."""
        row = self._encoded.pop(id(record), None)
        return self._encode(record) if row is None else row

    def hold(
        self,
        call_id: str,
        amount: float,
        *,
        provider: str,
        model: str,
        tier: str | None = None,
        key_id: str | None = None,
        source: str = "library",
    ) -> None:
        if self._journal is None:
            return
        if self._writer.closed:
            raise UsageLogClosedError("the usage log is closed")
        if key_id is not None and scrub_secrets(key_id) != key_id:
            key_id = key_id_for(key_id)  # a key passed where its id belongs
        amount = float(amount) if math.isfinite(amount) and amount > 0 else 0.0
        self._journal.hold(Hold(call_id, amount, provider, model, tier, key_id, source))

    def _written(self, records: list[UsageRecord]) -> None:
        if self._journal is not None:
            self._journal.written(id(r) for r in records)

    def _lost(self, records: list[UsageRecord]) -> None:
        if self._journal is not None:
            self._journal.lost(id(r) for r in records)

    def _replay(self, rows: list[list[Any]], interrupted: dict[str, list[dict[str, Any]]]) -> None:
        records = [self._decode(tuple(row)) for row in rows]
        records += [interrupted_record(call_id, holds) for call_id, holds in interrupted.items()]
        for start in range(0, len(records), 1000):
            self._write(records[start : start + 1000])

    def flush(self, timeout: float | None = None) -> bool:
        return self._writer.flush(timeout)

    def close(self) -> None:
        atexit.unregister(self.close)
        if not self._writer.close():
            # The writer is stuck in a database call: leave its connection to it.
            _abandoned.append(self._writer_conn)
            self._writer_conn = None
        if self._journal is not None:
            self._journal.close()
        self._close_connections()

    @property
    def closed(self) -> bool:
        return self._writer.closed

    @property
    def dropped(self) -> int:
        """Records not written, each logged as an error: refused by the database, dropped from a
        queue that stayed full, or given up on at close."""
        return self._writer.dropped

    def __enter__(self) -> SQLUsageLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _encode(self, record: UsageRecord) -> tuple[Any, ...]:
        values = {column: getattr(record, column) for column in COLUMNS}
        values["ts"] = self.dialect_ts(record.ts)
        values["scores"] = dumps_json(dict(record.scores))
        values["attempts_detail"] = dumps_json(record.attempts_detail)
        if not self.store_prompts:
            values["prompt"] = None
        return tuple(values[column] for column in COLUMNS)

    @abstractmethod
    def spend_store(self) -> SQLSpendStore:
        """A ledger for budgets shared through this database (its own connection; close it):
        the :class:`~orkestra.resilience.budget.SpendStore` of a
        :class:`~orkestra.resilience.budget.SharedBudget`."""

    @abstractmethod
    def session_store(self, *, ttl: float = DEFAULT_SESSION_TTL) -> SQLSessionStore:
        """Sticky sessions shared through this database (its own connections; close it): pass
        it as ``Provider(..., sessions=...)`` and every process on this database that does
        keeps a session on one model (``ttl``: seconds a session lives after its last turn)."""

    @abstractmethod
    def _write(self, batch: list[UsageRecord]) -> None:
        """Insert ``batch`` in one transaction (called on the writer thread)."""

    @abstractmethod
    def _is_transient(self, exc: Exception) -> bool:
        """Whether a failed write may succeed if retried (a lock, a lost connection)."""

    def _close_connections(self) -> None:
        with self._read_lock:
            for conn in (self._reader, self._writer_conn):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._reader = self._writer_conn = None

    def _forget_connections(self) -> list[object]:
        """Drop the connections without closing them; returns them."""
        kept = [conn for conn in (self._reader, self._writer_conn) if conn is not None]
        self._reader = self._writer_conn = None
        return kept

    def _after_fork(self) -> None:
        self._read_lock = threading.Lock()
        self._encoded = {}  # the parent's queued rows: the parent writes them
        _abandoned.extend(self._forget_connections())

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def dialect_ts(ts: datetime) -> Any:
        """``ts`` as the database stores it."""
        return ts

    @abstractmethod
    def _rows(self, sql: str, params: list[Any], *, stream: bool = False) -> Iterator[Any]:
        """The rows of a query (``stream``: fetched in chunks, for exports)."""

    def _before_read(self) -> None:
        if self._writer.closed:
            raise UsageLogClosedError("the usage log is closed")
        self._writer.flush(_READ_FLUSH_TIMEOUT)

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        self._before_read()
        return [tuple(row) for row in self._rows(sql, params)]

    def _decode(self, row: tuple[Any, ...]) -> UsageRecord:
        values = dict(zip(COLUMNS, row, strict=True))
        del values["savings"]  # derived again from cost and base_cost
        if isinstance(values["ts"], str):
            values["ts"] = datetime.fromisoformat(values["ts"])
        for column in ("scores", "attempts_detail"):
            if isinstance(values[column], str):
                values[column] = json.loads(values[column])
        return UsageRecord(**values)

    def _params(self, params: list[Any]) -> list[Any]:
        return [self.dialect_ts(_aware(p)) if isinstance(p, datetime) else p for p in params]

    def query(self, since: Since = None, until: Since = None) -> list[UsageRecord]:
        sql, params = self.dialect.select(parse_since(since), parse_since(until))
        return [self._decode(row) for row in self._fetch(sql, self._params(params))]

    def totals(self, since: Since = None, by: str | None = None) -> list[Totals]:
        sql, params = self.dialect.totals(parse_since(since), by)
        return totals_from_rows(self._fetch(sql, self._params(params)), by)

    def spend(self, key_id: str | None = None, since: Since = None) -> float:
        sql, params = self.dialect.spend(key_id, parse_since(since))
        rows = self._fetch(sql, self._params(params))
        return float(rows[0][0])

    def ping(self) -> None:
        """Check that the database answers now (a readiness probe); raises what it says if
        not. Does not wait for queued records."""
        if self._writer.closed:
            raise UsageLogClosedError("the usage log is closed")
        for _ in self._rows("SELECT 1", []):
            pass

    def series(self, since: Since = None, *, bucket: int = 3600) -> list[SeriesPoint]:
        if bucket < 1:
            raise ConfigurationError(f"a series bucket is at least 1 second, not {bucket}")
        sql, params = self.dialect.series(parse_since(since), bucket)
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        return [
            SeriesPoint(epoch + timedelta(seconds=int(start)), int(n), float(cost), float(base))
            for start, n, cost, base in self._fetch(sql, self._params(params))
        ]

    def knob_counts(self, since: Since = None) -> list[KnobCount]:
        sql, params = self.dialect.knob_counts(parse_since(since))
        counts = [
            KnobCount(None if knob is None else float(knob), int(n), int(premium))
            for knob, n, premium in self._fetch(sql, self._params(params))
        ]
        return sorted(counts, key=lambda c: (-c.calls, c.knob is None, c.knob or 0.0))

    def oldest(self, since: Since = None) -> datetime | None:
        sql, params = self.dialect.oldest(parse_since(since))
        ((ts,),) = self._fetch(sql, self._params(params))
        if ts is None:
            return None
        return datetime.fromisoformat(ts) if isinstance(ts, str) else ts

    def latest(
        self, limit: int = 100, *, before: tuple[datetime, str] | None = None
    ) -> list[UsageRecord]:
        sql, params = self.dialect.latest(max(limit, 0), before)
        return [self._decode(row) for row in self._fetch(sql, self._params(params))]

    def export_csv(self, file: IO[str] | str | os.PathLike[str], since: Since = None) -> int:
        if isinstance(file, (str, os.PathLike)):
            with open(file, "w", newline="", encoding="utf-8") as f:
                return self.export_csv(f, since)
        sql, params = self.dialect.select(parse_since(since), None)
        self._before_read()
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        count = 0
        for row in self._rows(sql, self._params(params), stream=True):
            values = self._decode(tuple(row)).as_dict()
            values["scores"] = json.dumps(values["scores"])
            if values["attempts_detail"] is not None:
                values["attempts_detail"] = json.dumps(values["attempts_detail"])
            writer.writerow([values[column] for column in COLUMNS])
            count += 1
        return count
