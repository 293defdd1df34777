"""The resilience layer's pure core: retry policy, circuit breaker, fallback order, the Flow
state machine and its sync/async/streaming drivers (scripted calls, no network)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import pytest

import orkestra as o
from orkestra._types import Candidate, RoutingDecision, Usage
from orkestra.catalog import cost_of, default_catalog
from orkestra.providers.base import Finished, StreamEvent, TextDelta, UsageReport
from orkestra.resilience import drivers
from orkestra.resilience.executor import Call, Flow, Outcome, Sleep, Stop, Target
from orkestra.resilience.fallback import fallback_chain, resolve_fallback


class Clock:
    """A manual clock for the breaker and the deadline."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock | None = None, **kwargs: object) -> o.RetryPolicy:
    clock = clock or Clock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    defaults: dict[str, object] = {"sleep": sleep, "clock": clock, "random": lambda: 1.0}
    return o.RetryPolicy(**{**defaults, **kwargs})  # type: ignore[arg-type]


def target(provider: str, model: str, *, cost: float = 0.001, budgets: Sequence[o.Budget] = ()):
    info = default_catalog().resolve(provider, model).model
    tier = default_catalog().tier_of(provider, info.id) or "balanced"
    decision = RoutingDecision(provider, info.id, tier, {}, None, "test", 0.0)
    return Target(decision, info, cost, tuple(budgets))


A = ("openai", "gpt-4o-mini")
B = ("anthropic", "claude-haiku-4-5")
C = ("google", "gemini-2.5-flash-lite")
USAGE = Usage(input_tokens=1000, output_tokens=100)


def rate_limited(retry_after: float | None = None) -> o.RateLimitError:
    return o.RateLimitError("429", provider="openai", status_code=429, retry_after=retry_after)


def unavailable() -> o.ProviderUnavailableError:
    return o.ProviderUnavailableError("529", provider="anthropic", status_code=529)


def scripted(outcomes: dict[tuple[str, str], list[Exception | None]]):
    """A call function: per (provider, model), the next error to raise (None: answer)."""
    calls: list[tuple[str, str]] = []

    def call(t: Target) -> tuple[str, Finished]:
        calls.append(t.key)
        error = outcomes.get(t.key, [None]).pop(0) if outcomes.get(t.key) else None
        if error is not None:
            raise error
        return f"answer from {t}", Finished(USAGE, "stop")

    return call, calls


# -- RetryPolicy and Timeouts -----------------------------------------------------------------


def test_backoff_doubles_to_the_cap_with_full_jitter() -> None:
    p = o.RetryPolicy(base_delay=0.5, max_delay=8.0, random=lambda: 1.0)
    assert [p.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert o.RetryPolicy(random=lambda: 0.25).backoff(3) == pytest.approx(0.5)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    p = o.RetryPolicy(retry_after_cap=20.0, random=lambda: 1.0)
    assert p.delay(rate_limited(3.0), 1) == 3.0
    assert p.delay(rate_limited(20.0), 1) == 20.0
    assert p.delay(rate_limited(21.0), 1) is None  # never slept on: fail over or raise
    assert p.delay(rate_limited(None), 2) == 1.0  # no hint: backoff
    auth = o.AuthenticationError("401", provider="openai", status_code=401)
    assert p.delay(auth, 1) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"max_retries": 1.5}, {"base_delay": float("nan")}, {"deadline": -1}],
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(o.InvalidRequestError):
        o.RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_timeouts_from_a_number_or_an_object() -> None:
    assert o.Timeouts.of(600) == o.Timeouts(connect=5.0, read=600.0)
    assert o.Timeouts.of(0.3) == o.Timeouts(connect=0.3, read=0.3)
    custom = o.Timeouts(connect=1, read=30)
    assert o.Timeouts.of(custom) is custom
    with pytest.raises(o.InvalidRequestError):
        o.Timeouts.of(-1)
    with pytest.raises(o.InvalidRequestError):
        o.Provider("openai", "k", timeout=0)


