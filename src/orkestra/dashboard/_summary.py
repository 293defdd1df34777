"""What the dashboard shows, read from a usage log: totals, distributions, series, call rows.

Totals and the model/tier/provider distributions are the log's own aggregates
(:meth:`UsageLog.totals`), so the page shows exactly what ``orkestra usage`` would. The series
and the premium share per knob need the records themselves; they are read for at most
:data:`FINE_SPAN` of history (a window longer than that is charted by day from the log's daily
totals), so a large log costs the page one aggregate query, not a scan of every call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from orkestra.usage import Totals, UsageLog, UsageRecord

__all__ = [
    "FINE_SPAN",
    "PREVIEW_CHARS",
    "Cursor",
    "bucketize",
    "bundled_knob_targets",
    "call_row",
    "event_text",
    "knob_shares",
    "pick_bucket",
    "recent_calls",
    "summarize",
]

PREVIEW_CHARS = 80
"""How much of a stored prompt the page shows."""

FINE_SPAN = timedelta(days=2)
"""The longest history the series and knob shares read record by record."""

MAX_POINTS = 120
_BUCKETS = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
_DAY = 86_400
# Widening windows for "the latest N calls" (the log reads oldest first, by time).
_RECENT_WINDOWS: tuple[timedelta | None, ...] = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
    None,
)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_DIGITS = 20  # microseconds to the year 9999 take 18 digits; more is not a time at all


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in the log: every record sorts by ``(ts, id)``.

    Its text form, ``<microseconds since the epoch>-<id>``, is the id of a server-sent event.
    """

    ts: datetime
    id: str

    @classmethod
    def of(cls, record: UsageRecord) -> Cursor:
        return cls(record.ts, record.id)

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """The cursor ``text`` names, or None when it is empty.

        Raises :class:`ValueError` when ``text`` is not a cursor, or names a time past the
        calendar (no cursor this dashboard hands out does).
        """
        text = (text or "").strip()
        if not text:
            return None
        micros, dash, record_id = text.partition("-")
        if not (dash and micros.isascii() and micros.isdigit() and len(micros) <= _MAX_DIGITS):
            raise ValueError(
                f"{text[:40]!r} is not an event id of this dashboard "
                "(<microseconds since 1970>-<call id>)"
            )
        try:
            ts = _EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            raise ValueError(f"{text[:40]!r} names a time after the year 9999") from None
        return cls(ts, record_id)

    def __str__(self) -> str:
        return f"{(self.ts - _EPOCH) // timedelta(microseconds=1)}-{self.id}"


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def call_row(record: UsageRecord) -> dict[str, Any]:
    """One call as the page's table shows it (a prompt preview only if the log kept the prompt)."""
    preview = None
    if record.prompt:
        flat = " ".join(record.prompt.split())
        preview = flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
    base = record.base_cost
    return {
        "id": record.id,
        "cursor": str(Cursor.of(record)),
        "t": _ms(record.ts),
        "source": record.source,
        "provider": record.provider,
        "model": record.model,
        "tier": record.tier,
        "strategy": record.strategy,
        "scores": {str(k): _finite(float(v)) for k, v in record.scores.items()},
        "knob": _finite(record.knob),
        "latency_ms": _finite(record.latency_ms),
        "routing_ms": _finite(record.routing_ms),
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost": _finite(record.cost),
        "base_model": record.base_model,
        "base_cost": _finite(base),
        "savings": _finite(record.savings),
        "savings_percent": _finite(100.0 * record.savings / base if base > 0 else 0.0),
        "attempts": record.attempts,
        "status": record.status,
        "error": record.error,
        "prompt_preview": preview,
    }


def event_text(record: UsageRecord) -> str:
    """``record`` as one server-sent event (``event: call``, its cursor as the event id)."""
    data = json.dumps(call_row(record), separators=(",", ":"), allow_nan=False)
    return f"id: {Cursor.of(record)}\nevent: call\ndata: {data}\n\n"


def pick_bucket(span: timedelta) -> int:
    """The bucket (seconds) that charts ``span`` in at most :data:`MAX_POINTS` points.

    >>> pick_bucket(timedelta(minutes=10)), pick_bucket(timedelta(days=1))
    (5, 900)
    """
    seconds = max(span.total_seconds(), 0.0)
    for bucket in _BUCKETS:
        if seconds / bucket <= MAX_POINTS:
            return bucket
    return _DAY


