"""Reading the log: time windows (``"7d"``), and the SQL both backends share.

The SQL is plain enough to run unchanged on SQLite and PostgreSQL; a :class:`Dialect` supplies
the two things that differ (the parameter marker and how to take the UTC day of ``ts``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any, TypeAlias

from orkestra.errors import ConfigurationError
from orkestra.usage.records import COLUMNS, GROUPINGS, Totals

__all__ = ["Since", "parse_since", "write_totals_csv"]

Since: TypeAlias = datetime | timedelta | str | None
"""A time: a datetime (naive means UTC), a timedelta or ``"7d"`` before now, an ISO date."""

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)", re.IGNORECASE)


def parse_since(value: Since, *, now: datetime | None = None) -> datetime | None:
    """The UTC datetime ``value`` stands for.

    >>> parse_since("7d", now=datetime(2026, 11, 26, tzinfo=timezone.utc))
    datetime.datetime(2026, 11, 19, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_since("2026-11-01")
    datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    now = now or datetime.now(timezone.utc)
    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    text = value.strip()
    if match := _DURATION.fullmatch(text):
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
        try:
            return now - timedelta(seconds=seconds)
        except (OverflowError, ValueError):  # past year 1, or more seconds than a float holds
            raise ConfigurationError(
                f"cannot read {value!r} as a time: that is too long ago (before the year 1); "
                "leave the window out to mean every call"
            ) from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"cannot read {value!r} as a time: use a duration like 30m, 24h, 7d, 2w "
            "or an ISO date like 2026-11-01"
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


@dataclass(frozen=True)
class Dialect:
    """What differs between the backends' SQL."""

    param: str  # the DB-API parameter marker
    day: str  # an expression for the UTC day (YYYY-MM-DD) of ``ts``
    casts: dict[str, str]  # column -> suffix for its INSERT placeholder (e.g. "::jsonb")
    epoch: str  # an expression for ``ts`` in whole seconds since 1970 (an integer)
    knob: str  # an expression for ``knob`` rounded to 4 places (a float, or NULL)

    def insert(self) -> str:
        marks = ", ".join(self.param + self.casts.get(column, "") for column in COLUMNS)
        return (
            f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({marks}) "  # noqa: S608 - fixed names
            "ON CONFLICT (id) DO NOTHING"  # a retried batch that did commit is not doubled
        )

    def _where(
        self, since: datetime | None, until: datetime | None, key_id: str | None = None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if key_id is not None:
            clauses.append(f"key_id = {self.param}")
            params.append(key_id)
        if since is not None:
            clauses.append(f"ts >= {self.param}")
            params.append(since)
        if until is not None:
            clauses.append(f"ts < {self.param}")
            params.append(until)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def select(self, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
        where, params = self._where(since, until)
        sql = f"SELECT {', '.join(COLUMNS)} FROM calls{where} ORDER BY ts, id"  # noqa: S608
        return sql, params

    def totals(self, since: datetime | None, by: str | None) -> tuple[str, list[Any]]:
        if by is not None and by not in GROUPINGS:
            raise ConfigurationError(
                f"cannot group usage by {by!r}: use one of {', '.join(GROUPINGS)}"
            )
        group = {
            None: "'all'",
            "model": "model",
            "provider": "provider",
            "tier": "tier",
            "key": "key_id",
            "day": self.day,
        }[by]
        where, params = self._where(since, None)
        sql = (
            f"SELECT {group}, COUNT(*), "  # noqa: S608 - fixed names; values are parameters
            "COALESCE(SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
            "COALESCE(SUM(cost), 0), COALESCE(SUM(base_cost), 0), "
            "COALESCE(SUM(CASE WHEN tier = 'premium' THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN attempts = 0 THEN 1 ELSE 0 END), 0) "
            f"FROM calls{where}"
        )
        if by is not None:
            sql += " GROUP BY 1"
        return sql, params

    def series(self, since: datetime | None, bucket: int) -> tuple[str, list[Any]]:
        """Calls, cost and base cost per ``bucket`` seconds (the bucket's start, in seconds)."""
        where, params = self._where(since, None)
        start = f"({self.epoch} / {int(bucket)}) * {int(bucket)}"
        sql = (
            f"SELECT {start}, COUNT(*), COALESCE(SUM(cost), 0), "  # noqa: S608 - no values
            f"COALESCE(SUM(base_cost), 0) FROM calls{where} GROUP BY 1 ORDER BY 1"
        )
        return sql, params

    def knob_counts(self, since: datetime | None) -> tuple[str, list[Any]]:
        """Calls and premium-tier calls per knob setting (rounded to 4 places)."""
        where, params = self._where(since, None)
        sql = (
            f"SELECT {self.knob}, COUNT(*), "  # noqa: S608 - fixed names; values are parameters
            "COALESCE(SUM(CASE WHEN tier = 'premium' THEN 1 ELSE 0 END), 0) "
            f"FROM calls{where} GROUP BY 1"
        )
        return sql, params

    def oldest(self, since: datetime | None) -> tuple[str, list[Any]]:
        where, params = self._where(since, None)
        return f"SELECT MIN(ts) FROM calls{where}", params  # noqa: S608

    def latest(self, limit: int, before: tuple[datetime, str] | None) -> tuple[str, list[Any]]:
        """The ``limit`` newest records (before ``(ts, id)`` when given), newest first."""
        where, params = "", []
        if before is not None:
            where = f" WHERE (ts, id) < ({self.param}, {self.param})"
            params = list(before)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM calls{where} "  # noqa: S608 - fixed names
            f"ORDER BY ts DESC, id DESC LIMIT {int(limit)}"
        )
        return sql, params

    def spend(self, key_id: str | None, since: datetime | None) -> tuple[str, list[Any]]:
        where, params = self._where(since, None, key_id)
        return f"SELECT COALESCE(SUM(cost), 0) FROM calls{where}", params  # noqa: S608


def totals_from_rows(rows: list[tuple[Any, ...]], by: str | None) -> list[Totals]:
    """Rows of :meth:`Dialect.totals` as :class:`Totals`, in a backend-independent order."""
    totals = []
    for group, count, errors, tokens_in, tokens_out, cost, base_cost, premium, refused in rows:
        calls = int(count)
        totals.append(
            Totals(
                group=None if group is None else str(group),
                calls=calls,
                errors=int(errors),
                input_tokens=int(tokens_in),
                output_tokens=int(tokens_out),
                cost=float(cost),
                base_cost=float(base_cost),
                savings=float(base_cost) - float(cost),
                premium_share=int(premium) / calls if calls else 0.0,
                refused=int(refused),
            )
        )
    if by == "day":
        return sorted(totals, key=lambda t: t.group or "")
    return sorted(totals, key=lambda t: (-t.cost, t.group or ""))


TOTALS_COLUMNS: tuple[str, ...] = (
    "group",
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost",
    "base_cost",
    "savings",
    "savings_percent",
    "premium_share",
    "refused",
)


def write_totals_csv(totals: Iterable[Totals], file: IO[str]) -> None:
    """``totals`` as CSV, header first (what ``orkestra usage --csv`` prints)."""
    writer = csv.writer(file)
    writer.writerow(TOTALS_COLUMNS)
    for total in totals:
        values = total.as_dict()
        writer.writerow([values[column] for column in TOTALS_COLUMNS])
