"""One scenario table, run through the sync API and the async API (``achat``/``astream``) against
the fake provider server: each scenario must end with the same observable outcome either way —
text, model, tier, every attempt and its error, cost, the requests sent, the events in order,
what middleware saw.

A scenario is written once against :class:`Mode`, which makes each call either with the sync
methods or with the async ones inside ``asyncio.run`` (closing the async clients before the
loop ends, as an application would). Every async-mode test also runs the scenario in sync mode
and compares the two outcomes field by field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

import orkestra as o
from orkestra.hooks import global_hooks
from orkestra.resilience import default_breaker, process_budget
from orkestra.testing import FakeProviderServer, Fault, Reply

T = TypeVar("T")
FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.005, deadline=20.0)
PROMPT = "What is the capital of Japan?"
POEM = "Write a short poem about rivers and the sea"
EVENTS = (
    "on_request",
    "on_route",
    "on_chat",
    "on_stream",
    "on_chunk",
    "on_stream_complete",
    "on_response",
    "on_error",
    "on_fallback",
    "on_cascade_step",
)

Client = o.Provider | o.MultiProvider


# -- making calls in one mode or the other ---------------------------------------------------


@dataclass
class Streamed:
    chunks: list[str]
    response: o.Response | None


class Mode:
    """How a scenario calls: ``chat``/``stream`` (sync) or ``achat``/``astream`` (async)."""

    name = ""

    def chat(self, client: Client, *args: Any, **kwargs: Any) -> o.Response:
        raise NotImplementedError

    def stream(self, client: Client, *args: Any, **kwargs: Any) -> Streamed:
        raise NotImplementedError

    def events(self, client: Client, *args: Any, **kwargs: Any) -> Streamed:
        """A stream read through ``stream.events()``: text, and ``Replaced`` markers as
        ``("Replaced", withdrawn text, by)``."""
        raise NotImplementedError


def _item(item: str | o.Replaced) -> Any:
    return ("Replaced", item.text, item.by) if isinstance(item, o.Replaced) else item


class Sync(Mode):
    name = "sync"

    def chat(self, client: Client, *args: Any, **kwargs: Any) -> o.Response:
        return client.chat(*args, **kwargs)

    def stream(self, client: Client, *args: Any, **kwargs: Any) -> Streamed:
        stream = client.stream(*args, **kwargs)
        chunks = list(stream)
        assert stream.text == "".join(chunks)
        return Streamed(chunks, stream.response)

    def events(self, client: Client, *args: Any, **kwargs: Any) -> Streamed:
        stream = client.stream(*args, **kwargs)
        return Streamed([_item(item) for item in stream.events()], stream.response)


class Async(Mode):
    name = "async"

    def chat(self, client: Client, *args: Any, **kwargs: Any) -> o.Response:
        async def call() -> o.Response:
            return await client.achat(*args, **kwargs)

        return asyncio.run(self._closing(client, call))

    def stream(self, client: Client, *args: Any, **kwargs: Any) -> Streamed:
        async def call() -> Streamed:
            stream = await client.astream(*args, **kwargs)
            chunks = [chunk async for chunk in stream]
            assert stream.text == "".join(chunks)
            return Streamed(chunks, stream.response)

        return asyncio.run(self._closing(client, call))

    def events(self, client: Client, *args: Any, **kwargs: Any) -> Streamed:
        async def call() -> Streamed:
            stream = await client.astream(*args, **kwargs)
            items = [_item(item) async for item in stream.events()]
            return Streamed(items, stream.response)

        return asyncio.run(self._closing(client, call))

    @staticmethod
    async def _closing(client: Client, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        finally:
            for provider in client.providers if isinstance(client, o.MultiProvider) else [client]:
                await provider.aclose()


MODES: dict[str, Mode] = {"sync": Sync(), "async": Async()}


# -- what is compared ------------------------------------------------------------------------


def response_outcome(response: o.Response | None) -> dict[str, Any]:
    assert response is not None
    return {
        "text": response.text,
        "provider": response.provider,
        "model": response.model,
        "tier": response.tier,
        "cost": response.cost,
        "total_cost": response.total_cost,
        "usage": response.usage,
        "attempts": [(a.provider, a.model, a.error, a.cost) for a in response.attempts],
        "reason": response.routing.reason,
    }


def error_outcome(error: BaseException) -> dict[str, Any]:
    return {
        "error": type(error).__name__,
        "partial_text": getattr(error, "partial_text", None),
        "attempts": [(a.provider, a.model, a.error) for a in getattr(error, "attempts", ())],
    }


def summary(event: dict[str, Any]) -> tuple[str, Any]:
    """An event as compared: its name and the payload field that tells it apart."""
    name = event["event"]
    if name == "on_request":
        return name, event["request"]["prompt"]
    if name in ("on_route", "on_chat", "on_stream"):
        return name, event["decision"].model
    if name == "on_chunk":
        return name, event["chunk"]
    if name in ("on_response", "on_stream_complete"):
        return name, (event["response"].model, event["response"].text)
    if name == "on_error":
        return name, (type(event["error"]).__name__, event.get("partial_text"))
    if name == "on_cascade_step":
        return name, (event["step"].model, event["step"].passed, event["to"])
    return name, (event["from_model"], event["to_model"], event["error"])


def record_events(client: Client, into: list[tuple[str, Any]], *, asynchronous: bool) -> None:
    """Record every event of ``client``'s calls (with a plain or an ``async def`` handler)."""
    for name in EVENTS:
        if asynchronous:

            async def handler(event: dict[str, Any]) -> None:
                await asyncio.sleep(0)
                into.append(summary(event))

            client.event(name)(handler)
        else:
            client.event(name)(lambda event: into.append(summary(event)))