def bucketize(records: Iterable[UsageRecord], bucket: int) -> list[dict[str, Any]]:
    """Calls, cost and premium-model cost per ``bucket`` seconds; empty buckets are left out."""
    points: dict[int, dict[str, Any]] = {}
    for record in records:
        start = int(record.ts.timestamp()) // bucket * bucket
        point = points.setdefault(start, {"t": start * 1000, "calls": 0, "cost": 0.0, "base": 0.0})
        point["calls"] += 1
        point["cost"] += record.cost
        point["base"] += record.base_cost
    return [points[key] for key in sorted(points)]


def bundled_knob_targets() -> dict[float, float]:
    """The premium share the bundled router's default knob was calibrated to: ``{knob: share}``."""
    from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR

    try:
        manifest = json.loads((DEFAULT_ROUTER_DIR / "manifest.json").read_text(encoding="utf-8"))
        settings = manifest["router"]
        return {float(settings["default_knob"]): float(settings["premium_share_target"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _target_for(knob: float | None, targets: Mapping[float, float]) -> float | None:
    if knob is None:
        return None
    for known, share in targets.items():
        if math.isclose(knob, known, abs_tol=5e-5):  # manifests round the knob to 4 places
            return share
    return None


def knob_shares(
    records: Iterable[UsageRecord], targets: Mapping[float, float]
) -> list[dict[str, Any]]:
    """The realised premium share at each knob setting, with the share it targets when known.

    A record without a knob (a model named explicitly, smart routing off) is grouped under
    ``knob: None``. Most calls first.
    """
    counts: dict[float | None, list[int]] = {}
    for record in records:
        knob = None if record.knob is None else round(record.knob, 4)
        entry = counts.setdefault(knob, [0, 0])
        entry[0] += 1
        entry[1] += record.tier == "premium"
    return [
        {
            "knob": knob,
            "calls": calls,
            "premium_share": premium / calls,
            "target": _target_for(knob, targets),
        }
        for knob, (calls, premium) in sorted(
            counts.items(), key=lambda item: (-item[1][0], item[0] is None, item[0] or 0.0)
        )
    ]


def _totals(rows: Sequence[Totals]) -> list[dict[str, Any]]:
    return [row.as_dict() for row in rows]


def summarize(
    log: UsageLog,
    since: datetime | None,
    *,
    now: datetime | None = None,
    targets: Mapping[float, float] | None = None,
) -> dict[str, Any]:
    """Everything the page shows but the call table, for the calls since ``since`` (None: all)."""
    now = now or datetime.now(timezone.utc)
    targets = {} if targets is None else targets
    (overall,) = log.totals(since)
    days = log.totals(since, by="day")
    records: list[UsageRecord] = []
    bucket = _DAY
    scope: timedelta | None = None  # the knob shares' history when shorter than the window
    start = since
    if days:
        first_day = datetime.fromisoformat(str(days[0].group)).replace(tzinfo=timezone.utc)
        start = max(since, first_day) if since is not None else first_day
        if now - start <= FINE_SPAN:
            records = log.query(start)
            start = records[0].ts if records else start
            bucket = pick_bucket(now - start)
        else:
            scope = timedelta(days=1)
            records = log.query(now - scope)
    if bucket == _DAY:
        series = [
            {
                "t": _ms(datetime.fromisoformat(str(day.group)).replace(tzinfo=timezone.utc)),
                "calls": day.calls,
                "cost": day.cost,
                "base": day.base_cost,
            }
            for day in days
        ]
    else:
        series = bucketize(records, bucket)
    return {
        "now": _ms(now),
        "since": None if since is None else _ms(since),
        "start": None if start is None else _ms(start),
        "totals": overall.as_dict(),
        "by_model": _totals(log.totals(since, by="model")),
        "by_tier": _totals(log.totals(since, by="tier")),
        "by_provider": _totals(log.totals(since, by="provider")),
        "series": {"bucket_seconds": bucket, "points": series},
        "knobs": {
            "scope_seconds": None if scope is None else int(scope.total_seconds()),
            "shares": knob_shares(records, targets),
        },
        "store_prompts": bool(getattr(log, "store_prompts", False)),
    }


def recent_calls(
    log: UsageLog, limit: int, *, now: datetime | None = None
) -> tuple[list[UsageRecord], Cursor]:
    """The latest ``limit`` calls, newest first, and the cursor to follow the log from."""
    now = now or datetime.now(timezone.utc)
    records: list[UsageRecord] = []
    for window in _RECENT_WINDOWS:
        records = log.query(None if window is None else now - window)
        if len(records) >= limit:
            break
    latest = records[-limit:][::-1] if limit > 0 else []
    cursor = Cursor.of(records[-1]) if records else Cursor(now, "")
    return latest, cursor
