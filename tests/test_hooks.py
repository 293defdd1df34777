"""The middleware and event machinery on its own (wiring into calls is tested with providers)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import orkestra as o
from orkestra.errors import ConfigurationError
from orkestra.hooks import Hooks, emit, global_hooks, run_middleware
from orkestra.testing import FakeProviderServer, Fault


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


# -- wired into real calls (fake provider server) -----------------------------------------


@pytest.fixture(autouse=True)
def _no_global_hooks() -> Any:
    global_hooks().clear()
    yield
    global_hooks().clear()


def test_middleware_changes_the_request_and_the_response(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key)

    @provider.middleware
    def pin_and_tag(data: dict[str, Any], next_: Any) -> Any:
        data["model"] = "gpt-4o-mini"
        data["prompt"] = data["prompt"] + " (be brief)"
        response = next_(data)
        return response

    seen: list[str] = []

    @o.register_middleware
    def outer(data: dict[str, Any], next_: Any) -> Any:
        seen.append("global")
        return next_(data)

    response = provider.chat("What is 2+2?")
    assert response.model == "gpt-4o-mini"
    assert fake.requests[-1].body["messages"][0]["content"] == "What is 2+2? (be brief)"  # type: ignore[index]
    assert seen == ["global"]


def test_events_of_a_chat_a_stream_and_a_fallback(fake: FakeProviderServer) -> None:
    provider = o.Provider("google", fake.api_key, fallback="up-then-down")
    events: list[str] = []
    for name in (
        "on_request",
        "on_route",
        "on_chat",
        "on_stream",
        "on_chunk",
        "on_stream_complete",
        "on_response",
        "on_error",
        "on_fallback",
    ):
        provider.event(name)(lambda e: events.append(e["event"]))

    provider.chat("What is the capital of Japan?")
    assert events == ["on_request", "on_route", "on_chat", "on_response"]

    events.clear()
    "".join(provider.stream("Write a poem about the sea"))
    assert events[:3] == ["on_request", "on_route", "on_stream"]
    assert events.count("on_chunk") >= 3
    assert events[-2:] == ["on_stream_complete", "on_response"]

    events.clear()
    fake.queue(Fault.status(503), provider="google", times=3)  # the routed model keeps failing
    provider.chat("What is the capital of Japan?")
    assert "on_fallback" in events and events[-1] == "on_response"

    events.clear()
    fake.queue(Fault.status(400), provider="google")
    with pytest.raises(o.BadRequestError):
        provider.chat("What is the capital of Japan?")
    assert events[-1] == "on_error"


def test_a_broken_handler_never_breaks_the_call(fake: FakeProviderServer) -> None:
    @o.register_event("on_response")
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    multi = o.MultiProvider([o.Provider("openai", fake.api_key)])
    assert multi.chat("What is 2+2?").text
    assert "".join(multi.stream_text("Write a poem"))
