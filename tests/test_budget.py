"""Budgets: checked before each call, charged with the real billed usage, enforced under
concurrency, preferring the cheapest model near the cap."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

import orkestra as o
from orkestra.catalog import cost_of, default_catalog
from orkestra.resilience import default_breaker, process_budget
from orkestra.testing import FakeProviderServer, Reply

PROMPT = "Explain how a suspension bridge carries its load"


_opened: list[o.Provider] = []


def make(name: str, key: str, **kwargs: object) -> o.Provider:
    _opened.append(o.Provider(name, key, **kwargs))  # type: ignore[arg-type]
    return _opened[-1]


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    default_breaker().reset()
    yield
    while _opened:
        _opened.pop().close()
    o.set_process_budget(None)
    process_budget().reset()
    default_breaker().reset()


def test_budget_arithmetic() -> None:
    budget = o.Budget(1.0, prefer_cheaper_at=0.5, name="test")
    budget.check(1.0)
    held = budget.reserve(0.4)
    assert budget.reserved == 0.4 and budget.remaining == pytest.approx(0.6)
    assert not budget.near_cap()
    assert budget.near_cap(0.1)
    held.settle(0.3)
    held.settle(0.3)  # settling twice counts once
    assert budget.spent == pytest.approx(0.3) and budget.reserved == 0.0
    with pytest.raises(o.BudgetExceededError, match="'test'") as info:
        budget.check(0.71)
    assert info.value.cap == 1.0 and info.value.expected_cost == 0.71
    budget.charge(0.7)
    with pytest.raises(o.BudgetExceededError):
        budget.reserve(0.01)
    budget.reset()
    assert budget.spent == 0.0
    assert "test" in repr(budget)


@pytest.mark.parametrize("cap", [-1, float("nan"), float("inf"), "5", True])
def test_a_budget_needs_a_real_cap(cap: object) -> None:
    with pytest.raises(o.InvalidRequestError):
        o.Budget(cap)  # type: ignore[arg-type]


def test_unlimited_budget_only_counts() -> None:
    budget = o.Budget(None)
    budget.reserve(1e9).settle(2.0)
    assert budget.spent == 2.0 and budget.remaining is None and not budget.near_cap(1e9)


def test_concurrent_reservations_never_pass_the_cap() -> None:
    budget = o.Budget(1.0)
    granted: list[o.Budget] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(50):
            try:
                held = budget.reserve(0.01)
            except o.BudgetExceededError:
                continue
            granted.append(budget)
            held.settle(0.01)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 100  # exactly the cap's worth, however the threads interleave
    assert budget.spent == pytest.approx(1.0)


def test_spend_is_the_billed_usage_with_cached_and_reasoning_tokens(
    fake: FakeProviderServer,
) -> None:
    budget = o.Budget(10.0)
    fake.queue(
        Reply(
            "ok",
            input_tokens=100_000,
            output_tokens=8_000,
            cached_tokens=60_000,
            reasoning_tokens=6_000,
        )
    )
    p = make(
        "google",
        fake.api_key,
        budget=budget,
        default_model="gemini-3-flash-preview",
        smart_routing=False,
    )
    response = p.chat(PROMPT)
    model = default_catalog().resolve("google", "gemini-3-flash-preview").model
    expected = cost_of(model, response.usage).total
    assert response.usage.cache_read_tokens == 60_000 and response.usage.reasoning_tokens == 6_000
    assert budget.spent == pytest.approx(expected) == pytest.approx(response.total_cost)
    assert process_budget().spent >= expected  # the process budget counts every call


def test_at_the_cap_the_error_comes_before_the_call(fake: FakeProviderServer) -> None:
    p = make("openai", fake.api_key, budget=0.0)
    with pytest.raises(o.BudgetExceededError) as info:
        p.chat(PROMPT)
    assert fake.requests == []
    assert info.value.attempts == ()
    assert info.value.budget == "provider:openai"
    with pytest.raises(o.BudgetExceededError):
        list(p.stream_text(PROMPT))
    assert fake.requests == []


def test_calls_stop_once_the_cap_is_spent(fake: FakeProviderServer) -> None:
    p = make("anthropic", fake.api_key, smart_routing=False, budget=0.003)
    spent: list[float] = []
    with pytest.raises(o.BudgetExceededError):
        for _ in range(100):
            spent.append(p.chat(PROMPT, max_tokens=100).total_cost)
    assert p.budget is not None
    assert p.budget.spent == pytest.approx(sum(spent))
    assert p.budget.spent <= 0.003
    assert len(fake.requests) == len(spent)


def test_near_the_cap_the_cheapest_tier_is_preferred(fake: FakeProviderServer) -> None:
    budget = o.Budget(1.0, prefer_cheaper_at=0.5)
    p = make("openai", fake.api_key, smart_routing=False, budget=budget)  # balanced
    assert p.chat(PROMPT).routing.tier == "balanced"
    budget.charge(0.6)
    response = p.chat(PROMPT)
    assert response.routing.tier == "budget"
    assert "near its cap" in response.routing.reason
    # An explicitly requested model is never swapped.
    assert p.chat(PROMPT, model="o3").model == p.tier_models()["premium"].id


def test_process_budget_caps_every_provider(fake: FakeProviderServer) -> None:
    o.set_process_budget(1e-8)
    for name in ("google", "anthropic", "openai"):
        with pytest.raises(o.BudgetExceededError, match="'process'"):
            make(name, fake.api_key).chat(PROMPT)
    assert fake.requests == []


def test_multi_provider_budget_and_provider_budgets_both_apply(fake: FakeProviderServer) -> None:
    own = o.Budget(None)
    shared = o.Budget(None)
    providers = [make("google", fake.api_key, budget=own), make("openai", fake.api_key)]
    m = o.MultiProvider(providers, budget=shared)
    responses = [m.chat(PROMPT, strategy=s) for s in ("cheapest", "smartest", "balanced")]
    total = sum(r.total_cost for r in responses)
    assert shared.spent == pytest.approx(total)
    assert own.spent == pytest.approx(
        sum(r.total_cost for r in responses if r.provider == "google")
    )
    m_capped = o.MultiProvider(providers, budget=0.0)
    with pytest.raises(o.BudgetExceededError, match="'multi'"):
        m_capped.chat(PROMPT)


def test_near_the_cap_applies_without_fallback_too(fake: FakeProviderServer) -> None:
    budget = o.Budget(1.0, prefer_cheaper_at=0.5)
    budget.charge(0.6)
    p = make("openai", fake.api_key, smart_routing=False, budget=budget, max_retries=0)
    assert p.fallback == "none"
    assert p.chat(PROMPT).routing.tier == "budget"


# -- worst-case holds: what a call reserves is the most it can bill ---------------------------


@pytest.mark.parametrize("name", ["openai", "anthropic", "google"])
def test_concurrent_calls_cannot_spend_past_a_budget(fake: FakeProviderServer, name: str) -> None:
    # Forty answers at once, each as long as the model may make it (no max_tokens given: the
    # library's default), against a cap that holds a few of them.
    fake.queue(Reply(output_tokens=100_000, delay=0.2), times=40)
    budget = o.Budget(0.2)
    p = make(name, fake.api_key, budget=budget, max_retries=0)
    outcomes: list[str] = []
    start = threading.Barrier(40)

    def call() -> None:
        start.wait()
        try:
            outcomes.append(p.chat(PROMPT).model)
        except o.BudgetExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=call) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = [m for m in outcomes if m != "refused"]
    assert answered and len(answered) < 40
    assert budget.reserved == pytest.approx(0.0, abs=1e-12)
    assert budget.spent <= 0.2


def test_a_multi_provider_budget_holds_each_attempts_worst_case(
    fake: FakeProviderServer,
) -> None:
    fake.queue(Reply(output_tokens=100_000, delay=0.2), times=30)
    providers = [make("openai", fake.api_key), make("google", fake.api_key)]
    m = o.MultiProvider(providers, budget=0.05, retry=o.RetryPolicy(max_retries=0))
    results: list[float] = []
    start = threading.Barrier(30)

    def call() -> None:
        start.wait()
        with contextlib.suppress(o.BudgetExceededError):
            results.append(m.chat(PROMPT, max_tokens=20_000).total_cost)

    threads = [threading.Thread(target=call) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.budget is not None
    assert results and m.budget.spent == pytest.approx(sum(results))
    assert m.budget.spent <= 0.05


def test_the_prompt_bound_covers_what_the_provider_bills(fake: FakeProviderServer) -> None:
    from orkestra._call import read_input

    weather = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "The weather in a city " * 20,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    messages = [
        {"role": "system", "content": "Be brief. " * 50},
        {"role": "user", "content": "Grüße aus Köln! 天気はどうですか? " * 30},
    ]
    p = make("openai", fake.api_key, smart_routing=False)
    response = p.chat(messages=messages, tools=[weather], max_tokens=50)
    given = read_input(None, messages, tools=[weather])
    assert response.usage.input_tokens <= given.input_bound
    model = default_catalog().resolve("openai", response.model).model
    worst = o.resilience.budget.worst_case_cost(model, given.input_bound, 50)
    assert response.total_cost <= worst
