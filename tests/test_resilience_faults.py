"""Fault injection through the real SDKs against ``orkestra.testing``: every call either succeeds
through retry/fallback or raises the documented typed error; none hangs, none is lost; and the
recorded cost is the billed usage of every attempt."""

from __future__ import annotations

import concurrent.futures
import random
import time
from collections.abc import Iterator

import pytest

import orkestra as o
from orkestra.catalog import cost_of, default_catalog
from orkestra.resilience import default_breaker, process_budget
from orkestra.testing import FakeProviderServer, Fault, Reply

PROVIDERS = ("google", "anthropic", "openai")
PROMPT = "Write a short poem about rivers and the sea"
REPLY = Reply("The river runs to the sea, and the sea runs to the river.", input_tokens=1000)
FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.005, deadline=20.0)
TYPED = (
    o.RateLimitError,
    o.ProviderUnavailableError,
    o.ProviderTimeoutError,
    o.ProviderConnectionError,
    o.StreamInterruptedError,
)


_opened: list[o.Provider] = []


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    default_breaker().reset()
    yield
    while _opened:
        _opened.pop().close()
    default_breaker().reset()
    process_budget().reset()


def provider(name: str, fake: FakeProviderServer, **kwargs: object) -> o.Provider:
    options: dict[str, object] = {"retry": FAST, "circuit_breaker": o.CircuitBreaker()}
    _opened.append(o.Provider(name, fake.api_key, **{**options, **kwargs}))  # type: ignore[arg-type]
    return _opened[-1]


def generations(fake: FakeProviderServer) -> int:
    """Generation requests the fake received (model listings and token counts excluded)."""
    endings = ("/chat/completions", "/messages", ":generateContent", ":streamGenerateContent")
    return sum(1 for r in fake.requests if r.path.endswith(endings))


def assert_billed_exactly(attempts: tuple[o.Attempt, ...], fake: FakeProviderServer) -> None:
    """One attempt per request the provider saw; each attempt's cost is its billed usage's."""
    assert len(attempts) == generations(fake)
    catalog = default_catalog()
    for attempt in attempts:
        model = catalog.resolve(attempt.provider, attempt.model).model
        assert attempt.cost == pytest.approx(cost_of(model, attempt.usage).total, abs=1e-12)
        if attempt.ok:
            assert attempt.usage.input_tokens == REPLY.input_tokens


def run(p: o.Provider | o.MultiProvider, stream: bool) -> o.Response:
    if not stream:
        return p.chat(PROMPT, max_tokens=256)
    s = p.stream(PROMPT, max_tokens=256)
    text = "".join(s)
    assert s.response is not None and s.response.text == text
    return s.response