# -- circuit breaker -----------------------------------------------------------------------


def test_breaker_opens_after_n_failures_then_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = o.CircuitBreaker(failure_threshold=3, cooldown=10.0, clock=clock)
    for _ in range(2):
        assert breaker.allow(A)
        breaker.failure(A)
    assert breaker.state(A) == "closed"
    assert breaker.allow(A)
    breaker.failure(A)
    assert breaker.state(A) == "open"
    assert not breaker.allow(A)
    assert breaker.allow(B)  # per (provider, model)
    clock.now = 10.0
    assert breaker.state(A) == "half-open"
    assert breaker.allow(A)  # the probe...
    assert not breaker.allow(A)  # ...and only one
    breaker.failure(A)  # probe failed: a new cooldown
    assert breaker.state(A) == "open"
    assert breaker.retry_in(A) == pytest.approx(10.0)
    clock.now = 20.0
    assert breaker.allow(A)
    breaker.success(A)
    assert breaker.state(A) == "closed"
    assert breaker.allow(A) and breaker.allow(A)


def test_breaker_release_returns_the_probe() -> None:
    clock = Clock()
    breaker = o.CircuitBreaker(failure_threshold=1, cooldown=1.0, clock=clock)
    breaker.failure(A)
    clock.now = 1.0
    assert breaker.allow(A)
    breaker.release(A)
    assert breaker.allow(A)


def test_breaker_is_thread_safe() -> None:
    breaker = o.CircuitBreaker(failure_threshold=10_000, cooldown=60.0)
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(1000):
            if breaker.allow(A):
                breaker.failure(A)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker._circuits[A].failures == 8000
    assert breaker.state(A) == "closed"


# -- fallback order ------------------------------------------------------------------------


def cand(provider: str, model: str, tier: str, cost: float) -> Candidate:
    return Candidate(provider, model, tier, 0.5, cost)  # type: ignore[arg-type]


POOL = [
    cand("openai", "o-bud", "budget", 0.2),
    cand("openai", "o-bal", "balanced", 2.0),
    cand("openai", "o-pre", "premium", 20.0),
    cand("google", "g-bud", "budget", 0.1),
    cand("google", "g-bal", "balanced", 1.0),
    cand("google", "g-pre", "premium", 30.0),
    cand("anthropic", "a-bal", "balanced", 3.0),
]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("up-then-down", ["o-bal", "g-bal", "a-bal", "o-pre", "g-pre", "g-bud", "o-bud"]),
        ("down-then-up", ["o-bal", "g-bal", "a-bal", "g-bud", "o-bud", "o-pre", "g-pre"]),
        ("up", ["o-bal", "g-bal", "a-bal", "o-pre", "g-pre"]),
        ("down", ["o-bal", "g-bal", "a-bal", "g-bud", "o-bud"]),
        ("same-tier", ["o-bal", "g-bal", "a-bal"]),
        ("none", ["o-bal"]),
    ],
)
def test_fallback_chain_same_tier_elsewhere_first_then_adjacent_tiers_cheapest_first(
    order: str, expected: list[str]
) -> None:
    chain = fallback_chain(POOL[1], POOL, order)
    assert [c.model for c in chain] == expected


def test_fallback_from_the_top_and_bottom_tiers() -> None:
    single = [c for c in POOL if c.provider == "openai"]
    assert [c.model for c in fallback_chain(single[2], single, "up-then-down")] == [
        "o-pre",
        "o-bal",
        "o-bud",
    ]
    assert [c.model for c in fallback_chain(single[0], single, "up-then-down")] == [
        "o-bud",
        "o-bal",
        "o-pre",
    ]


def test_resolve_fallback() -> None:
    assert resolve_fallback(None, 2) == "up-then-down"
    assert resolve_fallback(None, 0) == "none"  # max_retries=0 keeps its old meaning
    assert resolve_fallback("up", 0) == "up"
    with pytest.raises(o.InvalidRequestError, match="sideways"):
        resolve_fallback("sideways", 2)


