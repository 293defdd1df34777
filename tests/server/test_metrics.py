"""``GET /metrics``: what known requests leave in the Prometheus exposition, read back with
prometheus-client's own parser, in process and from a real server process."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterable

import httpx2 as httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from proxy_helpers import (
    CLIENT_KEY,
    OTHER_KEY,
    UPSTREAM_KEY,
    AppClient,
    LiveServer,
    chat_body,
    client_key,
    is_openai_error,
    make_config,
)
from starlette.testclient import TestClient

from orkestra.resilience.breaker import CircuitBreaker
from orkestra.server import create_app
from orkestra.testing import FakeProviderServer, Fault, Reply
from orkestra.usage import SQLiteUsageLog, key_id_for

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
KEY_ID = key_id_for(CLIENT_KEY)
CHAT = "/v1/chat/completions"


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        s.value
        for s in found
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def scrape(client: TestClient | httpx.Client, **headers: str) -> list[Sample]:
    response = client.get("/metrics", headers=headers or AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


# -- in process ------------------------------------------------------------------------------


def test_known_requests_are_counted_with_their_tokens_cost_and_savings(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    client = app_client(keys=(client_key(),))
    for _ in range(2):
        fake.queue(Reply("Tokyo.", input_tokens=100, output_tokens=20))
    fake.queue(Reply("Paris.", input_tokens=50, output_tokens=5))
    answers = [
        client.post(CHAT, json=chat_body(model="gpt-4o-mini"), headers=AUTH) for _ in range(2)
    ]
    routed = client.post(CHAT, json=chat_body(model="orkestra/openai"), headers=AUTH)
    assert all(r.status_code == 200 for r in [*answers, routed])
    missing = client.post(CHAT, json=chat_body(model="no-such-model-xyz"), headers=AUTH)
    assert missing.status_code == 404

    found = scrape(client)
    chat = {"route": CHAT, "key_id": KEY_ID}
    assert value(found, "orkestra_requests_total", **chat, status="200") == 3
    routed_to_mini = routed.headers["x-orkestra-model"] == "gpt-4o-mini"
    mini_calls = 2 + routed_to_mini
    assert value(found, "orkestra_requests_total", **chat, model="gpt-4o-mini") == mini_calls
    assert value(found, "orkestra_requests_total", **chat, status="404", model="") == 1
    assert value(found, "orkestra_request_duration_seconds_count", route=CHAT) == 4
    assert value(found, "orkestra_added_duration_seconds_count", route=CHAT) == 3

    mini = {"provider": "openai", "model": "gpt-4o-mini", "key_id": KEY_ID}
    assert value(found, "orkestra_tokens_total", **mini, type="input") == 200 + 50 * routed_to_mini
    assert value(found, "orkestra_tokens_total", **mini, type="output") == 40 + 5 * routed_to_mini
    assert value(found, "orkestra_tokens_total", key_id=KEY_ID, type="input") == 250

    every = [*answers, routed]
    cost = sum(float(r.headers["x-orkestra-cost-usd"]) for r in every)
    savings = sum(float(r.headers["x-orkestra-savings-usd"]) for r in every)
    assert cost > 0 and savings > 0
    assert math.isclose(value(found, "orkestra_cost_usd_total"), cost, rel_tol=1e-6)
    assert math.isclose(value(found, "orkestra_savings_usd_total"), savings, rel_tol=1e-6)
    assert math.isclose(
        value(found, "orkestra_base_cost_usd_total") - value(found, "orkestra_cost_usd_total"),
        savings,
        rel_tol=1e-6,
    )
    tier = routed.headers["x-orkestra-tier"]
    assert value(found, "orkestra_routing_decisions_total", destination="orkestra/openai") == 1
    assert (
        value(found, "orkestra_routing_decisions_total", destination="orkestra/openai", tier=tier)
        == 1
    )
    assert value(found, "orkestra_upstream_attempts_total", outcome="ok") == 3
    assert value(found, "orkestra_upstream_duration_seconds_count") == 3
    assert value(found, "orkestra_fallbacks_total") == 0
    assert value(found, "orkestra_key_info", key_id=KEY_ID, key="team-a") == 1
    assert value(found, "orkestra_build_info") == 1


def test_a_stream_is_counted_when_it_ends(app_client: AppClient, fake: FakeProviderServer) -> None:
    client = app_client()
    fake.queue(Reply("One two three four.", input_tokens=30, output_tokens=7))
    response = client.post(CHAT, json=chat_body(model="gpt-4o-mini", stream=True))
    assert response.status_code == 200
    found = scrape(client)
    assert value(found, "orkestra_requests_total", route=CHAT, model="gpt-4o-mini") == 1
    assert value(found, "orkestra_tokens_total", model="gpt-4o-mini", type="output") == 7
    assert value(found, "orkestra_added_duration_seconds_count", route=CHAT) == 1


def test_a_fallback_and_the_open_circuit_it_leaves_are_visible(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    # The first openai call fails; with no retries the router's next openai model answers, and
    # a one-failure breaker leaves the first model's circuit open.
    fake.queue(Fault.status(503), provider="openai")
    config = make_config(max_retries=0, fallback="up-then-down")
    breaker = CircuitBreaker(failure_threshold=1, cooldown=600)
    with TestClient(
        create_app(config, usage_log=usage_log, circuit_breaker=breaker),
        base_url="http://127.0.0.1:8000",
    ) as client:
        response = client.post(CHAT, json=chat_body(model="orkestra/openai"))
        assert response.status_code == 200
        first, second = (f"openai/{r.model}" for r in fake.requests)
        assert first != second and response.headers["x-orkestra-model"] == second.split("/")[1]
        found = scrape(client)
    assert value(found, "orkestra_fallbacks_total", from_model=first, to_model=second) == 1
    assert value(found, "orkestra_fallbacks_total") == 1
    failed = {"provider": "openai", "model": first.split("/")[1]}
    assert value(found, "orkestra_upstream_attempts_total", **failed, outcome="ok") == 0
    assert value(found, "orkestra_upstream_attempts_total", **failed) == 1
    assert value(found, "orkestra_circuit_breaker_state", **failed) == 2
    answered = {"provider": "openai", "model": second.split("/")[1]}
    assert value(found, "orkestra_circuit_breaker_state", **answered) == 0
    # Every current model of every configured provider has a circuit series.
    assert value(found, "orkestra_circuit_breaker_state", model="claude-haiku-4-5") == 0


def test_a_key_budget_remaining_is_cap_minus_spent(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    client = app_client(keys=(client_key(budget_usd=1.0), client_key("broke", OTHER_KEY)))
    response = client.post(CHAT, json=chat_body(model="gpt-4o-mini"), headers=AUTH)
    cost = float(response.headers["x-orkestra-cost-usd"])
    found = scrape(client)
    remaining = value(found, "orkestra_key_budget_remaining_usd", key_id=KEY_ID)
    assert math.isclose(remaining, 1.0 - cost, rel_tol=1e-9)
    # A key without a cap has no remaining budget to show.
    other = key_id_for(OTHER_KEY)
    assert not [s for s in found if s.labels.get("key_id") == other and "budget" in s.name]


def test_metrics_need_a_client_key_once_keys_are_configured(app_client: AppClient) -> None:
    keyed = app_client(keys=(client_key(),))
    refused = keyed.get("/metrics")
    assert refused.status_code == 401 and is_openai_error(refused)
    assert keyed.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert keyed.get("/metrics", headers=AUTH).status_code == 200
    public = app_client(keys=(client_key(),), metrics_public=True)
    assert public.get("/metrics").status_code == 200
    assert app_client().get("/metrics").status_code == 200  # no keys: loopback only anyway


def test_metrics_can_be_turned_off(app_client: AppClient) -> None:
    client = app_client(metrics=False)
    assert client.get("/metrics").status_code == 404


def test_labels_stay_bounded_whatever_clients_send(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    client = app_client(keys=(client_key(),))
    client.post(CHAT, json=chat_body(model="attacker-model-7f3a"), headers=AUTH)
    client.get("/some/unknown/path-9c2e")
    client.post(CHAT, json=chat_body(), headers={"authorization": f"Bearer {OTHER_KEY}"})
    text = client.get("/metrics", headers=AUTH).text
    assert "attacker-model-7f3a" not in text and "path-9c2e" not in text
    assert CLIENT_KEY not in text and OTHER_KEY not in text and UPSTREAM_KEY not in text
    found = samples(text)
    assert value(found, "orkestra_requests_total", route="unmatched", status="404") == 1
    assert value(found, "orkestra_requests_total", route=CHAT, status="401", key_id="") == 1


# -- a real server process -------------------------------------------------------------------


def test_a_real_server_exposes_what_the_openai_client_did(live: LiveServer) -> None:
    client = openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0)
    completions = [
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Say {i}"}]
        )
        for i in range(3)
    ]
    with pytest.raises(openai.RateLimitError):  # the broke key's $0 budget
        openai.OpenAI(
            base_url=live.base_url, api_key=OTHER_KEY, max_retries=0
        ).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    with httpx.Client(base_url=live.url) as http:
        assert http.get("/metrics").status_code == 401
        found = scrape(http)
    mini = {"route": CHAT, "model": "gpt-4o-mini", "key_id": KEY_ID, "status": "200"}
    assert value(found, "orkestra_requests_total", **mini) == 3
    broke = key_id_for(OTHER_KEY)
    assert value(found, "orkestra_requests_total", route=CHAT, key_id=broke, status="429") == 1
    assert value(found, "orkestra_key_budget_remaining_usd", key_id=broke) == 0
    tokens_in = sum(c.usage.prompt_tokens for c in completions if c.usage)
    assert value(found, "orkestra_tokens_total", model="gpt-4o-mini", type="input") == tokens_in
    cost = sum(c.model_extra["orkestra"]["cost_usd"] for c in completions if c.model_extra)
    assert math.isclose(value(found, "orkestra_cost_usd_total"), cost, rel_tol=1e-6)


def test_without_prometheus_client_the_app_says_what_to_install() -> None:
    # As if prometheus-client were not installed: its import fails.
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from orkestra.server import ServerConfig, ProviderConfig, create_app\n"
        "create_app(ServerConfig(providers=(ProviderConfig('openai'),), usage_log=False))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"OPENAI_API_KEY": "sk-test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr
    assert "pip install 'orkestra-router[server]'" in result.stderr
    assert "[metrics] enabled = false" in result.stderr
