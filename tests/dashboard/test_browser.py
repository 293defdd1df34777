"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The dashboard runs as users run it (``set_analytics``: real uvicorn on a thread, over the
process's SQLite usage log under a temporary ``ORKESTRA_HOME``); calls go through
``o.Provider`` to the fake provider server. Without Chromium or Playwright these tests skip,
saying why (``scripts/ci_browser.sh`` installs Chromium); ``ORKESTRA_REQUIRE_BROWSER=1`` (CI)
makes that a failure. ``ORKESTRA_UPDATE_SCREENSHOT=1`` rewrites ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

import orkestra as o
from orkestra import analytics
from orkestra.testing import Fault, Reply
from orkestra.usage import SQLUsageLog, Totals, UsageRecord

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("ORKESTRA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"

ProcessLog = Callable[[], SQLUsageLog]


def _unavailable(reason: str) -> None:
    if os.environ.get("ORKESTRA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"a browser is required (ORKESTRA_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM}: run scripts/ci_browser.sh")
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except Exception as exc:
        manager.stop()
        _unavailable(f"Chromium cannot be launched: {str(exc).splitlines()[0]}")
    yield chromium
    chromium.close()
    manager.stop()


class Watched:
    """A page, with every request it made and every error it reported."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 980})
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    def value(self, element_id: str) -> str:
        return str(self.page.get_attribute(f"#{element_id}", "data-value"))

    def wait_for_value(self, element_id: str, value: object) -> None:
        self.page.wait_for_function(
            "([id, v]) => document.getElementById(id).dataset.value === v",
            arg=[element_id, str(value)],
            timeout=5_000,
        )

    def assert_clean(self) -> None:
        foreign = [u for u in self.requests if urlsplit(u).hostname != "127.0.0.1"]
        assert foreign == [], "the page asked for something from another host"
        assert self.errors == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watch(browser: Browser) -> Iterator[Callable[[str], Watched]]:
    pages: list[Watched] = []

    def open_page(url: str) -> Watched:
        pages.append(Watched(browser, url))
        return pages[-1]

    yield open_page
    for page in pages:
        page.close()


def call(log: SQLUsageLog, provider: o.Provider, prompt: str) -> tuple[UsageRecord, float]:
    """``provider.chat(prompt)``, recorded; returns the record and when the call returned."""
    before = {r.id for r in log.query()}
    response = provider.chat(prompt)
    returned = time.monotonic()
    new = [r for r in log.query() if r.id not in before]
    if not new:  # until Provider records its own calls: what it will do
        analytics.record_response(response, prompt=prompt)
        new = [r for r in log.query() if r.id not in before]
    (record,) = new
    return record, returned


# Real routed calls for the history: (provider, prompt, output tokens of the fake's answer).
HISTORY = [
    ("openai", "What is the capital of Japan?", 12),
    ("anthropic", "Summarise the attached meeting notes in three bullet points.", 140),
    ("google", "Translate 'good morning' into French, Spanish and German.", 30),
    ("openai", "Write a Python function that checks whether a string is a palindrome.", 260),
    ("anthropic", "Prove that the square root of 2 is irrational, step by step.", 620),
    ("google", "List five fruits that are high in vitamin C.", 45),
    ("openai", "Explain the difference between TCP and UDP for a beginner.", 380),
    ("anthropic", "Draft a polite email declining a meeting invitation.", 160),
    ("google", "Derive the closed form of the sum of the first n squares.", 540),
    ("openai", "What year did the Berlin Wall fall?", 10),
    ("anthropic", "Refactor this SQL query to avoid the correlated subquery.", 420),
    ("google", "Suggest a name for a bakery that sells sourdough.", 25),
    ("openai", "Compare quicksort and mergesort: complexity, stability, memory.", 510),
    ("anthropic", "Classify the sentiment of: 'the delivery was late again'.", 8),
    ("google", "Solve 3x + 7 = 22 and explain each step.", 90),
    ("openai", "Give me a regex that matches ISO 8601 dates.", 70),
    ("anthropic", "What is 2+2?", 6),
    ("google", "Capital of Peru?", 5),
]


def seed_history(
    log: SQLUsageLog, fake: Any, monkeypatch: pytest.MonkeyPatch, *, minutes: int = 45
) -> list[UsageRecord]:
    """Real calls through the providers, recorded as if made over the last ``minutes``."""
    monkeypatch.setenv("ORKESTRA_USAGE_LOG", "off")  # only what is written here, not twice
    providers = {name: o.Provider(name, fake.api_key) for name in ("openai", "anthropic", "google")}
    now = datetime.now(timezone.utc)
    records: list[UsageRecord] = []
    for i, (name, prompt, tokens) in enumerate(HISTORY):
        ts = now - timedelta(minutes=minutes * (len(HISTORY) - i) / len(HISTORY))
        fake.queue(Reply(output_tokens=tokens), provider=name)
        if i == 6:  # one rate-limited attempt, answered on retry
            fake.queue(Fault.status(429), provider=name)
        response = providers[name].chat(prompt)
        record = UsageRecord.from_response(response, prompt=prompt)
        records.append(dataclasses.replace(record, ts=ts))
    fake.queue(Fault.status(503), provider="google")
    failing = o.Provider("google", fake.api_key, max_retries=0, fallback="none")
    with pytest.raises(o.ProviderError) as caught:
        failing.chat("Outline a three-day trip to Lisbon.")
    failed = UsageRecord.from_error(caught.value, prompt="Outline a three-day trip to Lisbon.")
    records.append(dataclasses.replace(failed, ts=now - timedelta(minutes=8)))
    for record in records:
        log.record(record)
    log.flush()
    monkeypatch.delenv("ORKESTRA_USAGE_LOG")
    return records


def assert_totals_shown(page: Watched, totals: Totals) -> None:
    page.wait_for_value("total-calls", totals.calls)
    assert page.page.inner_text("#total-calls") == f"{totals.calls:,}"
    for element_id, expected in [
        ("total-cost", totals.cost),
        ("total-base", totals.base_cost),
        ("total-savings", totals.savings),
        ("total-savings-percent", totals.savings_percent),
        ("premium-share", totals.premium_share),
    ]:
        assert float(page.value(element_id)) == pytest.approx(expected, rel=1e-9), element_id
    assert page.page.inner_text("#total-cost").startswith("$")


def test_a_call_appears_within_a_second_and_the_totals_match_the_log(
    browser: Browser,
    watch: Callable[[str], Watched],
    fake: Any,
    process_log: ProcessLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = analytics.set_analytics(True, port=0, store_prompts=True)
    assert url is not None
    log = process_log()
    history = seed_history(log, fake, monkeypatch)

    page = watch(url)
    rows = page.page.locator("#calls tbody tr")
    assert rows.count() == len(history)  # history comes from the log
    assert_totals_shown(page, log.totals()[0])

    provider = o.Provider("openai", fake.api_key)
    provider.chat("warm up the SDK")  # not recorded: the timing below is the dashboard's
    fake.queue(Reply(output_tokens=180), provider="openai")
    record, returned = call(log, provider, "How many moons does Mars have, and what are they?")
    row = page.page.wait_for_selector(f"#calls tr[data-id='{record.id}']", timeout=5_000)
    assert time.monotonic() - returned < 1.0, "the call took more than a second to appear"
    assert row is not None
    cells = row.query_selector_all("td")
    assert cells[1].inner_text() == "openai"
    assert cells[2].inner_text().startswith(record.model)
    assert cells[3].inner_text() == record.tier
    assert float(str(cells[6].get_attribute("data-value"))) == pytest.approx(record.cost)
    assert "How many moons does Mars have" in cells[8].inner_text()
    assert rows.first.get_attribute("data-id") == record.id  # newest first

    assert_totals_shown(page, log.totals()[0])
    # The charts drew what the log holds.
    assert page.page.locator("#chart-cost path.line-cost").count() == 1
    tiers = {t.group: t.calls for t in log.totals(by="tier")}
    for tier, calls in tiers.items():
        legend = page.page.inner_text(f"#chart-tiers li[data-tier='{tier}']")
        assert f"{calls} calls" in legend
    for model in log.totals(by="model"):
        bar = page.page.inner_text(f"#chart-models .row[data-model='{model.group}']")
        assert bar.startswith(model.group)
    page.assert_clean()

    if os.environ.get("ORKESTRA_UPDATE_SCREENSHOT") == "1":
        page.page.wait_for_timeout(2_600)  # let the new row's highlight fade
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_a_window_shows_its_own_totals_and_no_prompts_unless_kept(
    watch: Callable[[str], Watched], process_log: ProcessLog
) -> None:
    log = process_log()
    now = datetime.now(timezone.utc)
    log.record(UsageRecord(provider="openai", model="o3", tier="premium", cost=0.02, ts=now))
    old = now - timedelta(hours=5)
    log.record(UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.001, ts=old))
    url = analytics.set_analytics(True, port=0)
    assert url is not None
    page = watch(url)
    assert_totals_shown(page, log.totals()[0])
    page.page.click("#windows button[data-since='1h']")
    assert_totals_shown(page, log.totals(since="1h")[0])
    assert not page.page.is_visible("#calls th.prompt")  # the log keeps no prompts
    page.assert_clean()
