"""What the dashboard shows, read from a usage log: totals, distributions, series, call rows.

Totals and the model/tier/provider distributions are the log's own aggregates
(:meth:`UsageLog.totals`), so the page shows exactly what ``orkestra usage`` would; the series
(:meth:`UsageLog.series`) and the premium share per knob (:meth:`UsageLog.knob_counts`) are
aggregated by the database too, and the call table reads one page of records
(:meth:`UsageLog.latest`). A request costs a few queries and memory for what it returns,
whatever the number of calls in the window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from orkestra.usage import KnobCount, Totals, UsageLog, UsageRecord

__all__ = [
    "FINE_SPAN",
    "PREVIEW_CHARS",
    "Cursor",
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
"""The longest history charted in buckets finer than a day."""

MAX_POINTS = 120
_BUCKETS = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
_DAY = 86_400


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
    counts: Iterable[KnobCount], targets: Mapping[float, float]
) -> list[dict[str, Any]]:
    """The realised premium share at each knob setting, with the share it targets when known.

    Calls without a knob (a model named explicitly, smart routing off) are grouped under
    ``knob: None``. In the order given (the log's: most calls first).
    """
    return [
        {
            "knob": count.knob,
            "calls": count.calls,
            "premium_share": count.premium / count.calls,
            "target": _target_for(count.knob, targets),
        }
        for count in counts
        if count.calls
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
    """Everything the page shows but the call table, for the calls since ``since`` (None: all).

    Every figure is an aggregate the database computes (a few queries, whatever the number of
    calls in the window): nothing here reads the records themselves.
    """
    now = now or datetime.now(timezone.utc)
    targets = {} if targets is None else targets
    (overall,) = log.totals(since)
    points: list[dict[str, Any]] = []
    bucket = _DAY
    start = since
    knobs: list[KnobCount] = []
    if overall.calls and (oldest := log.oldest(since)) is not None:
        if now - oldest <= FINE_SPAN:
            start, bucket = oldest, pick_bucket(now - oldest)
        else:  # charted by UTC day, from the first day with a call
            first_day = oldest.replace(hour=0, minute=0, second=0, microsecond=0)
            start = max(since, first_day) if since is not None else first_day
        points = [
            {"t": _ms(p.start), "calls": p.calls, "cost": p.cost, "base": p.base_cost}
            for p in log.series(since, bucket=bucket)
        ]
        knobs = log.knob_counts(since)
    return {
        "now": _ms(now),
        "since": None if since is None else _ms(since),
        "start": None if start is None else _ms(start),
        "totals": overall.as_dict(),
        "by_model": _totals(log.totals(since, by="model")),
        "by_tier": _totals(log.totals(since, by="tier")),
        "by_provider": _totals(log.totals(since, by="provider")),
        "series": {"bucket_seconds": bucket, "points": points},
        "knobs": {"scope_seconds": None, "shares": knob_shares(knobs, targets)},
        "store_prompts": bool(getattr(log, "store_prompts", False)),
    }


def recent_calls(
    log: UsageLog,
    limit: int,
    *,
    before: Cursor | None = None,
    now: datetime | None = None,
) -> tuple[list[UsageRecord], Cursor]:
    """The latest ``limit`` calls (before ``before``: the next page), newest first, and the
    cursor to follow the log from (the newest call's; ``now`` in an empty log)."""
    now = now or datetime.now(timezone.utc)
    newest = log.latest(1)
    cursor = Cursor.of(newest[0]) if newest else Cursor(now, "")
    if limit <= 0:
        return [], cursor
    page = log.latest(limit, before=None if before is None else (before.ts, before.id))
    return page, cursor