FAULTS = {
    "429": Fault.status(429),
    "529": Fault.status(529),
    "500": Fault.status(500),
    "503": Fault.status(503),
    "reset": Fault.drop(),
    "cut-before-text": Fault.cut_stream(after_chunks=0),
    "error-event-before-text": Fault.stream_error(after_chunks=0),
}


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
@pytest.mark.parametrize("name", PROVIDERS)
def test_transient_faults_are_retried_on_the_same_model(
    name: str, fault: str, stream: bool, fake: FakeProviderServer
) -> None:
    fake.queue(FAULTS[fault], provider=name, times=2)
    fake.queue(REPLY)
    p = provider(name, fake)
    response = run(p, stream)
    assert [a.ok for a in response.attempts] == [False, False, True]
    assert len({(a.provider, a.model) for a in response.attempts}) == 1  # retried, no fallback
    assert all(a.error in {t.__name__ for t in TYPED} for a in response.attempts[:2])
    assert_billed_exactly(response.attempts, fake)
    assert response.total_cost == pytest.approx(sum(a.cost for a in response.attempts))
    assert response.cost == pytest.approx(response.attempts[-1].cost)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_timeouts_are_retried(name: str, stream: bool, fake: FakeProviderServer) -> None:
    fake.queue(Fault.delay(3.0), provider=name)
    fake.queue(REPLY)
    started = time.perf_counter()
    response = run(provider(name, fake, timeout=0.25), stream)
    assert [a.error for a in response.attempts] == ["ProviderTimeoutError", None]
    assert time.perf_counter() - started < 2.5  # the slow answer was not waited for
    assert_billed_exactly(response.attempts, fake)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_a_model_that_keeps_failing_falls_back_to_the_adjacent_tier(
    name: str, stream: bool, fake: FakeProviderServer
) -> None:
    p = provider(name, fake, smart_routing=False)  # the balanced model
    balanced = p.tier_models()["balanced"].id
    fake.queue(Fault.status(529), provider=name, model=balanced, times=50)
    fake.queue(REPLY)
    response = run(p, stream)
    assert [a.model for a in response.attempts] == [balanced] * 3 + [response.model]
    assert response.model == p.tier_models()["premium"].id  # up before down
    assert response.routing.tier == "premium"
    assert "fallback" in response.routing.reason
    assert_billed_exactly(response.attempts, fake)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.status(429), o.RateLimitError),
        (Fault.status(529), o.ProviderUnavailableError),
        (Fault.status(500), o.ProviderUnavailableError),
        (Fault.drop(), o.ProviderConnectionError),
    ],
)
@pytest.mark.parametrize("name", PROVIDERS)
def test_when_everything_fails_the_typed_error_carries_every_attempt(
    name: str, fault: Fault, error: type[o.OrkestraError], stream: bool, fake: FakeProviderServer
) -> None:
    fake.queue(fault, provider=name, times=100)
    started = time.perf_counter()
    with pytest.raises(error) as info:
        run(provider(name, fake), stream)
    assert time.perf_counter() - started < 10
    attempts = info.value.attempts
    assert len(attempts) == 9  # 3 tiers × (1 + 2 retries)
    assert {a.model for a in attempts} == {
        m.id for m in provider(name, fake).tier_models().values()
    }
    assert "tried" in str(info.value)
    assert_billed_exactly(attempts, fake)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(
    ("status", "error"), [(400, o.BadRequestError), (401, o.AuthenticationError)]
)
@pytest.mark.parametrize("name", PROVIDERS)
def test_auth_and_bad_request_surface_at_once(
    name: str, status: int, error: type[o.OrkestraError], stream: bool, fake: FakeProviderServer
) -> None:
    fake.queue(Fault.status(status), provider=name, times=10)
    with pytest.raises(error) as info:
        run(provider(name, fake), stream)
    assert generations(fake) == 1
    assert len(info.value.attempts) == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_retired_model_404_falls_back_without_retrying(
    name: str, fake: FakeProviderServer
) -> None:
    p = provider(name, fake, smart_routing=False)
    fake.queue(Fault.status(404), provider=name, times=1)
    fake.queue(REPLY)
    response = p.chat(PROMPT)
    assert [a.error for a in response.attempts] == ["ModelNotFoundError", None]
    assert response.attempts[0].model != response.model


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_stream_cut_after_text_raises_with_partial_text_and_usage(
    name: str, fake: FakeProviderServer
) -> None:
    budget = o.Budget(None)
    fake.queue(Fault.cut_stream(after_chunks=2), provider=name)
    stream = provider(name, fake, budget=budget).stream(PROMPT)
    received: list[str] = []
    with pytest.raises(o.StreamInterruptedError) as info:
        for chunk in stream:
            received.append(chunk)
    error = info.value
    assert error.partial_text == "".join(received) and len(received) == 2
    assert len(error.attempts) == 1 == generations(fake)  # never retried after text
    if name == "openai":  # usage comes last
        assert error.usage is None
    else:  # Anthropic's message_start and every Gemini chunk report the prompt's tokens
        assert error.usage is not None and error.usage.input_tokens > 0
    assert_billed_exactly(error.attempts, fake)
    assert budget.spent == pytest.approx(error.attempts[0].cost)


def test_retry_after_is_honoured_and_a_long_one_is_not_slept_on(fake: FakeProviderServer) -> None:
    sleeps: list[float] = []
    policy = o.RetryPolicy(retry_after_cap=5.0, sleep=sleeps.append)
    p = provider("openai", fake, retry=policy, fallback="none")
    fake.queue(Fault.status(429, retry_after=3), provider="openai")
    fake.queue(Fault.status(429, retry_after_ms=250), provider="openai")
    assert p.chat(PROMPT).text
    assert sleeps == [3.0, 0.25]
    fake.queue(Fault.status(429, retry_after=60), provider="openai", times=5)
    with pytest.raises(o.RateLimitError) as info:
        p.chat(PROMPT)
    assert info.value.retry_after == 60.0  # the caller decides
    assert sleeps == [3.0, 0.25] and len(info.value.attempts) == 1


def test_gemini_retry_info_is_honoured(fake: FakeProviderServer) -> None:
    sleeps: list[float] = []
    p = provider("google", fake, retry=o.RetryPolicy(sleep=sleeps.append))
    fake.queue(Fault.status(429, retry_after=2), provider="google")
    assert p.chat(PROMPT).text
    assert sleeps == [2.0]


def test_the_sdks_do_not_retry_on_their_own(fake: FakeProviderServer) -> None:
    for name in PROVIDERS:
        fake.clear()
        fake.queue(Fault.status(500), provider=name, times=10)
        with (
            pytest.raises(o.ProviderUnavailableError),
            o.Provider(name, fake.api_key, max_retries=0) as p,
        ):
            p.chat(PROMPT)
        assert generations(fake) == 1, name


