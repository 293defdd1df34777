"""The live stream over a real uvicorn server: calls as they land, from any process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from dashboard_helpers import EventStream, make_record
from starlette.applications import Starlette

from orkestra.dashboard import DashboardServer, create_app
from orkestra.dashboard._summary import Cursor
from orkestra.usage import SQLiteUsageLog

Serve = Callable[[Starlette], DashboardServer]
OpenEvents = Callable[..., EventStream]


def test_a_call_is_sent_as_it_lands(
    log: SQLiteUsageLog, serve: Serve, open_events: OpenEvents
) -> None:
    server = serve(create_app(log, poll_interval=0.05))
    stream = open_events(f"{server.url}/api/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.next() == {"retry": "1000"}
    record = make_record(prompt="kept only by logs that keep prompts")
    started = time.monotonic()
    log.record(record)
    event = stream.next()
    assert time.monotonic() - started < 1.0
    assert event is not None
    assert event["event"] == "call"
    assert event["id"] == str(Cursor.of(record))
    call = json.loads(event["data"])
    assert call["id"] == record.id and call["model"] == "gpt-4o-mini"
    assert call["cost"] == record.cost and call["tier"] == "budget"
    assert call["prompt_preview"] is None  # this log does not keep prompts


def test_a_reconnecting_client_resumes_after_its_last_event(
    log: SQLiteUsageLog, serve: Serve, open_events: OpenEvents
) -> None:
    now = datetime.now(timezone.utc)
    seen, missed = make_record(ts=now - timedelta(seconds=2)), make_record(ts=now)
    log.record(seen)
    log.record(missed)
    server = serve(create_app(log, poll_interval=0.05))
    stream = open_events(
        f"{server.url}/api/events?after=0-", headers={"Last-Event-ID": str(Cursor.of(seen))}
    )
    stream.next()  # retry
    event = stream.next()
    assert event is not None and json.loads(event["data"])["id"] == missed.id


def test_calls_another_process_records_appear(
    log: SQLiteUsageLog, serve: Serve, open_events: OpenEvents
) -> None:
    server = serve(create_app(log, poll_interval=0.05))
    stream = open_events(f"{server.url}/api/events")
    stream.next()  # retry
    script = textwrap.dedent(
        f"""
        from orkestra.usage import SQLiteUsageLog, UsageRecord
        with SQLiteUsageLog({str(log.path)!r}) as log:
            for model in ("claude-haiku-4-5", "claude-sonnet-4-6"):
                log.record(UsageRecord(provider="anthropic", model=model, source="proxy"))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    events = [stream.next(), stream.next()]
    calls = [json.loads(e["data"]) for e in events if e is not None]
    assert [(c["model"], c["source"]) for c in calls] == [
        ("claude-haiku-4-5", "proxy"),
        ("claude-sonnet-4-6", "proxy"),
    ]


def test_an_idle_stream_sends_heartbeats(
    log: SQLiteUsageLog, serve: Serve, open_events: OpenEvents
) -> None:
    server = serve(create_app(log, poll_interval=0.05, heartbeat=0.2))
    stream = open_events(f"{server.url}/api/events")
    assert stream.next() == {"retry": "1000"}
    beat = stream.next(skip_comments=False)
    assert beat is not None and beat["comment"].startswith("keep-alive")


def test_stopping_the_server_ends_open_streams(
    log: SQLiteUsageLog, open_events: OpenEvents
) -> None:
    server = DashboardServer(create_app(log, poll_interval=0.05), port=0)
    server.start()
    stream = open_events(f"{server.url}/api/events")
    stream.next()  # retry
    started = time.monotonic()
    server.stop()
    assert stream.next(timeout=5) is None  # the stream ended: end of file
    assert time.monotonic() - started < 2.0
    assert not server.running
