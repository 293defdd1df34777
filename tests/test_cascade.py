"""Cascades (``mode="cascade"``, ``cascade=True``) against the fake provider server with the real
SDKs: the cheapest adequate tier first, its answer checked, the next tier up only when the check
fails; the router's prior; costs, savings, attempts, events and the usage log of every step;
budgets and provider failures during a step; MultiProvider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orkestra as o
from orkestra import verifiers
from orkestra.catalog import cost_of
from orkestra.routing.policy import ConstantRouter
from orkestra.testing import FakeProviderServer, Fault, Reply
from orkestra.usage import SQLiteUsageLog, UsageSink

FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.005, deadline=20.0)
EVERY_TIER = o.CascadePolicy(skip_below=0)  # no tier skipped by the router's prior
PROVIDERS = ("openai", "anthropic", "google")
EASY = "What is the capital of Japan?"
SUM = "Tom has 12 apples and buys 3 more. How many apples does he have now?"
REFUSAL = "I'm sorry, but I can't help with that."

_opened: list[o.Provider] = []


def make(name: str, **kwargs: Any) -> o.Provider:
    options: dict[str, Any] = {"retry": FAST, "circuit_breaker": o.CircuitBreaker()}
    _opened.append(o.Provider(name, **{**options, **kwargs}))
    return _opened[-1]


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def tiers(provider: o.Provider) -> dict[str, str]:
    return {tier: model.id for tier, model in provider.tier_models().items()}


def generations(fake: FakeProviderServer) -> list[str | None]:
    return [r.model for r in fake.requests if r.method == "POST"]


# -- one call when the cheap answer passes; both billed when it fails -------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_cheap_answer_that_passes_is_one_call(fake: FakeProviderServer, name: str) -> None:
    provider = make(name, mode="cascade")
    response = provider.chat(EASY, max_tokens=64)

    budget = tiers(provider)["budget"]
    assert generations(fake) == [budget]
    assert response.model == budget and response.tier == "budget"
    report = response.cascade
    assert report is not None and not report.escalated
    (step,) = report.steps
    assert step.accepted and step.passed is True and step.verdict is not None
    assert step.verdict.verifier == "heuristic" and step.verifier_cost == 0.0
    assert response.cost == pytest.approx(response.input_cost + response.output_cost)
    assert response.savings > 0  # budget tokens priced at premium: honest and positive
    assert "cascade:" in response.summary() and "heuristic passed" in response.summary()


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_failed_check_climbs_and_both_answers_are_billed(
    fake: FakeProviderServer, name: str
) -> None:
    provider = make(name, mode="cascade", cascade_policy=EVERY_TIER)
    models = tiers(provider)
    fake.queue(Reply(REFUSAL), model=models["budget"])
    response = provider.chat(EASY, max_tokens=64)

    assert generations(fake) == [models["budget"], models["balanced"]]
    assert response.model == models["balanced"] and response.text.startswith("[")
    report = response.cascade
    assert report is not None and report.escalated
    cheap, kept = report.steps
    assert cheap.text == REFUSAL and not cheap.accepted and cheap.passed is False
    assert "refusal" in cheap.reason and cheap.score is not None and cheap.score < 0.5
    assert kept.accepted and kept.passed is True

    # What each answer billed, at its own model's prices.
    catalog = provider.catalog
    cheap_cost = cost_of(catalog.model(name, models["budget"]), cheap.usage).total
    assert cheap.cost == pytest.approx(cheap_cost)
    assert response.cost == pytest.approx(cheap.cost + kept.cost)
    assert response.total_cost == pytest.approx(response.cost)
    assert report.discarded_cost == pytest.approx(cheap.cost)
    # Savings against premium on the answer's tokens, the discarded answer counted.
    premium = catalog.model(name, models["premium"])
    assert response.base_cost == pytest.approx(cost_of(premium, response.usage).total)
    assert response.savings == pytest.approx(response.base_cost - cheap.cost - kept.cost)

    discarded, answered = response.attempts
    assert discarded.ok and discarded.discarded and discarded.verdict == cheap.verdict
    assert answered.ok and not answered.discarded and answered.model == models["balanced"]
    assert "escalated" in response.routing.reason


def test_climbing_to_the_top_makes_savings_negative(fake: FakeProviderServer) -> None:
    provider = make("openai", mode="cascade")
    models = tiers(provider)
    fake.queue(Reply(REFUSAL), model=models["budget"])
    fake.queue(Reply(REFUSAL), model=models["balanced"])
    response = provider.chat(EASY, max_tokens=64)

    assert generations(fake) == [models["budget"], models["balanced"], models["premium"]]
    assert response.model == models["premium"]
    assert [s.passed for s in response.cascade.steps] == [False, False, None]  # type: ignore[union-attr]
    top = response.cascade.steps[-1]  # type: ignore[union-attr]
    assert "top of the ladder" in top.note
    # Premium was paid for the answer, so what the cheap tiers cost is a loss: reported.
    assert response.base_cost == pytest.approx(top.cost)
    assert response.savings == pytest.approx(-response.cascade.discarded_cost)  # type: ignore[union-attr]
    assert response.savings < 0 and response.savings_percent < 0


def test_the_verifiers_cost_is_counted(fake: FakeProviderServer) -> None:
    def strict(request: verifiers.Request, answer: verifiers.Answer) -> verifiers.Verdict:
        return verifiers.Verdict(False, 0.2, "too vague", cost=0.001, verifier="mine")

    provider = make("anthropic", mode="cascade", verifier=strict, cascade_policy=EVERY_TIER)
    response = provider.chat(EASY, max_tokens=64)

    report = response.cascade
    assert report is not None and [s.passed for s in report.steps] == [False, False, None]
    assert report.verifier_cost == pytest.approx(0.002)  # two checked answers
    answers = sum(s.cost for s in report.steps)
    assert response.cost == pytest.approx(answers + 0.002)
    assert response.total_cost == pytest.approx(answers + 0.002)
    assert report.steps[0].verdict is not None and report.steps[0].verdict.verifier == "strict"


def test_a_maths_answer_with_wrong_working_escalates(fake: FakeProviderServer) -> None:
    provider = make("google", mode="cascade")
    models = tiers(provider)
    fake.queue(Reply("12 + 3 = 16\n#### 16"), model=models["budget"])
    fake.queue(Reply("12 + 3 = 15\n#### 15"), model=models["balanced"])
    response = provider.chat(SUM, max_tokens=64)

    assert response.text.endswith("#### 15") and response.model == models["balanced"]
    cheap = response.cascade.steps[0]  # type: ignore[union-attr]
    assert cheap.verdict is not None and "arithmetic" in cheap.reason


# -- on and off, per call and per provider ----------------------------------------------------


def test_cascade_per_call_on_a_routing_provider_and_off_on_a_cascading_one(
    fake: FakeProviderServer,
) -> None:
    router = make("openai")
    assert router.chat(EASY, max_tokens=64).cascade is None
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    on = router.chat(EASY, max_tokens=64, cascade=True)
    assert on.cascade is not None and on.cascade.escalated

    cascading = make("openai", mode="cascade")
    assert cascading.mode == "cascade" and "mode='cascade'" in repr(cascading)
    fake.clear()
    off = cascading.chat(EASY, max_tokens=64, cascade=False)
    assert off.cascade is None and off.routing.tier == router.route(EASY).tier


def test_a_verifier_per_call_turns_the_cascade_on(fake: FakeProviderServer) -> None:
    provider = make("openai")
    response = provider.chat(EASY, max_tokens=64, verifier=lambda request, answer: False)
    assert response.cascade is not None
    assert [s.passed for s in response.cascade.steps] == [False, False, None]


def test_bad_cascade_arguments_raise_before_any_call(fake: FakeProviderServer) -> None:
    provider = make("openai")
    with pytest.raises(o.InvalidRequestError, match="model="):
        provider.chat(EASY, cascade=True, model="gpt-4o-mini")
    with pytest.raises(o.InvalidRequestError, match="cascade=False"):
        provider.chat(EASY, cascade=False, verifier="heuristic")
    with pytest.raises(o.InvalidRequestError, match="True, False or None"):
        provider.chat(EASY, cascade="yes")  # type: ignore[arg-type]
    with pytest.raises(o.InvalidRequestError, match="'buffer' or 'replace'"):
        provider.stream(EASY, cascade=True, cascade_streaming="live")
    with pytest.raises(o.ConfigurationError, match="not a verifier"):
        provider.chat(EASY, verifier=42)
    with pytest.raises(o.ConfigurationError, match="mode"):
        o.Provider("openai", mode="cascades")
    with pytest.raises(o.ConfigurationError, match="streaming"):
        o.CascadePolicy(streaming="live")  # type: ignore[arg-type]
    with pytest.raises(o.ConfigurationError, match="skip_below"):
        o.CascadePolicy(skip_below=1.5)
    assert generations(fake) == []


def test_a_named_model_is_never_cascaded(fake: FakeProviderServer) -> None:
    provider = make("openai", mode="cascade")
    fake.queue(Reply(REFUSAL), model="gpt-4.1-mini")
    response = provider.chat(EASY, model="gpt-4.1-mini", max_tokens=64)
    assert response.cascade is None and response.text == REFUSAL
    assert generations(fake) == ["gpt-4.1-mini"]


# -- the router's prior -----------------------------------------------------------------------


def test_a_router_sure_the_cheap_tiers_fail_skips_them(fake: FakeProviderServer) -> None:
    sure = ConstantRouter({"budget": 0.01, "balanced": 0.05, "premium": 0.9})
    provider = make("openai", mode="cascade", router=sure)
    response = provider.chat(EASY, max_tokens=64)

    models = tiers(provider)
    assert generations(fake) == [models["premium"]]  # one call, straight to the top
    report = response.cascade
    assert report is not None and len(report.steps) == 1 and report.steps[0].passed is None
    assert [s.split(" ")[0] for s in report.skipped] == ["budget", "balanced"]
    assert "0.01 <" in report.skipped[0]
    assert response.cost == pytest.approx(response.base_cost) and response.savings == 0


def test_auto_skips_only_below_the_price_share(fake: FakeProviderServer) -> None:
    # gpt-4o-mini costs ~7.5% of o3, gpt-4.1-mini ~20%: 0.1 keeps budget, 0.15 skips balanced.
    router = ConstantRouter({"budget": 0.1, "balanced": 0.15, "premium": 0.9})
    provider = make("openai", mode="cascade", router=router)
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    response = provider.chat(EASY, max_tokens=64)
    assert generations(fake) == ["gpt-4o-mini", tiers(provider)["premium"]]
    assert response.cascade is not None and response.cascade.skipped[0].startswith("balanced")


def test_a_router_sure_the_prompt_is_easy_trusts_the_cheap_answer(
    fake: FakeProviderServer,
) -> None:
    easy = ConstantRouter({"budget": 0.99, "balanced": 0.99, "premium": 0.99})
    checked: list[str] = []

    def check(request: verifiers.Request, answer: verifiers.Answer) -> bool:
        checked.append(answer.text)
        return False

    policy = o.CascadePolicy(trust_above=0.95)
    provider = make("openai", mode="cascade", router=easy, verifier=check, cascade_policy=policy)
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    response = provider.chat(EASY, max_tokens=64)

    assert checked == [] and response.text == REFUSAL  # trusted: not checked, not escalated
    (step,) = response.cascade.steps  # type: ignore[union-attr]
    assert step.verdict is None and step.note.startswith("trusted")
    assert generations(fake) == ["gpt-4o-mini"]


def test_calibrating_the_prior_to_shares_of_your_prompts() -> None:
    router = o.Provider("openai", api_key="sk-test").router
    prompts = [
        "What is 2+2?",
        "Write a haiku about autumn",
        "Translate 'good morning' to French",
        "Prove that the square root of 2 is irrational",
        "Design a lock-free concurrent hash map and prove linearizability",
        "Summarise the causes of the First World War",
        "Write a Python function that reverses a linked list",
        "What is the boiling point of water at sea level?",
        "Derive the Black-Scholes equation from first principles",
        "List three primary colours",
    ]
    scores = sorted(router.predict(p).scores["budget"] for p in prompts)
    policy = o.CascadePolicy().calibrate(router, prompts, skip_share=0.2, trust_share=0.3)
    assert isinstance(policy.skip_below, float) and policy.trust_above is not None
    assert sum(s < policy.skip_below for s in scores) == 2
    assert sum(s >= policy.trust_above for s in scores) == 3
    off = o.CascadePolicy().calibrate(router, prompts, skip_share=0, trust_share=0)
    assert off.skip_below == 0.0 and off.trust_above is None
    with pytest.raises(o.ConfigurationError):
        o.CascadePolicy().calibrate(router, prompts)


# -- the ladder: capabilities, sessions -------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_a_tool_call_with_bad_arguments_escalates(fake: FakeProviderServer) -> None:
    provider = make("anthropic", mode="cascade")
    models = tiers(provider)
    fake.queue(Reply(tool_calls=[("get_weather", {"town": "Paris"})]), model=models["budget"])
    response = provider.chat("What is the weather in Paris?", tools=[WEATHER], max_tokens=64)
    assert response.model == models["balanced"]
    assert [c.name for c in response.tool_calls] == ["get_weather"]
    assert "tool_calls" in response.cascade.steps[0].reason  # type: ignore[union-attr]


CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


def test_an_answer_that_fails_its_response_format_climbs(fake: FakeProviderServer) -> None:
    provider = make("openai", mode="cascade", verifier=lambda request, answer: True)
    fake.queue(Reply("Tokyo, of course."), model="gpt-4o-mini")
    response = provider.chat(EASY, response_format=CITY, max_tokens=64)
    assert response.model == "gpt-4.1-mini" and isinstance(response.parsed, dict)
    cheap = response.cascade.steps[0]  # type: ignore[union-attr]
    assert cheap.verdict is not None and cheap.verdict.verifier == "schema"


def test_an_invalid_answer_at_the_top_raises_with_the_cascade(fake: FakeProviderServer) -> None:
    provider = make("openai", mode="cascade")
    fake.queue(Reply("not json"), provider="openai", times=3)
    with pytest.raises(o.StructuredOutputError) as info:
        provider.chat(EASY, response_format=CITY, max_tokens=64)
    answer = info.value.response
    assert answer is not None and answer.cascade is not None and len(answer.cascade.steps) == 3
    assert len(info.value.attempts) == 3 and answer.cost > 0


def test_a_session_never_climbs_back_down(fake: FakeProviderServer) -> None:
    provider = make("openai", mode="cascade")
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    first = provider.chat(EASY, session_id="s", max_tokens=64)
    assert first.model == "gpt-4.1-mini"
    fake.clear()
    second = provider.chat("And of France?", session_id="s", max_tokens=64)
    assert generations(fake) == ["gpt-4.1-mini"]  # starts on the session's tier
    assert second.cascade is not None and "session" in second.cascade.skipped[0]


# -- resilience: failures and budgets during a step -------------------------------------------


def test_a_provider_failure_in_the_cheap_step_falls_back_up(fake: FakeProviderServer) -> None:
    provider = make("google", mode="cascade")
    models = tiers(provider)
    events: list[tuple[str, Any]] = []
    provider.event("on_fallback")(lambda e: events.append(("fallback", e["to_model"])))
    provider.event("on_cascade_step")(lambda e: events.append(("step", e["escalating"])))
    fake.queue(Fault.status(503), model=models["budget"], times=3)
    response = provider.chat(EASY, max_tokens=64)

    assert [a.model for a in response.attempts] == [models["budget"]] * 3 + [models["balanced"]]
    assert [a.error for a in response.attempts][:3] == ["ProviderUnavailableError"] * 3
    # The fallback answered from balanced: checked like any answer below the top, kept.
    (step,) = response.cascade.steps  # type: ignore[union-attr]
    assert step.tier == "balanced" and step.passed is True and len(step.attempts) == 4
    # The step is settled when its answer is checked; a call's fallbacks are told at its end.
    assert events == [("step", False), ("fallback", models["balanced"])]


def test_a_failing_top_tier_raises_with_every_attempt_and_the_cheap_answer(
    fake: FakeProviderServer,
) -> None:
    provider = make("openai", mode="cascade", retry=o.RetryPolicy(max_retries=0), fallback="none")
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    fake.queue(Fault.status(500), model="gpt-4.1-mini")
    with pytest.raises(o.ProviderUnavailableError) as info:
        provider.chat(EASY, max_tokens=64)
    error = info.value
    assert [(a.model, a.error) for a in error.attempts] == [
        ("gpt-4o-mini", None),
        ("gpt-4.1-mini", "ProviderUnavailableError"),
    ]
    held = error.response
    assert held is not None and held.text == REFUSAL
    assert held.cascade is not None and held.cascade.accepted.passed is False


def test_climbing_past_a_budget_raises_before_the_call(fake: FakeProviderServer) -> None:
    provider = make("openai", mode="cascade")
    budget = o.Budget(0.0001, name="per-user")  # fits gpt-4o-mini's worst case, not more
    with pytest.raises(o.BudgetExceededError) as info:
        provider.chat(SUM, max_tokens=64, budget=budget)

    assert generations(fake) == ["gpt-4o-mini"]  # the climb was refused before any call
    error = info.value
    assert error.budget == "per-user"
    cheap = error.response
    assert cheap is not None and cheap.model == "gpt-4o-mini"
    assert cheap.cascade is not None and cheap.cascade.accepted.passed is False
    assert [a.model for a in error.attempts] == ["gpt-4o-mini"]
    assert budget.spent == pytest.approx(cheap.cost) and budget.reserved == 0.0


def test_budgets_reserve_each_step(fake: FakeProviderServer) -> None:
    provider = make("anthropic", mode="cascade", budget=1.0)
    fake.queue(Reply(REFUSAL), provider="anthropic")
    response = provider.chat(EASY, max_tokens=64)
    assert provider.budget is not None
    assert provider.budget.spent == pytest.approx(response.total_cost)
    assert provider.budget.reserved == 0.0


# -- events, middleware, the usage log --------------------------------------------------------


def test_events_and_middleware_see_each_step(fake: FakeProviderServer) -> None:
    provider = make("openai")
    seen: list[Any] = []

    @provider.middleware
    def cascade_maths(data: dict[str, Any], next: Any) -> Any:
        seen.append(("cascade", data["cascade"]))
        data["cascade"] = True
        return next(data)

    provider.event("on_route")(lambda e: seen.append(("route", e["decision"].model)))
    provider.event("on_cascade_step")(
        lambda e: seen.append(("step", e["step"].model, e["escalating"], e["to"]))
    )
    provider.event("on_fallback")(lambda e: seen.append(("fallback",)))
    provider.event("on_response")(lambda e: seen.append(("response", e["response"].model)))
    fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
    provider.chat(EASY, max_tokens=64)

    assert seen == [
        ("cascade", None),
        ("route", "gpt-4o-mini"),
        ("step", "gpt-4o-mini", True, "openai/gpt-4.1-mini"),
        ("step", "gpt-4.1-mini", False, None),
        ("response", "gpt-4.1-mini"),
    ]


def test_the_usage_log_has_every_attempt_discarded_answers_marked(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    log = SQLiteUsageLog(tmp_path / "usage.db")
    try:
        provider = make("openai", mode="cascade", usage_sink=UsageSink(log))
        fake.queue(Reply(REFUSAL), model="gpt-4o-mini")
        response = provider.chat(EASY, max_tokens=64)
        (row,) = log.query()
    finally:
        log.close()
    assert row.model == "gpt-4.1-mini" and row.status == "ok"
    assert row.cost == pytest.approx(response.total_cost)
    assert row.savings == pytest.approx(response.savings)
    assert row.attempts == 2 and row.attempts_detail is not None
    discarded, kept = row.attempts_detail
    assert discarded["model"] == "gpt-4o-mini" and discarded["discarded"] is True
    assert discarded["verdict"]["passed"] is False and discarded["verdict"]["verifier"]
    assert kept["discarded"] is False and kept["verdict"]["passed"] is True


def test_a_failed_climb_is_logged_with_what_it_billed(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    log = SQLiteUsageLog(tmp_path / "usage.db")
    try:
        provider = make("openai", mode="cascade", usage_sink=UsageSink(log))
        with pytest.raises(o.BudgetExceededError) as info:
            provider.chat(SUM, max_tokens=64, budget=o.Budget(0.0001))
        (row,) = log.query()
    finally:
        log.close()
    assert row.status == "BudgetExceededError"
    assert row.cost == pytest.approx(info.value.response.cost)  # the cheap answer was billed
    assert row.attempts_detail is not None and row.attempts_detail[0]["discarded"] is True


# -- MultiProvider ----------------------------------------------------------------------------


def test_multi_provider_climbs_the_cheapest_model_of_each_tier(
    fake: FakeProviderServer,
) -> None:
    multi = o.MultiProvider(
        [make("openai"), make("anthropic"), make("google")], mode="cascade", retry=FAST
    )
    assert multi.mode == "cascade" and "mode='cascade'" in repr(multi)
    fake.queue(Reply(REFUSAL), model="gemini-2.5-flash-lite")
    fake.queue(Reply(REFUSAL), model="gpt-4.1-mini")
    response = multi.chat(EASY, max_tokens=64)

    # Cheapest budget (Gemini Flash-Lite), cheapest balanced (GPT-4.1 mini), cheapest premium.
    assert generations(fake) == ["gemini-2.5-flash-lite", "gpt-4.1-mini", "o3"]
    steps = response.cascade.steps  # type: ignore[union-attr]
    assert [(s.provider, s.tier) for s in steps] == [
        ("google", "budget"),
        ("openai", "balanced"),
        ("openai", "premium"),
    ]
    assert response.cost == pytest.approx(sum(s.cost for s in steps))
    off = multi.chat(EASY, max_tokens=64, cascade=False)
    assert off.cascade is None and off.routing.strategy == "cheapest"


def test_multi_provider_falls_back_to_the_same_tier_elsewhere(fake: FakeProviderServer) -> None:
    multi = o.MultiProvider(
        [make("openai"), make("google")],
        mode="cascade",
        retry=o.RetryPolicy(max_retries=0),
        fallback="up-then-down",
    )
    fake.queue(Fault.status(503), model="gemini-2.5-flash-lite")
    response = multi.chat(EASY, max_tokens=64)
    assert [a.model for a in response.attempts] == ["gemini-2.5-flash-lite", "gpt-4o-mini"]
    assert response.tier == "budget" and response.cascade is not None


# -- the README's three lines, and the pure parts ---------------------------------------------


def test_the_readme_cascade(fake: FakeProviderServer) -> None:
    fake.queue(Reply("12 + 3 = 15\n#### 15"), model="gemini-2.5-flash-lite")
    provider = o.Provider("google", fake.api_key, mode="cascade")  # the README's placeholder key
    _opened.append(provider)
    response = provider.chat("Tom has 12 apples and buys 3 more. How many does he have?")
    assert str(response.cascade) == "cascade: gemini-2.5-flash-lite (budget, heuristic passed 1.00)"


def test_the_ladder_is_the_cheapest_model_of_each_tier() -> None:
    from orkestra._cascade import ladder

    c = o.Candidate
    candidates = [
        c("openai", "o3", "premium", 0.9, 10.0),
        c("google", "flash-lite", "budget", 0.5, 1.0),
        c("openai", "mini", "budget", 0.5, 2.0),
        c("google", "pro", "premium", 0.9, 12.0),
        c("local", "same", "balanced", 0.7, 0.0),
    ]
    assert [x.model for x in ladder(candidates)] == ["flash-lite", "same", "o3"]
    usable = {"openai": True, "google": False, "local": True}
    assert [x.model for x in ladder(candidates, usable)] == ["mini", "same", "o3"]
    # One model on two tiers (a local preset) is one rung.
    same = [c("local", "m", "budget", 0.5, 0.0), c("local", "m", "premium", 0.5, 0.0)]
    assert [x.tier for x in ladder(same)] == ["budget"]


def test_auto_skip_is_the_price_share() -> None:
    policy = o.CascadePolicy()
    cheap = o.Candidate("openai", "mini", "budget", 0.5, 0.2)
    top = o.Candidate("openai", "big", "premium", 0.9, 1.0)
    free = o.Candidate("local", "big", "premium", 0.9, 0.0)
    assert policy.skip_threshold(cheap, top) == pytest.approx(0.2)
    assert policy.skip_threshold(cheap, free) == 0.0
    assert o.CascadePolicy(skip_below=0.3).skip_threshold(cheap, top) == 0.3