# -- the Flow state machine ------------------------------------------------------------------


def test_flow_retries_with_the_providers_delay_then_succeeds() -> None:
    clock = Clock()
    flow = Flow([target(*A)], policy(clock), o.CircuitBreaker())
    step = flow.next_step()
    assert isinstance(step, Call) and step.first
    flow.record(Outcome(rate_limited(3.0)))
    assert flow.next_step() == Sleep(3.0)
    step = flow.next_step()
    assert isinstance(step, Call) and step.number == 2 and not step.first
    flow.record(Outcome(None, USAGE, 0.01))
    assert [a.error for a in flow.attempts] == ["RateLimitError", None]
    assert flow.retries == 1 and flow.fallbacks == 0


def test_flow_falls_back_at_once_when_the_provider_asks_for_too_long() -> None:
    flow = Flow([target(*A), target(*B)], policy(), o.CircuitBreaker())
    flow.next_step()
    flow.record(Outcome(rate_limited(60.0)))
    step = flow.next_step()  # no Sleep: the ask is over the 20 s cap
    assert isinstance(step, Call) and step.target.key == B


def test_flow_raises_with_retry_after_when_nothing_is_left() -> None:
    flow = Flow([target(*A)], policy(), o.CircuitBreaker())
    flow.next_step()
    flow.record(Outcome(rate_limited(60.0)))
    step = flow.next_step()
    assert isinstance(step, Stop)
    assert isinstance(step.error, o.RateLimitError) and step.error.retry_after == 60.0
    assert len(step.error.attempts) == 1


def test_flow_exhausts_retries_then_falls_back_and_records_everything() -> None:
    call, calls = scripted({A: [unavailable()] * 3, B: [unavailable()]})
    flow = Flow([target(*A), target(*B)], policy(max_retries=2), o.CircuitBreaker())
    result = drivers.complete(flow, call)
    assert calls == [A, A, A, B, B]
    assert result.target.key == B
    assert [a.ok for a in result.attempts] == [False] * 4 + [True]
    assert (result.retries, result.fallbacks) == (3, 1)
    model = default_catalog().resolve(*B).model
    assert result.attempts[-1].cost == pytest.approx(cost_of(model, USAGE).total)


@pytest.mark.parametrize(
    "error",
    [
        o.AuthenticationError("401", provider="openai", status_code=401),
        o.BadRequestError("400", provider="openai", status_code=400),
        o.InvalidRequestError("bad"),
    ],
)
def test_auth_and_bad_requests_surface_at_once(error: o.OrkestraError) -> None:
    call, calls = scripted({A: [error]})
    flow = Flow([target(*A), target(*B)], policy(), o.CircuitBreaker())
    with pytest.raises(type(error)) as info:
        drivers.complete(flow, call)
    assert calls == [A]
    assert len(info.value.attempts) == 1


def test_a_missing_model_falls_back_without_retrying() -> None:
    gone = o.ModelNotFoundError("404", provider="openai", status_code=404)
    call, calls = scripted({A: [gone]})
    result = drivers.complete(Flow([target(*A), target(*B)], policy(), o.CircuitBreaker()), call)
    assert calls == [A, B] and result.target.key == B


def test_the_deadline_stops_new_attempts() -> None:
    clock = Clock()
    call, calls = scripted({A: [unavailable()] * 10, B: [unavailable()] * 10})

    def slow(t: Target) -> tuple[str, Finished]:
        clock.now += 4.0
        return call(t)

    flow = Flow([target(*A), target(*B)], policy(clock, deadline=10.0), o.CircuitBreaker())
    with pytest.raises(o.ProviderUnavailableError, match="deadline") as info:
        drivers.complete(flow, slow)
    assert clock.now < 10.0 + 4.0 + 8.0  # nothing started after the deadline
    assert len(info.value.attempts) == len(calls) <= 3


