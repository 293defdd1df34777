"""Budgets shared by several processes: each account's spend and holds, in the usage database.

A :class:`~orkestra.resilience.budget.SharedBudget` reserves and settles here, one short
transaction each (:class:`SQLSpendStore` is its :class:`~orkestra.resilience.budget.SpendStore`):

- ``budget_holds``: one row per attempt in flight (its worst case), until it is settled. A
  hold whose process died is never settled: once it *expires* it counts as spent, at its worst
  case, in the hour it expired (and is folded into ``budget_spend`` at the next purge), so a
  crash makes a budget count too much, never too little. Settling a hold that was already
  folded adds nothing: its worst case, which bounds what the attempt could bill, is counted;
- ``budget_spend``: what each account spent, per hour (so a window such as ``"30d"`` sums at
  most 720 rows, however many calls it holds; an hour counts whole while any of it is in the
  window, so a window's start is rounded down to the hour: a little more spend counts, never
  less);
- ``budget_accounts``: one row per account, locked by a reservation (PostgreSQL:
  ``SELECT … FOR UPDATE``; SQLite takes its database-wide write lock, ``BEGIN IMMEDIATE``), so
  that two reservations of one account never both pass its cap.

An account is a key id of the usage log (:func:`~orkestra.usage.key_id_for`): the first time
any process sees it, its spend is seeded from the calls the log already holds for that key, so
a budget keeps what was spent before it moved here. From then on the ledger is the budget's
account of spend: each settlement adds what the attempt billed, whether or not its usage record
has been written yet.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Any

from orkestra.usage._connections import PostgresPool, SQLiteConnection

__all__ = ["PostgresSpendStore", "SQLSpendStore", "SQLiteSpendStore"]

_SECONDS_PER_HOUR = 3600
# Expired holds are folded into the spend at most this often per account (until then they are
# summed as spent where they are).
_PURGE_EVERY = 60.0


def _hour(moment: float) -> int:
    return math.floor(moment / _SECONDS_PER_HOUR)


class SQLSpendStore(ABC):
    """The ledger's SQL, for both backends; a subclass brings the connection and the lock."""

    param: str
    seed_hour: str  # the SQL for the hour (since the epoch) of ``calls.ts``
    expiry_hour: str  # the SQL for the hour (since the epoch) of ``budget_holds.expires``

    def __init__(self) -> None:
        self._purged: dict[str, float] = {}

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.param)

    @abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A cursor in a write transaction (committed on success, rolled back on error)."""

    @abstractmethod
    def _lock(self, cur: Any, account: str) -> bool:
        """Lock ``account``'s row for this transaction; False if the account has none yet."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections."""

    # -- the SpendStore protocol ---------------------------------------------------------

    def hold(
        self,
        account: str,
        amount: float,
        cap: float,
        since: datetime | None,
        hold_seconds: float,
    ) -> tuple[str | None, float, float]:
        now = time.time()
        with self._transaction() as cur:
            if not self._lock(cur, account):
                self._open(cur, account, now)
            if now - self._purged.get(account, 0.0) >= _PURGE_EVERY:
                self._fold_expired(cur, account, now)
                self._purged[account] = now
            spent, held = self._sums(cur, account, since, now)
            if spent + held + amount > cap:
                return None, spent, held
            hold_id = uuid.uuid4().hex
            cur.execute(
                self._q(
                    "INSERT INTO budget_holds (id, account, amount, expires) VALUES (?, ?, ?, ?)"
                ),
                (hold_id, account, amount, now + hold_seconds),
            )
            return hold_id, spent, held

    def settle(self, account: str, hold_id: str | None, cost: float) -> None:
        with self._transaction() as cur:
            if hold_id is not None:
                cur.execute(self._q("DELETE FROM budget_holds WHERE id = ?"), (hold_id,))
                if cur.rowcount != 1:
                    return  # expired and folded into the spend at its worst case already
            if cost > 0:
                cur.execute(
                    self._q(
                        "INSERT INTO budget_spend (account, hour, cost) VALUES (?, ?, ?) "
                        "ON CONFLICT (account, hour) DO UPDATE "
                        "SET cost = budget_spend.cost + excluded.cost"
                    ),
                    (account, _hour(time.time()), cost),
                )

    def totals(self, account: str, since: datetime | None) -> tuple[float, float]:
        now = time.time()
        with self._transaction() as cur:
            if not self._lock(cur, account):
                self._open(cur, account, now)
            return self._sums(cur, account, since, now)

    # -- inside a transaction ------------------------------------------------------------

    def _sums(
        self, cur: Any, account: str, since: datetime | None, now: float
    ) -> tuple[float, float]:
        first = _FIRST_HOUR if since is None else _hour(since.timestamp())
        cur.execute(
            self._q(
                "SELECT (SELECT COALESCE(SUM(cost), 0) FROM budget_spend "
                "WHERE account = ? AND hour >= ?), "
                "(SELECT COALESCE(SUM(amount), 0) FROM budget_holds "
                "WHERE account = ? AND expires < ? AND expires >= ?), "
                "(SELECT COALESCE(SUM(amount), 0) FROM budget_holds "
                "WHERE account = ? AND expires >= ?)"
            ),
            (account, first, account, now, first * float(_SECONDS_PER_HOUR), account, now),
        )
        spent, expired, held = cur.fetchone()
        return float(spent) + float(expired), float(held)

    def _fold_expired(self, cur: Any, account: str, now: float) -> None:
        """Move ``account``'s expired holds into its spend, each in the hour it expired (in a
        write transaction that no settlement can interleave with: SQLite's)."""
        cur.execute(
            self._q(
                f"SELECT {self.expiry_hour}, SUM(amount) FROM budget_holds "  # noqa: S608 - fixed SQL
                "WHERE account = ? AND expires < ? GROUP BY 1"
            ),
            (account, now),
        )
        for hour, amount in cur.fetchall():
            cur.execute(
                self._q(
                    "INSERT INTO budget_spend (account, hour, cost) VALUES (?, ?, ?) "
                    "ON CONFLICT (account, hour) DO UPDATE "
                    "SET cost = budget_spend.cost + excluded.cost"
                ),
                (account, int(hour), float(amount)),
            )
        cur.execute(
            self._q("DELETE FROM budget_holds WHERE account = ? AND expires < ?"), (account, now)
        )

    def _open(self, cur: Any, account: str, now: float) -> None:
        """The account's first use anywhere: its row, and its spend so far from ``calls``."""
        cur.execute(
            self._q(
                "INSERT INTO budget_accounts (account, created) VALUES (?, ?) "
                "ON CONFLICT (account) DO NOTHING"
            ),
            (account, now),
        )
        if cur.rowcount != 1:  # another process opened it first: lock its row
            self._lock(cur, account)
            return
        cur.execute(
            self._q(
                f"INSERT INTO budget_spend (account, hour, cost) "  # noqa: S608 - fixed SQL
                f"SELECT ?, {self.seed_hour}, SUM(cost) FROM calls "
                "WHERE key_id = ? AND cost > 0 GROUP BY 2"
            ),
            (account, account),
        )


