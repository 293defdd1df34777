"""The middleware and event machinery on its own (wiring into calls is tested with providers)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from orkestra.errors import ConfigurationError
from orkestra.hooks import Hooks, emit, run_middleware


def test_middleware_runs_global_outermost_and_can_change_both_ways() -> None:
    outer, inner = Hooks(), Hooks()
    seen: list[str] = []

    def a(data: dict[str, Any], next_: Any) -> Any:
        seen.append("a-before")
        data["prompt"] = data["prompt"].upper()
        result = next_(data)
        seen.append("a-after")
        return result + "!"

    def b(data: dict[str, Any], next_: Any) -> Any:
        seen.append("b-before")
        return next_(data)

    outer.add_middleware(a)
    inner.add_middleware(b)
    result = run_middleware(
        [outer, inner], {"prompt": "hi"}, lambda d: f"called with {d['prompt']}"
    )
    assert result == "called with HI!"
    assert seen == ["a-before", "b-before", "a-after"]


def test_a_failing_handler_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    got: list[str] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    hooks.add_handler("on_response", broken)
    hooks.add_handler("on_response", lambda e: got.append(e["event"]))
    with caplog.at_level(logging.ERROR, logger="orkestra.hooks"):
        emit([hooks], "on_response", response=None)
    assert got == ["on_response"]
    assert "boom" in caplog.text


def test_unknown_event_and_non_callables_are_refused() -> None:
    hooks = Hooks()
    with pytest.raises(ConfigurationError, match="on_finish"):
        hooks.add_handler("on_finish", print)
    with pytest.raises(ConfigurationError):
        hooks.add_middleware("not callable")  # type: ignore[arg-type]