GENERATION_PATHS = (
    "/chat/completions",
    "/responses",
    "/messages",
    ":generateContent",
    ":streamGenerateContent",
)


def generations(fake: FakeProviderServer) -> list[tuple[str, str | None, bool]]:
    endings = GENERATION_PATHS
    return [(r.provider, r.model, r.stream) for r in fake.requests if r.path.endswith(endings)]


# -- the scenarios ---------------------------------------------------------------------------


@dataclass
class Run:
    """One scenario's run: the fake server, the mode, and the providers it opened."""

    fake: FakeProviderServer
    mode: Mode
    opened: list[o.Provider] = field(default_factory=list)

    def provider(self, name: str, **kwargs: Any) -> o.Provider:
        options: dict[str, Any] = {"retry": FAST, "circuit_breaker": o.CircuitBreaker()}
        self.opened.append(o.Provider(name, self.fake.api_key, **{**options, **kwargs}))
        return self.opened[-1]


Scenario = Callable[[Run], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def plain_chat(run: Run) -> dict[str, Any]:
    response = run.mode.chat(run.provider("openai"), PROMPT, max_tokens=64)
    assert response.text.endswith(PROMPT) and response.cost > 0
    assert [a.error for a in response.attempts] == [None]
    return response_outcome(response)


@scenario
def streaming(run: Run) -> dict[str, Any]:
    streamed = run.mode.stream(run.provider("anthropic"), POEM, max_tokens=256)
    assert len(streamed.chunks) > 1
    assert streamed.response is not None and streamed.response.text == "".join(streamed.chunks)
    return {"chunks": streamed.chunks, **response_outcome(streamed.response)}


@scenario
def rate_limited_then_ok(run: Run) -> dict[str, Any]:
    run.fake.queue(Fault.status(429), provider="google")
    response = run.mode.chat(run.provider("google"), PROMPT, max_tokens=64)
    assert [a.error for a in response.attempts] == ["RateLimitError", None]
    assert len({(a.provider, a.model) for a in response.attempts}) == 1  # retried, same model
    return response_outcome(response)


@scenario
def server_error_falls_back(run: Run) -> dict[str, Any]:
    provider = run.provider(
        "openai",
        smart_routing=False,
        fallback="up-then-down",
        circuit_breaker=o.CircuitBreaker(failure_threshold=100),
    )
    balanced = provider.tier_models()["balanced"].id
    premium = provider.tier_models()["premium"].id
    move = ("on_fallback", (balanced, premium, "ProviderUnavailableError"))
    events: list[tuple[str, Any]] = []
    record_events(provider, events, asynchronous=False)
    run.fake.queue(Fault.status(500), provider="openai", model=balanced, times=3)
    response = run.mode.chat(provider, PROMPT, max_tokens=64)
    assert [a.model for a in response.attempts] == [balanced] * 3 + [premium]
    assert response.tier == "premium" and "fallback" in response.routing.reason
    assert events[-2:] == [move, ("on_response", (premium, response.text))]
    chat_events = list(events)
    events.clear()
    run.fake.queue(Fault.status(500), provider="openai", model=balanced, times=3)
    streamed = run.mode.stream(provider, POEM, max_tokens=256)
    assert streamed.response is not None and streamed.response.model == premium
    assert [name for name, _ in events][-3:] == ["on_fallback", "on_stream_complete", "on_response"]
    assert events[-3] == move
    return {
        "events": [chat_events, events],
        "chat": response_outcome(response),
        "stream": response_outcome(streamed.response),
    }


@scenario
def stream_cut_after_text(run: Run) -> dict[str, Any]:
    provider = run.provider("openai")
    events: list[tuple[str, Any]] = []
    record_events(provider, events, asynchronous=False)
    run.fake.queue(Fault.cut_stream(2), provider="openai")
    with pytest.raises(o.StreamInterruptedError) as info:
        run.mode.stream(provider, POEM, max_tokens=256)
    assert info.value.partial_text
    chunks = [payload for name, payload in events if name == "on_chunk"]
    assert "".join(chunks) == info.value.partial_text  # what was handed out, and nothing more
    assert events[-1] == ("on_error", ("StreamInterruptedError", info.value.partial_text))
    assert len(generations(run.fake)) == 1  # text was handed out: never retried
    return {"events": events, **error_outcome(info.value)}


@scenario
def budget_exceeded(run: Run) -> dict[str, Any]:
    provider = run.provider("anthropic", budget=1e-9)
    with pytest.raises(o.BudgetExceededError) as info:
        run.mode.chat(provider, PROMPT, max_tokens=64)
    assert generations(run.fake) == []  # refused before anything was sent
    return {
        "spent": provider.budget.spent if provider.budget else None,
        **error_outcome(info.value),
    }


@scenario
def circuit_open(run: Run) -> dict[str, Any]:
    breaker = o.CircuitBreaker(failure_threshold=1, cooldown=60.0)
    provider = run.provider(
        "google", smart_routing=False, max_retries=0, fallback="none", circuit_breaker=breaker
    )
    run.fake.queue(Fault.status(500), provider="google")
    with pytest.raises(o.ProviderUnavailableError) as first:
        run.mode.chat(provider, PROMPT, max_tokens=64)
    with pytest.raises(o.CircuitOpenError) as second:
        run.mode.chat(provider, PROMPT, max_tokens=64)
    assert len(generations(run.fake)) == 1  # the open circuit sent nothing
    return {"first": error_outcome(first.value), "second": error_outcome(second.value)}


@scenario
def multi_provider_strategy(run: Run) -> dict[str, Any]:
    multi = o.MultiProvider(
        [run.provider("openai"), run.provider("google"), run.provider("anthropic")],
        strategy="cheapest",
        retry=FAST,
    )
    response = run.mode.chat(multi, PROMPT, max_tokens=64)
    assert response.routing.strategy == "cheapest"
    streamed = run.mode.stream(multi, POEM, max_tokens=256, strategy="smartest")
    assert streamed.response is not None and streamed.response.routing.strategy == "smartest"
    return {
        "chat": response_outcome(response),
        "stream": response_outcome(streamed.response),
        "sent": generations(run.fake),
    }


@scenario
def system_prompt(run: Run) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": PROMPT},
    ]
    response = run.mode.chat(run.provider("anthropic"), messages=messages, max_tokens=64)
    body = run.fake.requests[-1].body
    assert body["system"] == "You answer in one word."  # Anthropic's top-level system prompt
    assert body["messages"] == [{"role": "user", "content": PROMPT}]
    return {"system": body["system"], "messages": body["messages"], **response_outcome(response)}


CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


@scenario
def structured_output(run: Run) -> dict[str, Any]:
    provider = run.provider("openai")
    run.fake.queue(Reply('{"city": "Tokyo"}'), provider="openai", times=2)
    response = run.mode.chat(provider, PROMPT, response_format=CITY, max_tokens=64)
    assert response.parsed == {"city": "Tokyo"}
    streamed = run.mode.stream(provider, PROMPT, response_format=CITY, max_tokens=64)
    assert streamed.response is not None and streamed.response.parsed == {"city": "Tokyo"}
    run.fake.queue(Reply("Tokyo, of course."), provider="openai", times=2)
    with pytest.raises(o.StructuredOutputError) as chat_error:
        run.mode.chat(provider, PROMPT, response_format=CITY, max_tokens=64)
    with pytest.raises(o.StructuredOutputError) as stream_error:
        run.mode.stream(provider, PROMPT, response_format=CITY, max_tokens=64)
    for error in (chat_error.value, stream_error.value):
        assert error.response is not None and error.response.text == "Tokyo, of course."
        assert error.response.cost > 0  # made and billed all the same
    return {
        "parsed": [response.parsed, streamed.response.parsed],
        "errors": [error_outcome(chat_error.value), error_outcome(stream_error.value)],
        "costs": [chat_error.value.response.cost, stream_error.value.response.cost],
    }


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@scenario
def tool_round_trip_on_every_provider(run: Run) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    for name in ("openai", "anthropic", "google"):
        provider = run.provider(name)
        messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris now?"}]
        asked = run.mode.chat(provider, messages=messages, tools=[WEATHER], max_tokens=64)
        assert [c.name for c in asked.tool_calls] == ["get_weather"]
        messages += [asked.message()]
        messages += [
            {"role": "tool", "tool_call_id": c.id, "content": "sunny"} for c in asked.tool_calls
        ]
        answered = run.mode.stream(provider, messages=messages, tools=[WEATHER], max_tokens=64)
        assert answered.response is not None and "sunny" in answered.response.text
        outcome[name] = [response_outcome(asked), asked.tool_calls, answered.chunks]
    return outcome


