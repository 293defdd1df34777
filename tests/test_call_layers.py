"""The layers under Provider: an Endpoint drives one provider's API, the resilience layer drives
Endpoints (never the Provider), and a call carries its own budget and usage sink."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

import orkestra as o
from orkestra._call import read_input
from orkestra._endpoint import Endpoint
from orkestra.catalog import default_catalog
from orkestra.resilience.call import Call
from orkestra.resilience.plan import Reachable, plan_targets
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog, UsageSink

PROMPT = "Explain how a suspension bridge carries its load"


@pytest.fixture
def log(tmp_path: Path) -> SQLiteUsageLog:
    opened = SQLiteUsageLog(tmp_path / "usage.db", store_prompts=True)
    yield opened  # type: ignore[misc]
    opened.close()


def test_the_resilience_layer_runs_a_call_on_endpoints_alone(fake: FakeProviderServer) -> None:
    """No Provider anywhere: planning reads plain values, attempts go to the endpoint."""
    catalog = default_catalog()
    endpoint = Endpoint(catalog.provider("openai"), fake.api_key)
    request = read_input(PROMPT, None, max_tokens=64)
    decision = o.Provider("openai", fake.api_key).route(PROMPT)
    targets = plan_targets(
        decision,
        [Reachable("openai", catalog)],
        prompt=request.all_text,
        max_tokens=64,
        order="none",
    )
    call = Call({"openai": endpoint}, request, policy=o.RetryPolicy(), breaker=o.CircuitBreaker())
    try:
        response = call.chat(targets)
    finally:
        endpoint.close()
    assert response.model == decision.model == fake.requests[-1].model
    assert response.base_model == catalog.tier_model("openai", "premium").id
    assert response.cost > 0


def test_a_response_names_the_parameters_its_model_could_not_take(
    fake: FakeProviderServer,
) -> None:
    p = o.Provider("openai", fake.api_key)
    with pytest.warns(o.OrkestraWarning, match="temperature"):
        response = p.chat(PROMPT, model="gpt-5.6-terra", temperature=0.2)
    assert response.ignored_params == ("temperature",)
    assert fake.requests[-1].body.get("temperature") is None
    assert p.chat(PROMPT, model="gpt-5.6-terra").ignored_params == ()
    assert p.chat(PROMPT, model="gpt-4.1-mini", temperature=0.2).ignored_params == ()
    p.close()


def test_a_budget_given_to_a_call_caps_that_call(fake: FakeProviderServer) -> None:
    p = o.Provider("openai", fake.api_key)
    with pytest.raises(o.BudgetExceededError, match="'per-user'"):
        p.chat(PROMPT, budget=o.Budget(0.0, name="per-user"))
    assert fake.requests == []  # refused before anything was sent
    mine = o.Budget(1.0)
    response = p.chat(PROMPT, model="gpt-4.1-mini", budget=mine)  # a pinned model counts too
    assert mine.spent == pytest.approx(response.total_cost) and mine.reserved == 0.0
    multi = o.MultiProvider([p, o.Provider("anthropic", fake.api_key)])
    routed = multi.chat(PROMPT, budget=mine)
    assert mine.spent == pytest.approx(response.total_cost + routed.total_cost)
    assert p.chat(PROMPT).cost > 0  # the call's budget is the call's alone
    multi.close()


def test_a_stream_counts_against_its_calls_budget(fake: FakeProviderServer) -> None:
    p = o.Provider("anthropic", fake.api_key)
    mine = o.Budget(1.0)
    stream = p.stream(PROMPT, budget=mine)
    assert "".join(stream)
    assert stream.response is not None
    assert mine.spent == pytest.approx(stream.response.total_cost) and mine.spent > 0
    p.close()


def test_a_usage_sink_given_to_a_call_labels_its_record(
    fake: FakeProviderServer, log: SQLiteUsageLog
) -> None:
    p = o.Provider("google", fake.api_key, usage_sink=None)  # records nothing by itself
    p.chat(PROMPT)
    sink = UsageSink(log, source="proxy").labelled(
        key_id="client-1", record_id="req-1", prompt="the user's question"
    )
    response = p.chat(PROMPT, usage_sink=sink)
    log.flush()
    (record,) = log.query()
    assert (record.id, record.key_id, record.source) == ("req-1", "client-1", "proxy")
    assert (record.provider, record.model, record.status) == ("google", response.model, "ok")
    assert record.prompt == "the user's question"
    assert record.cost == pytest.approx(response.total_cost)
    p.close()


def test_a_provider_sink_records_with_the_providers_key(
    fake: FakeProviderServer, log: SQLiteUsageLog
) -> None:
    p = o.Provider("openai", fake.api_key, usage_sink=UsageSink(log))
    fake.queue(Reply("x"), provider="openai")
    p.chat(PROMPT)
    log.flush()
    (record,) = log.query()
    assert record.key_id == p.key_id is not None and record.source == "library"
    assert record.prompt == PROMPT
    p.close()


class City(pydantic.BaseModel):
    name: str
    population: int


def test_an_answer_that_fails_its_schema_is_recorded_with_the_error(
    fake: FakeProviderServer, log: SQLiteUsageLog
) -> None:
    p = o.Provider("openai", fake.api_key, usage_sink=UsageSink(log))
    fake.queue(Reply("Tokyo, I believe."), provider="openai")
    with pytest.raises(o.StructuredOutputError) as caught:
        p.chat("The largest city in Japan?", response_format=City)
    log.flush()
    (record,) = log.query()
    assert record.status == "StructuredOutputError" and record.error == str(caught.value)
    answer = caught.value.response
    assert isinstance(answer, o.Response) and answer.cost > 0
    assert record.cost == pytest.approx(answer.total_cost)
    p.close()


def test_a_stream_closed_early_is_recorded_and_settles_its_budget(
    fake: FakeProviderServer, log: SQLiteUsageLog
) -> None:
    p = o.Provider("anthropic", fake.api_key, usage_sink=UsageSink(log))
    fake.queue(Reply(" ".join(["word"] * 200)), provider="anthropic")
    mine = o.Budget(1.0)
    stream = p.stream(PROMPT, budget=mine)
    assert next(iter(stream))
    held = mine.reserved  # the attempt's worst case
    assert held > 0
    stream.close()
    # Text was handed out and the final usage never came: what it billed is unknown, so the
    # whole hold counts (a budget never counts less than was spent).
    assert mine.reserved == 0.0 and mine.spent == pytest.approx(held)
    log.flush()
    (record,) = log.query()
    assert record.status == "StreamClosed" and record.provider == "anthropic"
    p.close()


def test_a_call_refused_before_any_attempt_is_recorded(
    fake: FakeProviderServer, log: SQLiteUsageLog
) -> None:
    """No model can serve it: the usage log shows the refusal; bad arguments are not a call."""
    local = o.Provider(
        "ollama",
        base_url=fake.openai_base_url,
        models={"balanced": {"id": "tiny", "capabilities": []}},  # no JSON output
    )
    sink = UsageSink(log)
    with pytest.raises(o.CapabilityError):
        local.chat(PROMPT, response_format=City, usage_sink=sink)
    with pytest.raises(o.InvalidRequestError):
        local.chat(PROMPT, max_tokens=0, usage_sink=sink)
    log.flush()
    (record,) = log.query()
    assert (record.status, record.provider) == ("CapabilityError", "ollama")
    assert fake.requests == []
    local.close()