class SQLiteSpendStore(SQLSpendStore):
    """The ledger in the usage log's SQLite file (processes on one machine)."""

    param = "?"
    seed_hour = "CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER) / 3600"
    expiry_hour = "CAST(expires / 3600 AS INTEGER)"  # positive: truncation is the floor

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        super().__init__()
        self.path = Path(path)
        self._db = SQLiteConnection(self.path, busy_timeout=busy_timeout)

    def __repr__(self) -> str:
        return f"SQLiteSpendStore({str(self.path)!r})"

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self._db.transaction()  # the write lock: reservations take turns

    def _lock(self, cur: Any, account: str) -> bool:
        cur.execute("SELECT 1 FROM budget_accounts WHERE account = ?", (account,))
        return cur.fetchone() is not None

    def close(self) -> None:
        self._db.close()


_FIRST_HOUR = -(2**62)
_PG_LOCK = "SELECT 1 FROM budget_accounts WHERE account = %s FOR UPDATE"
_PG_HOLD = """
WITH spend AS (
    SELECT (SELECT COALESCE(SUM(cost), 0) FROM budget_spend WHERE account = %s AND hour >= %s)
         + (SELECT COALESCE(SUM(amount), 0) FROM budget_holds
            WHERE account = %s AND expires < %s AND expires >= %s) AS total
), holds AS (
    SELECT COALESCE(SUM(amount), 0) AS total FROM budget_holds WHERE account = %s AND expires >= %s
), added AS (
    INSERT INTO budget_holds (id, account, amount, expires)
    SELECT %s, %s, %s, %s FROM spend, holds WHERE spend.total + holds.total + %s <= %s
    RETURNING 1
)
SELECT spend.total, holds.total, (SELECT count(*) FROM added) FROM spend, holds
"""
# Adds the cost only if the hold was still there (not folded into the spend already).
_PG_SETTLE = """
WITH settled AS (DELETE FROM budget_holds WHERE id = %s RETURNING 1)
INSERT INTO budget_spend (account, hour, cost)
SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM settled)
ON CONFLICT (account, hour) DO UPDATE SET cost = budget_spend.cost + excluded.cost
"""

