"""Cascades as streams, never switching answers silently mid-text: ``"buffer"`` holds an answer
until its check passes; ``"replace"`` streams it at once and marks it replaced (a ``Replaced``
item in ``stream.events()``, a separator line in the text) when its check fails. Sync and async,
the three providers' real SDKs against the fake server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog, UsageSink

FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.005, deadline=20.0)
EVERY_TIER = o.CascadePolicy(skip_below=0)
PROVIDERS = ("openai", "anthropic", "google")
EASY = "What is the capital of Japan?"
REFUSAL = "I'm sorry, but I can't help with that request at all."

_opened: list[o.Provider] = []


def make(name: str, **kwargs: Any) -> o.Provider:
    options: dict[str, Any] = {
        "retry": FAST,
        "circuit_breaker": o.CircuitBreaker(),
        "mode": "cascade",
        "cascade_policy": EVERY_TIER,
    }
    _opened.append(o.Provider(name, **{**options, **kwargs}))
    return _opened[-1]


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def sent(fake: FakeProviderServer) -> list[tuple[str | None, bool]]:
    """(model, streamed?) of each generation request."""
    return [(r.model, r.stream) for r in fake.requests if r.method == "POST"]


def models(provider: o.Provider) -> dict[str, str]:
    return {tier: model.id for tier, model in provider.tier_models().items()}


# -- buffer: nothing shown is ever withdrawn --------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_buffer_holds_the_cheap_answer_until_it_passes(fake: FakeProviderServer, name: str) -> None:
    provider = make(name)
    chunks: list[str] = []
    provider.event("on_chunk")(lambda e: chunks.append(e["chunk"]))
    stream = provider.stream(EASY, max_tokens=64)
    text = list(stream)

    budget = models(provider)["budget"]
    assert sent(fake) == [(budget, False)]  # asked whole: nothing to show before its check
    assert text == chunks and "".join(text) == stream.text == stream.response.text  # type: ignore[union-attr]
    report = stream.response.cascade  # type: ignore[union-attr]
    assert report is not None and report.streaming == "buffer" and not report.replaced
    assert report.steps[0].passed is True


@pytest.mark.parametrize("name", PROVIDERS)
def test_buffer_streams_only_the_answer_it_keeps(fake: FakeProviderServer, name: str) -> None:
    provider = make(name)
    tier = models(provider)
    fake.queue(Reply(REFUSAL), model=tier["budget"])
    fake.queue(Reply(REFUSAL), model=tier["balanced"])
    stream = provider.stream(EASY, max_tokens=64)
    items = list(stream.events())

    # The two checked answers were asked whole and dropped; the top streams as it arrives.
    assert sent(fake) == [
        (tier["budget"], False),
        (tier["balanced"], False),
        (tier["premium"], True),
    ]
    assert all(isinstance(item, str) for item in items) and len(items) > 1
    assert REFUSAL not in "".join(items)  # type: ignore[arg-type]
    response = stream.response
    assert response is not None and response.model == tier["premium"]
    assert "".join(items) == response.text  # type: ignore[arg-type]
    assert response.cascade is not None and not response.cascade.replaced
    assert response.cost == pytest.approx(sum(s.cost for s in response.cascade.steps))


# -- replace: shown at once, visibly replaced -------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_replace_marks_a_withdrawn_answer(fake: FakeProviderServer, name: str) -> None:
    provider = make(name)
    tier = models(provider)
    fake.queue(Reply(REFUSAL), model=tier["budget"])
    stream = provider.stream(EASY, max_tokens=64, cascade_streaming="replace")
    items = list(stream.events())

    assert sent(fake) == [(tier["budget"], True), (tier["balanced"], True)]
    markers = [i for i, item in enumerate(items) if isinstance(item, o.Replaced)]
    assert len(markers) == 1
    before, after = items[: markers[0]], items[markers[0] + 1 :]
    marker = items[markers[0]]
    assert isinstance(marker, o.Replaced)
    assert "".join(before) == marker.text == REFUSAL  # type: ignore[arg-type]
    assert marker.step.model == tier["budget"] and marker.step.passed is False
    assert marker.by == f"{name}/{tier['balanced']}" and "refusal" in marker.separator
    response = stream.response
    assert response is not None and response.model == tier["balanced"]
    assert "".join(after) == response.text == stream.text  # type: ignore[arg-type]
    assert response.cascade is not None and response.cascade.replaced
    assert response.cascade.streaming == "replace"


def test_replace_in_text_shows_a_separator_line(fake: FakeProviderServer) -> None:
    provider = make("openai", cascade_policy=o.CascadePolicy(skip_below=0, streaming="replace"))
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    text = "".join(provider.stream_text(EASY, max_tokens=64))
    shown, replacement = text.split("\n\n[orkestra: the answer above, from gpt-4o-mini,")
    assert shown == REFUSAL
    assert "replaced by openai/gpt-4.1-mini's answer:]\n\n[gpt-4.1-mini]" in replacement


def test_replace_with_a_passing_answer_is_a_plain_stream(fake: FakeProviderServer) -> None:
    provider = make("google")
    stream = provider.stream(EASY, max_tokens=64, cascade_streaming="replace")
    chunks = list(stream)
    assert len(chunks) > 1 and sent(fake) == [("gemini-2.5-flash-lite", True)]
    assert stream.response is not None and stream.response.cascade is not None
    assert not stream.response.cascade.replaced


def test_events_of_a_replaced_stream(fake: FakeProviderServer) -> None:
    provider = make("anthropic")
    seen: list[Any] = []
    provider.event("on_chunk")(lambda e: seen.append("chunk"))
    provider.event("on_cascade_step")(lambda e: seen.append(("step", e["escalating"])))
    provider.event("on_stream_complete")(lambda e: seen.append("complete"))
    provider.event("on_response")(lambda e: seen.append("response"))
    fake.queue(Reply(REFUSAL), model="claude-haiku-4-5")
    list(provider.stream(EASY, max_tokens=64, cascade_streaming="replace"))
    first = seen.index(("step", True))
    assert set(seen[:first]) == {"chunk"} and seen[first + 1] == "chunk"
    assert seen[-4:] == ["chunk", ("step", False), "complete", "response"]


def test_closing_a_cascade_stream_early_settles_its_budget(fake: FakeProviderServer) -> None:
    budget = o.Budget(1.0)
    provider = make("openai", budget=budget)
    fake.queue(Reply("word " * 200), model="gpt-4o-mini")
    stream = provider.stream(EASY, max_tokens=512, cascade_streaming="replace")
    next(iter(stream))
    stream.close()
    assert budget.reserved == 0.0


def test_a_cascade_stream_closed_after_a_replacement_is_logged_with_what_it_billed(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    log = SQLiteUsageLog(tmp_path / "usage.db")
    try:
        provider = make("openai", usage_sink=UsageSink(log))
        fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
        fake.queue(Reply("word " * 200), model="gpt-4.1-mini")
        stream = provider.stream(EASY, max_tokens=512, cascade_streaming="replace")
        items = stream.events()
        marker = next(item for item in items if isinstance(item, o.Replaced))
        next(items)  # the stronger answer has begun
        stream.close()
        (row,) = log.query()
    finally:
        log.close()
    assert row.status == "StreamClosed"
    assert row.cost == pytest.approx(marker.step.cost) and row.cost > 0
    assert row.attempts_detail is not None and row.attempts_detail[0]["discarded"] is True


def test_a_routed_stream_has_events_too(fake: FakeProviderServer) -> None:
    stream = make("openai", mode="route").stream(EASY, max_tokens=64)
    assert all(isinstance(item, str) for item in stream.events())
    assert stream.response is not None and stream.response.cascade is None


# -- async ------------------------------------------------------------------------------------


async def _collect(provider: o.Provider, **kwargs: Any) -> tuple[list[Any], o.Response | None]:
    try:
        stream = await provider.astream(EASY, max_tokens=64, **kwargs)
        items = [item async for item in stream.events()]
        return items, stream.response
    finally:
        await provider.aclose()


@pytest.mark.parametrize("name", PROVIDERS)
def test_async_replace_and_buffer(fake: FakeProviderServer, name: str) -> None:
    provider = make(name)
    tier = models(provider)
    fake.queue(Reply(REFUSAL), model=tier["budget"], times=2)
    replaced, response = asyncio.run(_collect(provider, cascade_streaming="replace"))
    assert [type(i).__name__ for i in replaced].count("Replaced") == 1
    assert response is not None and response.cascade is not None and response.cascade.replaced
    held, response = asyncio.run(_collect(provider))
    assert all(isinstance(i, str) for i in held) and REFUSAL not in "".join(held)
    assert response is not None and response.model == tier["balanced"]
    assert sent(fake)[2:] == [(tier["budget"], False), (tier["balanced"], False)]  # both held


def test_async_stream_text_shows_the_separator(fake: FakeProviderServer) -> None:
    provider = make("google")
    fake.queue(Reply(REFUSAL), model="gemini-2.5-flash-lite")

    async def text() -> str:
        try:
            chunks = provider.astream_text(EASY, max_tokens=64, cascade_streaming="replace")
            return "".join([c async for c in chunks])
        finally:
            await provider.aclose()

    shown = asyncio.run(text())
    assert shown.startswith(REFUSAL + "\n\n[orkestra: the answer above")
    assert shown.endswith("What is the capital of Japan?")