def test_circuit_breaker_skips_a_failing_model_across_calls(fake: FakeProviderServer) -> None:
    breaker = o.CircuitBreaker(failure_threshold=3, cooldown=60.0)
    p = provider("openai", fake, smart_routing=False, circuit_breaker=breaker)
    balanced = p.tier_models()["balanced"].id
    fake.queue(Fault.status(503), provider="openai", model=balanced, times=3)
    first = p.chat(PROMPT)
    assert [a.model for a in first.attempts][:3] == [balanced] * 3
    assert breaker.state(("openai", balanced)) == "open"
    fake.clear()
    second = p.chat(PROMPT)  # the balanced model is not even tried
    assert [a.model for a in second.attempts] == [first.model]
    assert generations(fake) == 1


# -- MultiProvider ---------------------------------------------------------------------------


def multi(fake: FakeProviderServer, **kwargs: object) -> o.MultiProvider:
    providers = [o.Provider(n, fake.api_key) for n in PROVIDERS]
    _opened.extend(providers)
    options: dict[str, object] = {"retry": FAST, "circuit_breaker": o.CircuitBreaker()}
    return o.MultiProvider(providers, **{**options, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_multi_provider_moves_to_the_same_tier_elsewhere(
    fault: str, stream: bool, fake: FakeProviderServer
) -> None:
    m = multi(fake)
    routed = m.route(PROMPT)
    fake.queue(FAULTS[fault], provider=routed.provider, times=100)  # (typing: a provider name)
    fake.queue(REPLY)
    response = run(m, stream)
    assert response.provider != routed.provider
    assert response.routing.tier == routed.tier
    assert [a.provider for a in response.attempts] == [routed.provider] * 3 + [response.provider]
    plan = m.plan(routed, PROMPT, max_tokens=256)
    same_tier = [t for t in plan[1:] if t.decision.tier == routed.tier]
    assert response.provider == same_tier[0].decision.provider  # the cheapest other provider
    assert_billed_exactly(response.attempts, fake)


def test_multi_provider_raises_typed_when_every_provider_fails(fake: FakeProviderServer) -> None:
    fake.queue(Fault.status(529), times=1000)
    m = multi(fake, retry=o.RetryPolicy(max_retries=0, base_delay=0.001), fallback="up-then-down")
    with pytest.raises(o.ProviderUnavailableError) as info:
        m.chat(PROMPT)
    assert len(info.value.attempts) == 9 == generations(fake)  # every model once
    assert_billed_exactly(info.value.attempts, fake)


def test_concurrent_calls_with_random_faults_lose_nothing(fake: FakeProviderServer) -> None:
    rng = random.Random(7)
    faults = [
        Fault.status(429),
        Fault.status(529),
        Fault.status(500),
        Fault.drop(),
        Fault.cut_stream(after_chunks=0),
        Fault.cut_stream(after_chunks=1),
    ]
    for _ in range(40):
        fake.queue(rng.choice(faults), provider=rng.choice(PROVIDERS))
    m = multi(fake, budget=o.Budget(None))

    def one(i: int) -> tuple[str, tuple[o.Attempt, ...]]:
        try:
            response = run(m, stream=i % 2 == 1)
        except o.OrkestraError as e:
            return type(e).__name__, e.attempts
        return "ok", response.attempts

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, range(60), timeout=60))
    attempts = [a for _, group in outcomes for a in group]
    assert len(outcomes) == 60
    assert all(kind in {"ok", "StreamInterruptedError"} for kind, _ in outcomes)
    assert len(attempts) == generations(fake)
    assert m.budget is not None
    assert m.budget.spent == pytest.approx(sum(a.cost for a in attempts))
    assert m.budget.reserved == pytest.approx(0.0)


def test_a_model_named_in_the_call_is_retried_but_never_swapped(
    fake: FakeProviderServer,
) -> None:
    fake.queue(Fault.status(503), provider="openai", times=100)
    with pytest.raises(o.ProviderUnavailableError) as info:
        provider("openai", fake).chat(PROMPT, model="gpt-4o-mini")
    assert [a.model for a in info.value.attempts] == ["gpt-4o-mini"] * 3


def test_fallbacks_skip_providers_without_a_key(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    m = multi(fake)
    m.providers[1] = o.Provider("anthropic")  # no key
    _opened.append(m.providers[1])
    routed = m.route(PROMPT, strategy="cheapest")
    assert routed.provider != "anthropic"
    assert "anthropic" not in {t.decision.provider for t in m.plan(routed, PROMPT)}
