"""What the page shows, computed from the log: buckets, series, knob shares, rows, cursors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dashboard_helpers import make_record

from orkestra.dashboard._summary import (
    PREVIEW_CHARS,
    Cursor,
    bundled_knob_targets,
    call_row,
    knob_shares,
    pick_bucket,
    recent_calls,
    summarize,
)
from orkestra.dashboard._tail import CallTail
from orkestra.usage import KnobCount, SQLiteUsageLog, UsageRecord

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(seconds=0), 1),
        (timedelta(seconds=90), 1),
        (timedelta(minutes=10), 5),
        (timedelta(hours=1), 30),
        (timedelta(days=1), 900),
        (timedelta(days=2), 1800),
        (timedelta(days=90), 86400),
    ],
)
def test_a_bucket_charts_the_span_in_at_most_120_points(span: timedelta, bucket: int) -> None:
    assert pick_bucket(span) == bucket
    assert span.total_seconds() / bucket <= 120 or bucket == 86400


def test_knob_shares_compare_each_knob_with_its_target() -> None:
    counts = [KnobCount(0.8823, 4, 1), KnobCount(0.5, 1, 0), KnobCount(None, 1, 1)]
    shares = knob_shares(counts, {0.8823: 0.2})
    assert shares[0] == {"knob": 0.8823, "calls": 4, "premium_share": 0.25, "target": 0.2}
    assert {s["knob"]: s["target"] for s in shares[1:]} == {0.5: None, None: None}
    assert [s["premium_share"] for s in shares[1:]] == [0.0, 1.0]


def test_the_bundled_routers_default_knob_targets_a_fifth_premium() -> None:
    (knob, share), *_ = bundled_knob_targets().items()
    assert 0 < knob <= 1
    assert share == pytest.approx(0.2)


def test_a_row_previews_the_prompt_only_when_the_record_has_one() -> None:
    long_prompt = "Summarise   this\nreport " + "word " * 40
    row = call_row(make_record(prompt=long_prompt))
    assert row["prompt_preview"].startswith("Summarise this report word")
    assert len(row["prompt_preview"]) == PREVIEW_CHARS and row["prompt_preview"].endswith("…")
    assert call_row(make_record(prompt="short")).get("prompt_preview") == "short"
    assert call_row(make_record()).get("prompt_preview") is None


def test_a_row_of_a_failed_call_carries_its_scrubbed_error() -> None:
    row = call_row(
        make_record(status="RateLimitError", error="429 for key sk-proj-abcdefghijklmnop1234")
    )
    assert row["status"] == "RateLimitError"
    assert "sk-proj" not in row["error"] and "[REDACTED]" in row["error"]


def test_a_cursor_round_trips_through_its_text_and_orders_by_time_then_id() -> None:
    record = make_record(ts=NOW)
    cursor = Cursor.of(record)
    assert Cursor.parse(str(cursor)) == cursor
    assert Cursor(NOW, "b") > Cursor(NOW, "a") > Cursor(NOW - timedelta(microseconds=1), "z")
    for text in (None, "", "  "):
        assert Cursor.parse(text) is None
    # Not a cursor, or one past the calendar: an error to report, not "from now on".
    for text in ("nonsense", "-abc", "12x-abc", "١٢-abc", "9" * 30 + "-abc", "9" * 19 + "-abc"):
        with pytest.raises(ValueError, match=r"event id|year 9999"):
            Cursor.parse(text)


def test_summary_of_a_short_history_is_bucketed_finely(log: SQLiteUsageLog) -> None:
    for minutes in (50, 30, 30, 2):
        log.record(make_record(ts=NOW - timedelta(minutes=minutes), knob=0.8823))
    summary = summarize(log, None, now=NOW, targets={0.8823: 0.2})
    assert summary["series"]["bucket_seconds"] == 30
    assert sum(p["calls"] for p in summary["series"]["points"]) == 4
    assert summary["start"] == int((NOW - timedelta(minutes=50)).timestamp() * 1000)
    assert summary["knobs"] == {
        "scope_seconds": None,
        "shares": [{"knob": 0.8823, "calls": 4, "premium_share": 0.0, "target": 0.2}],
    }


def test_summary_of_a_long_history_is_charted_by_day(log: SQLiteUsageLog) -> None:
    for days in (9, 9, 4, 0):
        log.record(make_record(ts=NOW - timedelta(days=days, minutes=1)))
    summary = summarize(log, None, now=NOW)
    assert summary["series"]["bucket_seconds"] == 86400
    assert [p["calls"] for p in summary["series"]["points"]] == [2, 1, 1]
    day = 86_400_000
    assert [p["t"] % day for p in summary["series"]["points"]] == [0, 0, 0]  # UTC midnights
    assert summary["start"] % day == 0
    # The knob shares cover the whole window (the database counts them).
    assert summary["knobs"]["scope_seconds"] is None
    assert summary["knobs"]["shares"][0]["calls"] == 4


def test_recent_calls_are_newest_first_a_page_at_a_time(log: SQLiteUsageLog) -> None:
    old = make_record(ts=NOW - timedelta(days=40), model="old")
    new = [make_record(ts=NOW - timedelta(minutes=m), model=f"m{m}") for m in (3, 2, 1)]
    for record in [old, *new]:
        log.record(record)
    latest, cursor = recent_calls(log, 2, now=NOW)
    assert [r.model for r in latest] == ["m1", "m2"]
    assert cursor == Cursor.of(new[-1])
    everything, _ = recent_calls(log, 10, now=NOW)
    assert [r.model for r in everything] == ["m1", "m2", "m3", "old"]
    nothing, cursor = recent_calls(log, 0, now=NOW)
    assert nothing == [] and cursor == Cursor.of(new[-1])
    older, cursor = recent_calls(log, 2, before=Cursor.of(new[1]), now=NOW)
    assert [r.model for r in older] == ["m3", "old"] and cursor == Cursor.of(new[-1])
    with SQLiteUsageLog(log.path.with_name("empty.db")) as empty_log:
        empty, cursor = recent_calls(empty_log, 5, now=NOW)
    assert empty == [] and cursor == Cursor(NOW, "")


def test_the_tail_returns_each_record_once_even_when_it_lands_late(
    log: SQLiteUsageLog,
) -> None:
    now = datetime.now(timezone.utc)
    first = make_record(ts=now - timedelta(seconds=10))
    log.record(first)
    tail = CallTail(log, after=Cursor.of(first), lookback=5.0)
    assert tail.poll() == []
    a = make_record(ts=now)
    log.record(a)
    assert [r.id for r in tail.poll()] == [a.id]
    # Written after `a` was seen but finished before it (another process's batch, say).
    late = make_record(ts=now - timedelta(seconds=2))
    b = make_record(ts=now + timedelta(milliseconds=1))
    log.record(late)
    log.record(b)
    assert {r.id for r in tail.poll()} == {late.id, b.id}
    assert tail.poll() == []


def test_the_tail_starts_after_its_cursor(log: SQLiteUsageLog) -> None:
    now = datetime.now(timezone.utc)
    records = [make_record(ts=now - timedelta(seconds=s)) for s in (3, 2, 1)]
    for record in records:
        log.record(record)
    tail = CallTail(log, after=Cursor.of(records[1]))
    assert [r.id for r in tail.poll()] == [records[2].id]
    assert [r.id for r in CallTail(log).poll()] == []  # no cursor: from now on


def test_summary_totals_are_the_logs_own(log: SQLiteUsageLog) -> None:
    records: list[UsageRecord] = [
        make_record(provider="anthropic", model="claude-haiku-4-5", cost=0.001, base_cost=0.005),
        make_record(tier="premium", model="o3", cost=0.002, base_cost=0.002),
        make_record(status="RateLimitError", error="slow down", cost=0.0, base_cost=0.0),
    ]
    for record in records:
        log.record(record)
    summary = summarize(log, None)
    assert summary["totals"] == log.totals()[0].as_dict()
    for by in ("model", "tier", "provider"):
        assert summary[f"by_{by}"] == [t.as_dict() for t in log.totals(by=by)]
    assert summary["totals"]["errors"] == 1