def test_open_circuits_are_skipped_and_all_open_is_a_typed_error() -> None:
    clock = Clock()
    breaker = o.CircuitBreaker(failure_threshold=1, cooldown=30.0, clock=clock)
    breaker.failure(A)
    call, calls = scripted({})
    result = drivers.complete(Flow([target(*A), target(*B)], policy(clock), breaker), call)
    assert calls == [B] and result.target.key == B
    breaker.failure(B)
    with pytest.raises(o.CircuitOpenError) as info:
        drivers.complete(Flow([target(*A), target(*B)], policy(clock), breaker), call)
    assert isinstance(info.value, o.ProviderUnavailableError)
    assert info.value.retry_after == pytest.approx(30.0)
    assert info.value.attempts == ()


def test_failures_open_the_breaker_during_a_call() -> None:
    breaker = o.CircuitBreaker(failure_threshold=2, cooldown=30.0)
    call, calls = scripted({A: [unavailable()] * 5})
    result = drivers.complete(Flow([target(*A), target(*B)], policy(max_retries=4), breaker), call)
    assert calls == [A, A, B]  # the third try of A was skipped: its circuit opened
    assert result.target.key == B
    assert breaker.state(A) == "open"


def test_budget_reservations_are_settled_with_the_billed_cost() -> None:
    budget = o.Budget(1.0)
    call, _ = scripted({A: [unavailable()]})
    flow = Flow([target(*A, cost=0.4, budgets=[budget])], policy(), o.CircuitBreaker())
    result = drivers.complete(flow, call)
    assert budget.reserved == 0.0
    assert budget.spent == pytest.approx(result.cost.total)


def test_a_target_over_budget_is_skipped_and_nothing_affordable_raises_before_any_call() -> None:
    budget = o.Budget(0.01)
    call, calls = scripted({})
    expensive = target(*A, cost=0.05, budgets=[budget])
    cheap = target(*B, cost=0.001, budgets=[budget])
    result = drivers.complete(Flow([expensive, cheap], policy(), o.CircuitBreaker()), call)
    assert calls == [B] and result.target.key == B
    with pytest.raises(o.BudgetExceededError) as info:
        drivers.complete(Flow([expensive], policy(), o.CircuitBreaker()), call)
    assert info.value.attempts == () and calls == [B]


# -- sync / async parity ---------------------------------------------------------------------


def _scenario() -> tuple[list[Target], dict[tuple[str, str], list[Exception | None]]]:
    return (
        [target(*A), target(*B), target(*C)],
        {A: [rate_limited(2.0), unavailable(), unavailable()], B: [unavailable()] * 3},
    )


def _shape(result: drivers.Result) -> list[tuple[str, str | None, float]]:
    return [(f"{a.provider}/{a.model}", a.error, round(a.cost, 9)) for a in result.attempts]


def test_sync_and_async_drivers_take_the_same_decisions() -> None:
    targets, script = _scenario()
    call, sync_calls = scripted({k: list(v) for k, v in script.items()})
    sync_sleeps: list[float] = []
    sync_result = drivers.complete(
        Flow(targets, policy(sleep=sync_sleeps.append), o.CircuitBreaker()), call
    )

    acall_sync, async_calls = scripted({k: list(v) for k, v in script.items()})
    async_sleeps: list[float] = []

    async def acall(t: Target) -> tuple[str, Finished]:
        await asyncio.sleep(0)
        return acall_sync(t)

    async def asleep(seconds: float) -> None:
        async_sleeps.append(seconds)

    async_result = asyncio.run(
        drivers.acomplete(Flow(targets, policy(), o.CircuitBreaker()), acall, sleep=asleep)
    )
    assert sync_calls == async_calls == [A, A, A, B, B, B, C]
    assert sync_sleeps == async_sleeps == [2.0, 1.0, 0.5, 1.0]  # retry-after, then backoff
    assert _shape(sync_result) == _shape(async_result)