# One statement: a hold settled meanwhile is either deleted here (and folded) or by its
# settlement (and billed), never both.
_PG_FOLD = """
WITH gone AS (
    DELETE FROM budget_holds WHERE account = %s AND expires < %s RETURNING expires, amount
)
INSERT INTO budget_spend (account, hour, cost)
SELECT %s, FLOOR(expires / 3600)::BIGINT, SUM(amount) FROM gone GROUP BY 2
ON CONFLICT (account, hour) DO UPDATE SET cost = budget_spend.cost + excluded.cost
"""


class PostgresSpendStore(SQLSpendStore):
    """The ledger in the usage log's PostgreSQL database (replicas on several machines).

    A few connections of its own (``pool_size``), so that the reservations of different keys
    do not wait for each other; those of one key take turns on its row's lock.
    """

    param = "%s"
    seed_hour = "FLOOR(EXTRACT(EPOCH FROM ts) / 3600)::BIGINT"
    expiry_hour = "FLOOR(expires / 3600)::BIGINT"

    def __init__(
        self, url: str, *, pool_size: int = 4, connect_timeout: int = 10, timeout: float = 10.0
    ) -> None:
        super().__init__()
        # A statement (a lock wait included) that takes longer fails: the call is refused with
        # BudgetUnavailableError rather than left waiting.
        self._pool = PostgresPool(
            url,
            application_name="orkestra-budgets",
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            timeout=timeout,
        )
        self._open_here: set[str] = set()

    def __repr__(self) -> str:
        return f"PostgresSpendStore(pool of {self._pool.idle} idle)"

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self._pool.transaction()

    def _lock(self, cur: Any, account: str) -> bool:
        cur.execute(_PG_LOCK, (account,))
        return cur.fetchone() is not None

    # One round trip each once an account is open here: the lock and the conditional insert are
    # pipelined in one transaction (the insert's statement starts, with a fresh snapshot, only
    # once the lock is held, so it sees every hold committed before), and settling is one
    # statement.

    def hold(
        self,
        account: str,
        amount: float,
        cap: float,
        since: datetime | None,
        hold_seconds: float,
    ) -> tuple[str | None, float, float]:
        now = time.time()
        if account not in self._open_here or now - self._purged.get(account, 0.0) >= _PURGE_EVERY:
            result = super().hold(account, amount, cap, since, hold_seconds)
            self._open_here.add(account)
            return result
        hold_id = uuid.uuid4().hex
        first = _FIRST_HOUR if since is None else _hour(since.timestamp())
        since_seconds = first * float(_SECONDS_PER_HOUR)
        params = (
            *(account, first, account, now, since_seconds),  # spend, expired holds included
            *(account, now),  # live holds
            *(hold_id, account, amount, now + hold_seconds),
        )
        with self._pool.connection() as conn:
            with conn.pipeline(), conn.transaction():
                lock = conn.execute(_PG_LOCK, (account,))
                held = conn.execute(_PG_HOLD, (*params, amount, cap))
            locked, row = lock.fetchone(), held.fetchone()
        if locked is None or row is None:  # pragma: no cover - accounts are never deleted
            raise RuntimeError(f"budget account {account!r} vanished")
        spent, before, inserted = row
        return (hold_id if inserted else None), float(spent), float(before)

    def _fold_expired(self, cur: Any, account: str, now: float) -> None:
        cur.execute(_PG_FOLD, (account, now, account))

    def settle(self, account: str, hold_id: str | None, cost: float) -> None:
        if hold_id is None or cost <= 0:
            super().settle(account, hold_id, cost)
            return
        with self._pool.connection() as conn:
            conn.execute(_PG_SETTLE, (hold_id, account, _hour(time.time()), cost))

    def close(self) -> None:
        self._pool.close()
