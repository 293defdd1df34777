"""orkestra.analytics: recording calls for the library, and the dashboard served in process."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import orkestra as o
from orkestra import analytics
from orkestra.errors import ConfigurationError
from orkestra.testing import Fault
from orkestra.usage import SQLUsageLog, key_id_for

ProcessLog = Callable[[], SQLUsageLog]


def chat_unrecorded(monkeypatch: pytest.MonkeyPatch, provider: o.Provider, prompt: str) -> Any:
    """``provider.chat(prompt)`` with recording off, so that only the test records it (the same
    once Provider records its own calls)."""
    with monkeypatch.context() as env:
        env.setenv("ORKESTRA_USAGE_LOG", "off")
        return provider.chat(prompt)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_a_response_is_recorded_in_the_process_log(
    fake: Any, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = o.Provider("openai", fake.api_key)
    response = chat_unrecorded(monkeypatch, provider, "What is the capital of Japan?")
    analytics.record_response(
        response, prompt="What is the capital of Japan?", key_id=key_id_for(fake.api_key)
    )
    (record,) = process_log().query()
    assert (record.provider, record.model, record.tier) == ("openai", response.model, response.tier)
    assert record.cost == pytest.approx(response.total_cost)
    assert record.base_cost == pytest.approx(response.base_cost)
    assert dict(record.scores) == pytest.approx(dict(response.routing.scores))
    assert record.key_id == key_id_for(fake.api_key)
    assert record.prompt is None  # prompts are kept only when asked for
    assert Path(os.environ["ORKESTRA_HOME"], "usage.db").is_file()


def test_an_error_is_recorded_with_its_class_name(
    fake: Any, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.queue(Fault.status(500), provider="openai")
    provider = o.Provider("openai", fake.api_key, max_retries=0, fallback="none")
    with pytest.raises(o.ProviderError) as caught:
        chat_unrecorded(monkeypatch, provider, "hello")
    analytics.record_error("openai", None, caught.value, prompt="hello")
    (record,) = process_log().query()
    assert record.status == "ProviderUnavailableError"
    assert record.provider == "openai" and record.model == caught.value.model
    assert record.error is not None and "500" in record.error


def test_prompts_are_kept_once_asked_for(
    process_log: ProcessLog, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = chat_unrecorded(monkeypatch, o.Provider("openai", fake.api_key), "Name 3 primes.")
    analytics.set_analytics(True, port=0, store_prompts=True)
    analytics.record_response(response, prompt="Name 3 primes.")
    (record,) = process_log().query()
    assert record.prompt == "Name 3 primes."


def test_recording_off_records_nothing(
    monkeypatch: pytest.MonkeyPatch, process_log: ProcessLog, fake: Any
) -> None:
    monkeypatch.setenv("ORKESTRA_USAGE_LOG", "off")
    response = o.Provider("openai", fake.api_key).chat("What is 2 + 2?")
    analytics.record_response(response)
    analytics.record_error("openai", "gpt-4o-mini", RuntimeError("boom"))
    assert not Path(os.environ["ORKESTRA_HOME"], "usage.db").exists()
    with pytest.raises(ConfigurationError, match="ORKESTRA_USAGE_LOG=off"):
        analytics.set_analytics(True, port=0)


def test_recording_never_raises_and_warns_once(
    process_log: ProcessLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="orkestra.analytics"):
        analytics.record_response(object())  # type: ignore[arg-type]
        analytics.record_response("not a response")  # type: ignore[arg-type]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "calls go on unrecorded" in warnings[0].getMessage()
    assert process_log().query() == []


def test_set_analytics_serves_the_dashboard_until_turned_off(process_log: ProcessLog) -> None:
    assert not analytics.analytics_enabled()
    url = analytics.set_analytics(True, port=0)
    assert url is not None and url.startswith("http://127.0.0.1:")
    assert analytics.analytics_enabled()
    assert analytics.set_analytics(True, port=0) == url  # already running there
    summary = _get_json(f"{url}/api/summary")
    assert summary["totals"]["calls"] == 0
    assert analytics.set_analytics(False) is None
    assert not analytics.analytics_enabled()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/api/summary", timeout=2)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_only_loopback_without_an_explicit_flag(process_log: ProcessLog, host: str) -> None:
    with pytest.raises(ConfigurationError, match="allow_remote=True"):
        analytics.set_analytics(True, host=host, port=0)
    assert not analytics.analytics_enabled()


def test_a_port_in_use_is_a_clear_error(process_log: ProcessLog) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot listen on 127.0.0.1:{port}"):
            analytics.set_analytics(True, port=port)


def test_run_dashboard_serves_a_log_until_interrupted(tmp_path: Path) -> None:
    from orkestra.usage import SQLiteUsageLog, UsageRecord

    db = tmp_path / "proxy.db"
    with SQLiteUsageLog(db) as log:
        log.record(UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.001, source="proxy"))
    url = f"sqlite:///{db}"
    script = (
        "from orkestra.dashboard import run_dashboard\n"
        f"run_dashboard(port=0, db_url={url!r}, on_ready=lambda u: print(u, flush=True))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        served = process.stdout.readline().strip()
        assert served.startswith("http://127.0.0.1:")
        summary = _get_json(f"{served}/api/summary")
        assert summary["totals"]["calls"] == 1 and summary["by_model"][0]["group"] == "gpt-4o-mini"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.communicate()


def test_run_dashboard_refuses_a_public_address() -> None:
    from orkestra.dashboard import run_dashboard

    with pytest.raises(ConfigurationError, match="listens on this machine only"):
        run_dashboard(host="0.0.0.0")
