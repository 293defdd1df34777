"""The dashboard's HTTP API in process (Starlette's TestClient): page, static files, JSON."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest
from dashboard_helpers import make_record
from starlette.testclient import TestClient

from orkestra.dashboard import create_app
from orkestra.usage import SQLiteUsageLog


@pytest.fixture
def client(log: SQLiteUsageLog) -> Iterator[TestClient]:
    with TestClient(create_app(log), base_url="http://127.0.0.1:8333") as client:
        yield client


def test_the_page_loads_its_script_and_styles_from_this_server(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="/static/dashboard.js"' in page.text
    assert 'href="/static/dashboard.css"' in page.text
    for path, kind in [
        ("/static/dashboard.js", "javascript"),
        ("/static/dashboard.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"]


def test_every_response_forbids_loading_anything_from_elsewhere(client: TestClient) -> None:
    for path in ("/", "/api/summary", "/static/dashboard.js"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "connect-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"


def test_the_bundled_front_end_names_no_other_host() -> None:
    static = resources.files("orkestra.dashboard") / "static"
    for name in ("index.html", "dashboard.js", "dashboard.css", "favicon.svg"):
        text = (static / name).read_text("utf-8")
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", text))
        # The SVG namespace is a name, not something a browser fetches.
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)


def test_a_foreign_host_header_is_refused(client: TestClient) -> None:
    # A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) must not read the log.
    assert client.get("/api/summary", headers={"host": "evil.example:8333"}).status_code == 421
    assert client.get("/", headers={"host": "localhost:8333"}).status_code == 200
    assert client.get("/", headers={"host": "[::1]:8333"}).status_code == 200


def test_summary_matches_the_logs_totals(client: TestClient, log: SQLiteUsageLog) -> None:
    log.record(make_record())
    log.record(make_record(provider="google", model="gemini-3.1-pro-preview", tier="premium"))
    log.record(make_record(status="ProviderUnavailableError", error="HTTP 500", cost=0.0))
    summary = client.get("/api/summary").json()
    assert summary["totals"] == log.totals()[0].as_dict()
    assert summary["by_model"] == [t.as_dict() for t in log.totals(by="model")]
    assert summary["by_tier"] == [t.as_dict() for t in log.totals(by="tier")]
    assert summary["by_provider"] == [t.as_dict() for t in log.totals(by="provider")]
    points = summary["series"]["points"]
    assert sum(p["calls"] for p in points) == 3
    assert sum(p["cost"] for p in points) == pytest.approx(summary["totals"]["cost"])
    assert sum(p["base"] for p in points) == pytest.approx(summary["totals"]["base_cost"])
    (share,) = summary["knobs"]["shares"]
    assert share["target"] == pytest.approx(0.2)  # the bundled router's calibration target
    assert share["premium_share"] == pytest.approx(1 / 3)
    assert summary["store_prompts"] is False


def test_summary_of_a_window(client: TestClient, log: SQLiteUsageLog) -> None:
    now = datetime.now(timezone.utc)
    log.record(make_record(ts=now - timedelta(hours=3), cost=1.0))
    log.record(make_record(ts=now - timedelta(minutes=5), cost=2.0))
    assert client.get("/api/summary?since=1h").json()["totals"]["cost"] == 2.0
    assert client.get("/api/summary?since=all").json()["totals"]["cost"] == 3.0
    empty = client.get("/api/summary?since=1m").json()
    assert empty["totals"]["calls"] == 0 and empty["series"]["points"] == []
    bad = client.get("/api/summary?since=yesterday-ish")
    assert bad.status_code == 400 and "duration" in bad.json()["error"]


def test_calls_are_newest_first_with_a_cursor(client: TestClient, log: SQLiteUsageLog) -> None:
    now = datetime.now(timezone.utc)
    records = [make_record(ts=now - timedelta(seconds=s), model=f"m{s}") for s in (30, 20, 10)]
    for record in records:
        log.record(record)
    data = client.get("/api/calls?limit=2").json()
    assert [c["model"] for c in data["calls"]] == ["m10", "m20"]
    assert data["cursor"] == data["calls"][0]["cursor"]
    first = data["calls"][0]
    assert first["scores"] == {"budget": 0.71, "balanced": 0.77, "premium": 0.84}
    assert first["savings"] == pytest.approx(records[-1].savings)
    assert data["next"] == data["calls"][1]["cursor"]  # a full page: there may be more
    rest = client.get(f"/api/calls?limit=2&before={data['next']}").json()
    assert [c["model"] for c in rest["calls"]] == ["m30"] and rest["next"] is None
    assert rest["cursor"] == data["cursor"]  # following the log starts at the newest call
    bad = client.get("/api/calls?limit=nope")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_limit"
    assert len(client.get("/api/calls?limit=100000").json()["calls"]) == 3


def test_prompts_show_only_when_the_log_keeps_them(
    make_log: Callable[..., SQLiteUsageLog],
) -> None:
    prompt = "What is the capital of Japan? " * 5
    plain = make_log(name="plain.db")
    keeping = make_log(name="keeping.db", store_prompts=True)
    for log in (plain, keeping):
        log.record(make_record(prompt=prompt))
    with TestClient(create_app(plain), base_url="http://127.0.0.1") as client:
        assert client.get("/api/calls").json()["calls"][0]["prompt_preview"] is None
        assert client.get("/api/summary").json()["store_prompts"] is False
    with TestClient(create_app(keeping), base_url="http://127.0.0.1") as client:
        preview = client.get("/api/calls").json()["calls"][0]["prompt_preview"]
        assert preview.startswith("What is the capital of Japan? What") and len(preview) == 80
        assert client.get("/api/summary").json()["store_prompts"] is True


def test_a_restart_loses_nothing(make_log: Callable[..., SQLiteUsageLog]) -> None:
    before = make_log()
    records = [make_record(model=f"m{i}", cost=0.001 * (i + 1)) for i in range(5)]
    for record in records:
        before.record(record)
    before.close()  # the dashboard's process ends

    after = make_log()  # a new process: a fresh connection, a fresh app
    with TestClient(create_app(after), base_url="http://127.0.0.1") as client:
        summary = client.get("/api/summary").json()
        assert summary["totals"]["calls"] == 5
        assert summary["totals"]["cost"] == pytest.approx(0.015)
        shown = {c["id"] for c in client.get("/api/calls").json()["calls"]}
    assert shown == {r.id for r in records}


def test_a_closed_log_is_not_a_crash(log: SQLiteUsageLog) -> None:
    app = create_app(log)
    log.close()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/").status_code == 200
        for path in ("/api/summary", "/api/calls"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.json() == {"error": "the usage log is closed"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/summary?since=999999999d",
        "/api/summary?since=9999999999999999999999999w",
        "/api/events?after=99999999999999999999999999-abc",
        "/api/events?after=not-a-cursor",
        "/api/calls?before=123",
    ],
)
def test_out_of_range_or_malformed_input_is_a_400_that_says_why(
    log: SQLiteUsageLog, path: str
) -> None:
    app = create_app(log)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        response = client.get(path)
    assert response.status_code == 400, response.text
    body = response.json()
    name = next(n for n in ("since", "after", "before") if n in path)
    assert body["code"] == f"invalid_{name}"
    assert name in body["error"]


def test_a_huge_last_event_id_is_a_400(log: SQLiteUsageLog) -> None:
    app = create_app(log)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        response = client.get("/api/events", headers={"Last-Event-ID": "9" * 40 + "-x"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_last_event_id"
    assert "Last-Event-ID" in response.json()["error"]
