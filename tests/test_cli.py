"""The command line: explore, route, models and demo, run in-process through typer's runner."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from orkestra.cli import app
from orkestra.demo import DEMO_PROMPTS, run_demo

runner = CliRunner()


def test_explore_prints_todays_catalog_offline() -> None:
    result = runner.invoke(app, ["explore"])
    assert result.exit_code == 0, result.output
    out = result.output
    for section in (
        "PROVIDER MODEL CATALOG",
        "ROUTER PREDICTIONS",
        "COST SIMULATION",
        "STRATEGY COMPARISON",
        "PUBLIC API",
    ):
        assert section in out
    assert "gemini-3.1-pro-preview       premium    $2.00/$12.00 per 1M tokens" in out
    assert "o3                           premium    $2.00/$8.00 per 1M tokens" in out
    assert "claude-opus-4 " not in out  # retired: never shown as a tier model
    assert (
        "[Simple] What is the capital of Japan?\n    google       → gemini-2.5-flash-lite (budget)"
        in out
    )


def test_explore_json_and_extra_prompt() -> None:
    result = runner.invoke(
        app, ["explore", "--json", "--prompt", "Sort a list in Python", "-p", "openai"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data["catalog"]) == ["openai"]
    assert data["prompts"][-1]["prompt"] == "Sort a list in Python"
    assert set(data["prompts"][0]["strategies"]) == {"cheapest", "smartest", "balanced"}


def test_route_explains_without_a_key() -> None:
    result = runner.invoke(app, ["route", "What is the capital of Japan?", "--json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["tier"] == "budget"
    assert decision["strategy"] == "cheapest"
    assert len(decision["neighbors"]) == 5
    assert set(decision["scores"]) == {"budget", "balanced", "premium"}


def test_user_errors_exit_2_without_a_traceback() -> None:
    result = runner.invoke(app, ["route", "hi", "--provider", "gemni"])
    assert result.exit_code == 2
    assert "unknown provider 'gemni'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["route", "   "])
    assert result.exit_code == 2 and "empty" in result.output


def test_models_lists_retirements() -> None:
    result = runner.invoke(app, ["models", "--provider", "anthropic", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.output)}
    assert rows["claude-opus-4-0"]["retired"] is True
    assert rows["claude-opus-4-0"]["successor"] == "claude-opus-4-6"
    assert rows["claude-haiku-4-5"]["tier"] == "budget"


def test_demo_runs_the_whole_pipeline_offline() -> None:
    out = io.StringIO()
    responses = run_demo(Console(file=out, width=160), stream_out=out.write)
    assert len(responses) == len(DEMO_PROMPTS) * 3 + 6 + 1 + 3
    assert {r.provider for r in responses} == {"google", "anthropic", "openai"}
    assert {r.tier for r in responses} >= {"budget", "premium"}
    assert all(r.cost > 0 and r.base_cost >= r.cost for r in responses)
    conversation = responses[-3:]
    assert conversation[0].tool_calls and len({r.model for r in conversation}) == 1
    assert conversation[-1].usage.cache_read_tokens > 0 and conversation[-1].cache_savings > 0
    text = out.getvalue()
    assert "Summary: 28 calls" in text
    assert "tool call: get_weather(" in text
    assert "[gemini-3-flash-preview]" in text or "[gemini-" in text


def test_chat_streams_then_summarises(fake: object) -> None:
    result = runner.invoke(app, ["chat", "What is the capital of Japan?", "-p", "openai"])
    assert result.exit_code == 0, result.output
    assert "[gpt-4o-mini]" in result.output
    assert "saved $" in result.output


def test_chat_reads_stdin_and_uses_every_keyed_provider(fake: object) -> None:
    result = runner.invoke(
        app, ["chat", "--strategy", "cheapest"], input="What is the capital of Japan?\n"
    )
    assert result.exit_code == 0, result.output
    # All three route it to budget; the cheapest of those is Google's.
    assert "google/gemini-2.5-flash-lite (budget)" in result.output


def test_prices_json() -> None:
    result = runner.invoke(app, ["prices", "--json", "-p", "anthropic"])
    rows = {r["model"]: r for r in json.loads(result.output)}
    assert rows["claude-haiku-4-5"]["cache_write"] == 1.25
    assert rows["claude-haiku-4-5"]["cached_input"] == 0.1


def test_usage_totals_from_the_log(tmp_path: object) -> None:
    from pathlib import Path

    from orkestra.usage import UsageRecord, open_usage_log

    url = f"sqlite:///{Path(str(tmp_path)) / 'u.db'}"
    log = open_usage_log(url)
    for model, tier, cost in (("gpt-4o-mini", "budget", 0.001), ("o3", "premium", 0.01)):
        log.record(
            UsageRecord(provider="openai", model=model, tier=tier, cost=cost, base_cost=0.01)
        )
    log.close()
    result = runner.invoke(app, ["usage", "--db", url, "--by", "tier", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["group"]: r for r in json.loads(result.output)}
    assert rows["budget"]["calls"] == 1 and rows["premium"]["calls"] == 1
    assert rows["budget"]["savings"] == pytest.approx(0.009)
    csv_out = runner.invoke(app, ["usage", "--db", url, "--csv"])
    assert csv_out.output.splitlines()[0].startswith("group,")
    bad = runner.invoke(app, ["usage", "--db", url, "--by", "colour"])
    assert bad.exit_code == 2 and "colour" in bad.output