# -- streaming driver ------------------------------------------------------------------------


def events_for(script: dict[tuple[str, str], list[list[object]]]):
    """Per target, the next stream: a list of events, an exception meaning 'break here'."""

    def open_stream(t: Target) -> Iterator[StreamEvent]:
        for item in script[t.key].pop(0):
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]

    return open_stream


DONE = Finished(USAGE, "stop")
CUT = o.ProviderConnectionError("cut", provider="x")


def test_a_stream_failing_before_its_first_chunk_falls_back_transparently() -> None:
    start = UsageReport(Usage(input_tokens=1000))
    open_stream = events_for({A: [[start, CUT]], B: [[TextDelta("Hel"), TextDelta("lo"), DONE]]})
    flow = Flow([target(*A), target(*B)], policy(max_retries=0), o.CircuitBreaker())
    items = list(drivers.stream(flow, open_stream))
    assert items[:2] == ["Hel", "lo"]
    result = items[2]
    assert isinstance(result, drivers.Result)
    first = result.attempts[0]
    assert first.error == "ProviderConnectionError"
    assert first.usage == Usage(input_tokens=1000)  # what the provider reported is billed
    model = default_catalog().resolve(*A).model
    assert first.cost == pytest.approx(cost_of(model, first.usage).total)


def test_a_stream_failing_after_text_raises_with_the_partial_text_and_never_retries() -> None:
    start = UsageReport(Usage(input_tokens=1000))
    open_stream = events_for({A: [[start, TextDelta("Hel"), CUT]], B: [[DONE]]})
    budget = o.Budget(None)
    flow = Flow([target(*A, budgets=[budget]), target(*B)], policy(), o.CircuitBreaker())
    received: list[object] = []
    with pytest.raises(o.StreamInterruptedError) as info:
        for item in drivers.stream(flow, open_stream):
            received.append(item)
    assert received == ["Hel"]
    assert info.value.partial_text == "Hel"
    assert info.value.usage == Usage(input_tokens=1000)
    assert len(info.value.attempts) == 1
    assert budget.spent == pytest.approx(info.value.attempts[0].cost) and budget.spent > 0


def test_closing_a_stream_settles_its_reservation() -> None:
    budget = o.Budget(1.0)
    open_stream = events_for({A: [[TextDelta("a"), TextDelta("b"), DONE]]})
    flow = Flow([target(*A, cost=0.5, budgets=[budget])], policy(), o.CircuitBreaker())
    stream = drivers.stream(flow, open_stream)
    assert next(stream) == "a"
    assert budget.reserved == 0.5
    stream.close()  # type: ignore[attr-defined]
    assert budget.reserved == 0.0


def test_async_stream_parity() -> None:
    script: dict[tuple[str, str], list[list[object]]] = {
        A: [[CUT]],
        B: [[TextDelta("x"), TextDelta("y"), DONE]],
    }

    def sync_open() -> Callable[[Target], Iterator[StreamEvent]]:
        return events_for({k: [list(s) for s in v] for k, v in script.items()})

    def async_open() -> Callable[[Target], AsyncIterator[StreamEvent]]:
        inner = sync_open()

        async def open_stream(t: Target) -> AsyncIterator[StreamEvent]:
            for event in inner(t):
                yield event

        return open_stream

    targets = [target(*A), target(*B)]
    sync_flow = Flow(targets, policy(max_retries=0), o.CircuitBreaker())
    sync_items = list(drivers.stream(sync_flow, sync_open()))

    async def collect() -> list[object]:
        flow = Flow(targets, policy(max_retries=0), o.CircuitBreaker())
        return [item async for item in drivers.astream(flow, async_open())]

    async_items = asyncio.run(collect())
    assert sync_items[:2] == async_items[:2] == ["x", "y"]
    assert _shape(sync_items[2]) == _shape(async_items[2])  # type: ignore[arg-type]