@scenario
def sticky_session(run: Run) -> dict[str, Any]:
    provider = run.provider("google")
    hard = "Prove that there are infinitely many primes, then derive the prime number theorem"
    assert provider.route(hard).tier != "budget" and provider.route("hi").tier == "budget"
    first = run.mode.chat(provider, hard, session_id="s-1", max_tokens=64)
    pin = provider.sessions.get("s-1")
    assert pin is not None and pin.model == first.model  # pinned by the chat's response
    second = run.mode.stream(provider, "hi", session_id="s-1", max_tokens=64)
    assert second.response is not None
    assert second.response.model == first.model  # an easier turn does not move it down
    return {"models": [first.model, second.response.model], "pin": pin}


def _events_in_both(run: Run, *, asynchronous: bool) -> dict[str, Any]:
    provider = run.provider("google")
    events: list[tuple[str, Any]] = []
    record_events(provider, events, asynchronous=asynchronous)
    response = run.mode.chat(provider, PROMPT, max_tokens=64)
    chat_events = list(events)
    assert [name for name, _ in chat_events] == ["on_request", "on_route", "on_chat", "on_response"]
    events.clear()
    streamed = run.mode.stream(provider, POEM, max_tokens=256)
    names = [name for name, _ in events]
    assert names[:3] == ["on_request", "on_route", "on_stream"]
    assert names[3:-2] == ["on_chunk"] * len(streamed.chunks)
    assert names[-2:] == ["on_stream_complete", "on_response"]
    events.clear()
    run.fake.queue(Fault.status(400), provider="google")
    with pytest.raises(o.BadRequestError):
        run.mode.chat(provider, PROMPT, max_tokens=64)
    assert events[-1] == ("on_error", ("BadRequestError", None))
    return {
        "chat": chat_events,
        "stream": [*chat_events, *events],
        "response": response_outcome(response),
        "error_events": events,
    }


