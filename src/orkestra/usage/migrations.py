"""The usage log's schema, as an ordered list of named migrations (the shape of simonw/llm's).

Each migration runs once per database, in order, and is recorded in ``_migrations`` (name,
applied_at). Applying is idempotent and safe when several processes open the same database at
once: SQLite takes the write lock first (``BEGIN IMMEDIATE``), PostgreSQL a transaction-scoped
advisory lock (``pg_advisory_xact_lock``); either way the second process waits, then finds
nothing left to do. DDL is transactional in both, so a failed migration leaves no trace.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "Migration", "migrate_postgres", "migrate_sqlite"]


@dataclass(frozen=True)
class Migration:
    """One schema change, written once per dialect."""

    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


def _calls_table(*, ts: str, real: str, json: str) -> str:
    return f"""
CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    ts {ts} NOT NULL,
    source TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    tier TEXT,
    strategy TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost {real} NOT NULL DEFAULT 0,
    base_model TEXT,
    base_cost {real} NOT NULL DEFAULT 0,
    savings {real} NOT NULL DEFAULT 0,
    latency_ms {real} NOT NULL DEFAULT 0,
    routing_ms {real} NOT NULL DEFAULT 0,
    scores {json} NOT NULL DEFAULT '{{}}',
    knob {real},
    attempts INTEGER NOT NULL DEFAULT 1,
    attempts_detail {json},
    status TEXT NOT NULL DEFAULT 'ok',
    error TEXT,
    key_id TEXT,
    prompt TEXT
)"""


_INDEXES = (
    "CREATE INDEX calls_ts ON calls (ts)",
    "CREATE INDEX calls_key_id_ts ON calls (key_id, ts)",
    "CREATE INDEX calls_model ON calls (model)",
)


def _ledger_tables(*, real: str, hour: str) -> tuple[str, ...]:
    """Shared budgets (:mod:`orkestra.usage.ledger`): accounts, hourly spend, holds in flight.
    Times are seconds (``created``, ``expires``) or hours (``hour``) since the epoch."""
    return (
        f"CREATE TABLE budget_accounts (account TEXT PRIMARY KEY, created {real} NOT NULL)",
        f"""CREATE TABLE budget_spend (
    account TEXT NOT NULL,
    hour {hour} NOT NULL,
    cost {real} NOT NULL DEFAULT 0,
    PRIMARY KEY (account, hour)
)""",
        f"""CREATE TABLE budget_holds (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    amount {real} NOT NULL,
    expires {real} NOT NULL
)""",
        "CREATE INDEX budget_holds_account ON budget_holds (account, expires)",
    )


# The columns the aggregates read (totals, series, knob counts, spend), beside ts.
_AGGREGATED = (
    "attempts",
    "provider",
    "model",
    "tier",
    "status",
    "key_id",
    "knob",
    "input_tokens",
    "output_tokens",
    "cost",
    "base_cost",
)


def _session_pins(*, real: str) -> tuple[str, ...]:
    """Sticky sessions shared by processes (:mod:`orkestra.usage.sessions`): one pin per scope
    and session (the session id's sha256); ``rank`` is the tier's place in ``TIERS``,
    ``expires`` seconds since the epoch (indexed: expired pins are deleted by it)."""
    return (
        f"""CREATE TABLE session_pins (
    scope TEXT NOT NULL,
    session TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    tier TEXT NOT NULL,
    rank INTEGER NOT NULL,
    expires {real} NOT NULL,
    PRIMARY KEY (scope, session)
)""",
        "CREATE INDEX session_pins_expires ON session_pins (expires)",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "m001_create_calls",
        # SQLite keeps ts as fixed-width ISO 8601 text in UTC, so text order is time order.
        sqlite=(_calls_table(ts="TEXT", real="REAL", json="TEXT"),),
        postgres=(_calls_table(ts="TIMESTAMPTZ", real="DOUBLE PRECISION", json="JSONB"),),
    ),
    Migration("m002_index_calls", sqlite=_INDEXES, postgres=_INDEXES),
    Migration(
        "m003_budget_ledger",
        sqlite=_ledger_tables(real="REAL", hour="INTEGER"),
        postgres=_ledger_tables(real="DOUBLE PRECISION", hour="BIGINT"),
    ),
    # The dashboard and `orkestra usage` aggregate a time window: one index on (ts, id) that
    # also holds every column those aggregates read, so they scan it, not the wide rows
    # (prompts, scores, attempt details), and page newest-first without sorting. It replaces
    # calls_ts; calls_model served no query, and made SQLite group by model through the table.
    Migration(
        "m004_index_calls_for_aggregates",
        sqlite=(
            f"CREATE INDEX calls_ts_id ON calls (ts, id, {', '.join(_AGGREGATED)})",
            "DROP INDEX calls_ts",
            "DROP INDEX calls_model",
        ),
        postgres=(
            f"CREATE INDEX calls_ts_id ON calls (ts, id) INCLUDE ({', '.join(_AGGREGATED)})",
            "DROP INDEX calls_ts",
            "DROP INDEX calls_model",
        ),
    ),
    Migration(
        "m005_session_pins",
        sqlite=_session_pins(real="REAL"),
        postgres=_session_pins(real="DOUBLE PRECISION"),
    ),
)

_MIGRATIONS_TABLE = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at {})"
# Any fixed 64-bit number, the same in every orkestra process: ASCII "orkusage".
_PG_LOCK_ID = 0x6F726B7573616765


def _applied_at() -> str:
    return datetime.now(timezone.utc).isoformat()


def _sqlite_applied(conn: sqlite3.Connection) -> set[str]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if not exists:
        return set()
    return {row[0] for row in conn.execute("SELECT name FROM _migrations")}


def migrate_sqlite(conn: sqlite3.Connection) -> list[str]:
    """Apply the pending migrations; returns their names. ``conn`` must be in autocommit mode."""
    if {m.name for m in MIGRATIONS} <= _sqlite_applied(conn):
        return []  # the common case, without taking the write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_MIGRATIONS_TABLE.format("TEXT NOT NULL"))
        applied = _sqlite_applied(conn)
        done = []
        for migration in MIGRATIONS:
            if migration.name in applied:
                continue
            for statement in migration.sqlite:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (migration.name, _applied_at()),
            )
            done.append(migration.name)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done


def migrate_postgres(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the pending migrations; returns their names."""
    with conn.transaction():
        # Taken before CREATE TABLE IF NOT EXISTS, which is not safe against a concurrent twin.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_ID,))
        conn.execute(_MIGRATIONS_TABLE.format("TIMESTAMPTZ NOT NULL DEFAULT now()"))
        applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        done = []
        for migration in MIGRATIONS:
            if migration.name in applied:
                continue
            for statement in migration.postgres:
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations (name) VALUES (%s)", (migration.name,))
            done.append(migration.name)
    return done