@scenario
def events_sync_handlers(run: Run) -> dict[str, Any]:
    return _events_in_both(run, asynchronous=False)


@scenario
def events_async_handlers(run: Run) -> dict[str, Any]:
    return _events_in_both(run, asynchronous=True)


@scenario
def events_global_handler(run: Run) -> dict[str, Any]:
    events: list[tuple[str, Any]] = []
    o.register_event("on_route")(lambda e: events.append(summary(e)))
    o.register_event("on_response")(lambda e: events.append(summary(e)))
    response = run.mode.chat(run.provider("openai"), PROMPT, max_tokens=64)
    assert [name for name, _ in events] == ["on_route", "on_response"]
    return {"events": events, **response_outcome(response)}


def _middleware(run: Run, *, asynchronous: bool) -> dict[str, Any]:
    provider = run.provider("openai")
    seen: list[Any] = []

    def before(data: dict[str, Any]) -> None:
        seen.append(("before", data["prompt"], data["stream"]))
        data["prompt"] = data["prompt"] + " (be brief)"
        data["model"] = "gpt-4o-mini"

    def after(result: Any) -> None:
        if isinstance(result, o.Response):
            seen.append(("after", result.model, result.text))
        else:  # a stream: not read yet
            seen.append(("after", type(result).__name__.removeprefix("Async")))

    if asynchronous:

        @provider.middleware
        async def edit(data: dict[str, Any], next_: Any) -> Any:
            before(data)
            await asyncio.sleep(0)
            result = await next_(data)
            after(result)
            return result

    else:

        @provider.middleware
        def edit(data: dict[str, Any], next_: Any) -> Any:
            before(data)
            result = next_(data)
            after(result)
            return result

    response = run.mode.chat(provider, PROMPT, max_tokens=64)
    assert response.model == "gpt-4o-mini"
    assert response.text.endswith("(be brief)")
    assert run.fake.requests[-1].body["messages"][-1]["content"] == PROMPT + " (be brief)"
    streamed = run.mode.stream(provider, POEM, max_tokens=256)
    assert streamed.response is not None and streamed.response.model == "gpt-4o-mini"
    assert seen == [
        ("before", PROMPT, False),
        ("after", "gpt-4o-mini", response.text),
        ("before", POEM, True),
        ("after", "ResponseStream"),
    ]
    return {"seen": seen, "chat": response_outcome(response), "stream": streamed.chunks}


@scenario
def middleware_sync(run: Run) -> dict[str, Any]:
    return _middleware(run, asynchronous=False)


@scenario
def middleware_async(run: Run) -> dict[str, Any]:
    return _middleware(run, asynchronous=True)


# -- cascades ---------------------------------------------------------------------------------

REFUSAL = "I'm sorry, but I can't help with that."


def cascade_outcome(response: o.Response | None) -> dict[str, Any]:
    assert response is not None and response.cascade is not None
    report = response.cascade
    return {
        **response_outcome(response),
        "steps": [(s.model, s.tier, s.passed, s.accepted, s.cost, s.note) for s in report.steps],
        "skipped": report.skipped,
        "streaming": report.streaming,
        "replaced": report.replaced,
        "discarded": [a.discarded for a in response.attempts],
        "savings": response.savings,
    }


@scenario
def cascade_chat_climbs(run: Run) -> dict[str, Any]:
    provider = run.provider("openai", mode="cascade")
    events: list[tuple[str, Any]] = []
    record_events(provider, events, asynchronous=False)
    run.fake.queue(Reply(REFUSAL), provider="openai", model="gpt-4o-mini")
    response = run.mode.chat(provider, PROMPT, max_tokens=64)
    assert response.cascade is not None and response.cascade.escalated
    assert [name for name, _ in events if name != "on_request"] == [
        "on_route",
        "on_chat",
        "on_cascade_step",
        "on_cascade_step",
        "on_response",
    ]
    passed = run.mode.chat(provider, PROMPT, max_tokens=64)
    assert passed.cascade is not None and not passed.cascade.escalated
    return {"events": events, "climbed": cascade_outcome(response), "kept": cascade_outcome(passed)}


@scenario
def cascade_streams_buffer_and_replace(run: Run) -> dict[str, Any]:
    provider = run.provider(
        "anthropic", mode="cascade", cascade_policy=o.CascadePolicy(skip_below=0)
    )
    events: list[tuple[str, Any]] = []
    record_events(provider, events, asynchronous=True)
    run.fake.queue(Reply(REFUSAL), provider="anthropic", model="claude-haiku-4-5", times=2)
    held = run.mode.events(provider, PROMPT, max_tokens=64)
    assert all(isinstance(item, str) for item in held.chunks)
    buffer_events = list(events)
    events.clear()
    shown = run.mode.events(provider, PROMPT, max_tokens=64, cascade_streaming="replace")
    markers = [item for item in shown.chunks if isinstance(item, tuple)]
    assert markers == [("Replaced", REFUSAL, "anthropic/claude-sonnet-4-6")]
    return {
        "buffer": [held.chunks, cascade_outcome(held.response), buffer_events],
        "replace": [shown.chunks, cascade_outcome(shown.response), events],
    }


@scenario
def cascade_fallback_and_budget(run: Run) -> dict[str, Any]:
    provider = run.provider("google", mode="cascade", circuit_breaker=o.CircuitBreaker(100))
    run.fake.queue(Fault.status(503), provider="google", model="gemini-2.5-flash-lite", times=3)
    fell_back = run.mode.chat(provider, PROMPT, max_tokens=64)
    assert [a.error for a in fell_back.attempts][:3] == ["ProviderUnavailableError"] * 3
    sum_prompt = "Tom has 12 apples and buys 3 more. How many apples does he have now?"
    with pytest.raises(o.BudgetExceededError) as info:
        run.mode.chat(provider, sum_prompt, max_tokens=64, budget=o.Budget(0.0001))
    held = info.value.response
    assert held is not None and held.model == "gemini-2.5-flash-lite"
    return {
        "fallback": cascade_outcome(fell_back),
        "budget": [error_outcome(info.value), cascade_outcome(held)],
    }


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_global_hooks() -> Iterator[None]:
    global_hooks().clear()
    yield
    global_hooks().clear()


def play(name: str, mode: str, fake: FakeProviderServer) -> dict[str, Any]:
    """Run scenario ``name`` in ``mode`` from a clean slate; its outcome and what was sent."""
    fake.clear()
    global_hooks().clear()
    default_breaker().reset()
    process_budget().reset()
    run = Run(fake, MODES[mode])
    try:
        outcome = SCENARIOS[name](run)
    finally:
        for provider in run.opened:
            provider.close()
    # The calls went through the SDK client of their mode (Gemini's sends no such header).
    kinds = {r.headers.get("x-stainless-async") for r in fake.requests if r.provider != "google"}
    assert kinds <= ({"false"} if mode == "sync" else {"async:asyncio"})
    return {"outcome": outcome, "sent": generations(fake)}


def comparable(value: Any) -> Any:
    """Costs compared to the picodollar (sums of floats may differ in the last bit)."""
    if isinstance(value, float):
        return round(value, 12)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(comparable(v) for v in value)
    return value


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("mode", list(MODES))
def test_sync_and_async_end_the_same(mode: str, name: str, fake: FakeProviderServer) -> None:
    result = play(name, mode, fake)
    if mode == "async":
        reference = play(name, "sync", fake)
        assert comparable(result) == comparable(reference)
    assert result["outcome"]
