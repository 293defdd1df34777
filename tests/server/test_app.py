"""The proxy in process (Starlette's TestClient): answers, headers, streaming, auth, errors, the
usage log and budgets, against the fake provider server."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from proxy_helpers import (
    CLIENT_KEY,
    OTHER_KEY,
    UPSTREAM_KEY,
    AppClient,
    chat_body,
    client_key,
    is_openai_error,
    make_config,
    sse_events,
)
from starlette.testclient import TestClient

from orkestra.catalog import today
from orkestra.server import create_app
from orkestra.testing import FakeProviderServer, Fault, Reply
from orkestra.usage import SQLiteUsageLog, key_id_for

ROUTING_HEADERS = (
    "x-orkestra-provider",
    "x-orkestra-model",
    "x-orkestra-tier",
    "x-orkestra-cost-usd",
    "x-orkestra-savings-usd",
)


# -- answers and headers ---------------------------------------------------------------------


def test_a_routed_answer_is_a_chat_completion_with_routing_headers(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    fake.queue(
        Reply("Tokyo.", input_tokens=120, cached_tokens=100, output_tokens=30, reasoning_tokens=20)
    )
    response = app_client().post("/v1/chat/completions", json=chat_body())

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Tokyo.", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }
    headers = response.headers
    assert all(name in headers for name in ROUTING_HEADERS)
    assert headers["x-orkestra-model"] == body["model"] == fake.requests[-1].model
    assert headers["x-orkestra-provider"] == fake.requests[-1].provider
    assert headers["x-orkestra-tier"] in ("budget", "balanced", "premium")
    extension = body["orkestra"]
    assert float(headers["x-orkestra-cost-usd"]) == pytest.approx(extension["cost_usd"])
    assert float(headers["x-orkestra-savings-usd"]) == pytest.approx(extension["savings_usd"])
    assert extension["cost_usd"] > 0

    usage_log.flush()
    (record,) = usage_log.query()
    assert record.source == "proxy"
    assert record.id == headers["x-request-id"] == body["id"].removeprefix("chatcmpl-")
    assert (record.provider, record.model) == (headers["x-orkestra-provider"], body["model"])
    assert record.cost == pytest.approx(extension["cost_usd"])
    assert record.input_tokens == 120 and record.cache_read_tokens == 100
    assert record.key_id is None  # no client keys configured


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("orkestra/anthropic", "anthropic"),
        ("orkestra/google", "google"),
        ("orkestra/openai", "openai"),
    ],
)
def test_orkestra_provider_routes_within_that_provider(
    app_client: AppClient, fake: FakeProviderServer, model: str, provider: str
) -> None:
    response = app_client().post("/v1/chat/completions", json=chat_body(model=model))
    assert response.status_code == 200
    assert response.headers["x-orkestra-provider"] == provider
    assert fake.requests[-1].provider == provider


@pytest.mark.parametrize("strategy", ["cheapest", "smartest", "balanced"])
def test_a_strategy_name_routes_across_every_provider(app_client: AppClient, strategy: str) -> None:
    response = app_client().post(
        "/v1/chat/completions",
        json=chat_body("Prove that sqrt(2) is irrational.", model=f"orkestra/{strategy}"),
    )
    assert response.status_code == 200
    assert response.json()["orkestra"]["strategy"] == strategy


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        # Retired 2026-12-01: the proxy sends the catalog's successor, on any date after.
        ("gemini-2.5-flash", "gemini-3.5-flash-lite"),
    ],
)
def test_a_catalog_model_passes_through_logged_and_priced(
    app_client: AppClient,
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
    model: str,
    sent: str,
) -> None:
    assert today() >= dt.date(2026, 12, 1)  # the pinned test date (tests/conftest.py)
    response = app_client().post("/v1/chat/completions", json=chat_body(model=model))
    assert response.status_code == 200
    assert fake.requests[-1].model == sent
    assert response.headers["x-orkestra-model"] == sent == response.json()["model"]
    usage_log.flush()
    (record,) = usage_log.query()
    assert record.model == sent and record.cost > 0


def test_max_tokens_and_temperature_reach_the_provider(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    body = chat_body(model="gpt-4o-mini", max_completion_tokens=7, temperature=0.25)
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    sent = fake.requests[-1].body
    assert sent["max_tokens"] == 7 and sent["temperature"] == 0.25
    assert "x-orkestra-ignored-params" not in response.headers


def test_a_cut_answer_reports_length(app_client: AppClient, fake: FakeProviderServer) -> None:
    fake.queue(Reply("one two three four five six seven eight nine ten " * 5))
    body = chat_body(model="gemini-2.5-flash-lite", max_tokens=3)
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.json()["choices"][0]["finish_reason"] == "length"


@pytest.mark.filterwarnings("ignore::orkestra.OrkestraWarning")
def test_a_temperature_the_model_cannot_take_is_reported_not_hidden(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    body = chat_body(model="claude-haiku-4-5", temperature=0.3)
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert "temperature" not in fake.requests[-1].body
    assert response.headers["x-orkestra-ignored-params"] == "temperature"
    assert response.json()["orkestra"]["ignored_params"] == ["temperature"]


def test_a_conversation_reaches_the_provider_whole(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    """Needs ``messages=`` in Provider.chat (the conversations change)."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "developer", "content": [{"type": "text", "text": "Be terse."}]},
            {"role": "user", "content": "And of Japan?"},
        ],
    }
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    sent = fake.requests[-1].body["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "user"]
    assert sent[-1]["content"] == "And of Japan?"
    assert any("Answer in one word." in str(m["content"]) for m in sent)


# -- streaming -------------------------------------------------------------------------------


def test_a_stream_is_openai_chunks_ending_with_usage_and_done(
    app_client: AppClient, usage_log: SQLiteUsageLog
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    response = app_client().post("/v1/chat/completions", json=body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    for name in ("x-orkestra-provider", "x-orkestra-model", "x-orkestra-tier"):
        assert response.headers[name]
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith(f"[{response.headers['x-orkestra-model']}]")
    finish = chunks[-2]
    assert finish["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])
    extension = usage["orkestra"]
    assert extension["model"] == response.headers["x-orkestra-model"]
    assert extension["cost_usd"] > 0 and "savings_usd" in extension

    usage_log.flush()
    (record,) = usage_log.query()
    assert record.status == "ok" and record.cost == pytest.approx(extension["cost_usd"])


def test_a_stream_without_include_usage_has_no_usage_chunk(app_client: AppClient) -> None:
    response = app_client().post("/v1/chat/completions", json=chat_body(stream=True))
    chunks = sse_events(response.text)[:-1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["orkestra"]["cost_usd"] > 0


def test_a_stream_that_fails_before_any_text_is_an_http_error(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    fake.queue(Fault.status(503), times=50)
    client = app_client(max_retries=0, fallback="none")
    response = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini", stream=True))
    assert response.status_code == 503
    assert is_openai_error(response)
    assert response.json()["error"]["code"] == "upstream_unavailable"
    usage_log.flush()
    (record,) = usage_log.query()
    assert record.status == "ProviderUnavailableError" and record.source == "proxy"


def test_a_stream_broken_after_text_ends_with_an_error_event(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    fake.queue(Fault.stream_error(2, error_type="api_error", message="boom"))
    body = chat_body("Tell me a long story about dragons", model="gpt-4o-mini", stream=True)
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200  # the headers were sent with the first chunk
    events = sse_events(response.text)
    assert "[DONE]" not in events
    assert "error" in events[-1] and events[-1]["error"]["type"] == "server_error"
    assert sum(1 for e in events if "choices" in e and e["choices"][0]["delta"].get("content")) == 2
    usage_log.flush()
    assert usage_log.query()[0].status == "StreamInterruptedError"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["gpt-17", "orkestra/fastest", "orkestra/mistral", "openai/claude-haiku-4-5", ""]
)
def test_an_unknown_model_is_an_openai_404(app_client: AppClient, model: str) -> None:
    response = app_client().post("/v1/chat/completions", json=chat_body(model=model))
    assert response.status_code == 404
    assert is_openai_error(response)
    assert response.json()["error"]["code"] == "model_not_found"
    assert response.json()["error"]["param"] == "model"


def test_a_model_of_a_provider_not_served_says_so(app_client: AppClient) -> None:
    client = app_client(providers=make_config().providers[:1])  # openai only
    response = client.post("/v1/chat/completions", json=chat_body(model="claude-haiku-4-5"))
    assert response.status_code == 404
    assert "does not serve anthropic" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"response_format": {"type": "grammar", "grammar": "x"}}, "response_format.type"),
        ({"n": 2}, "n"),
    ],
)
def test_a_parameter_orkestra_cannot_honour_is_a_400_naming_it(
    app_client: AppClient, fake: FakeProviderServer, extra: dict[str, Any], param: str
) -> None:
    response = app_client().post("/v1/chat/completions", json=chat_body(**extra))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and "orkestra does not support" in error["message"]
    assert fake.requests == []  # nothing was sent


def test_an_upstream_rejecting_our_key_is_a_502_not_a_401(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    fake.queue(Fault.status(401))
    response = app_client().post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini"))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_authentication"
    assert response.headers["x-orkestra-provider"] == "openai"


def test_an_upstream_answering_200_without_an_answer_is_a_502(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    fake.queue(Fault.malformed(b"<html>Sign in</html>", content_type="text/html"), times=10)
    client = app_client(max_retries=0, fallback="none")
    response = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini"))
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_malformed" and "200 OK without an answer" in error["message"]


def test_an_upstream_rate_limit_passes_its_retry_after_on(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    fake.queue(Fault.status(429, retry_after=30), times=10)
    client = app_client(max_retries=0, fallback="none")
    response = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini"))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after"] == "30"


def test_a_routed_call_falls_back_when_its_model_fails(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    fake.queue(Fault.status(503), provider="openai", times=10)
    client = app_client(providers=make_config().providers, max_retries=0, fallback="up-then-down")
    response = client.post("/v1/chat/completions", json=chat_body(model="orkestra/auto"))
    assert response.status_code == 200
    if response.json()["orkestra"]["attempts"] > 1:
        assert response.headers["x-orkestra-provider"] != "openai"


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [("/v1/completions", "POST", 404), ("/v1/chat/completions", "GET", 405), ("/", "GET", 404)],
)
def test_other_urls_and_methods_are_openai_errors(
    app_client: AppClient, path: str, method: str, status: int
) -> None:
    response = app_client().request(method, path)
    assert response.status_code == status
    assert is_openai_error(response)


def test_a_body_over_the_cap_is_a_413(app_client: AppClient) -> None:
    client = app_client(max_body_bytes=64 * 1024)
    body = chat_body("x" * 100_000)
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 413
    assert is_openai_error(response)
    assert client.get("/healthz").status_code == 200


def test_a_library_bug_is_a_500_without_a_traceback(
    app_client: AppClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_client()
    dispatcher = client.app.state.proxy.dispatcher  # type: ignore[attr-defined]

    async def broken(*args: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(dispatcher, "achat", broken)
    response = client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 500
    assert is_openai_error(response)
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    assert "secret internal detail" in caplog.text  # logged for the operator


# -- auth, budgets, models, health -----------------------------------------------------------


def test_a_key_is_required_once_keys_are_configured(
    app_client: AppClient, usage_log: SQLiteUsageLog
) -> None:
    client = app_client(keys=(client_key(),))
    no_key = client.post("/v1/chat/completions", json=chat_body())
    wrong = client.post(
        "/v1/chat/completions", json=chat_body(), headers={"authorization": f"Bearer {OTHER_KEY}"}
    )
    basic = client.post(
        "/v1/chat/completions", json=chat_body(), headers={"authorization": f"Basic {CLIENT_KEY}"}
    )
    for response in (no_key, wrong, basic):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert OTHER_KEY not in response.text and CLIENT_KEY not in response.text
    assert client.get("/v1/models").status_code == 401
    assert client.get("/healthz").status_code == 200

    ok = client.post(
        "/v1/chat/completions", json=chat_body(), headers={"authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert ok.status_code == 200
    usage_log.flush()
    (record,) = usage_log.query()
    assert record.key_id == key_id_for(CLIENT_KEY)


def test_a_key_over_its_budget_gets_insufficient_quota(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    client = app_client(keys=(client_key(budget_usd=0.0),))
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    for model, stream in [
        ("orkestra/auto", False),
        ("gpt-4o-mini", False),
        ("orkestra/auto", True),
        ("gpt-4o-mini", True),
    ]:
        body = chat_body(model=model, stream=stream)
        response = client.post("/v1/chat/completions", json=body, headers=auth)
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["type"] == error["code"] == "insufficient_quota"
        assert "budget" in error["message"]
        assert response.headers["x-should-retry"] == "false"
    assert fake.requests == []
    usage_log.flush()
    assert {r.status for r in usage_log.query()} == {"BudgetExceededError"}


def test_a_key_budget_is_spent_then_refused(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    # One pass-through call to gpt-4o-mini with max_tokens=10 reserves its worst case, ~$0.0000099
    # (26 prompt tokens at most, all 10 output tokens), and bills ~$0.0000026: a $0.000012 cap
    # takes one, not two.
    client = app_client(keys=(client_key(budget_usd=0.000012),))
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    body = chat_body("hi", model="gpt-4o-mini", max_tokens=10)
    assert client.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    assert client.post("/v1/chat/completions", json=body, headers=auth).status_code == 429
    assert len(fake.requests) == 1


def test_replicas_sharing_a_log_share_a_key_budget(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    config = make_config(keys=(client_key(budget_usd=0.000012),), budget_sync_seconds=0.05)
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    body = chat_body("hi", model="gpt-4o-mini", max_tokens=10)
    with TestClient(create_app(config, usage_log=usage_log)) as first:
        assert first.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    # A second replica over the same log starts knowing what the first spent.
    with TestClient(create_app(config, usage_log=usage_log)) as second:
        response = second.post("/v1/chat/completions", json=body, headers=auth)
        assert response.status_code == 429
    assert len(fake.requests) == 1


def test_models_lists_routed_names_and_catalog_models(app_client: AppClient) -> None:
    client = app_client(keys=(client_key(),))
    response = client.get("/v1/models", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 200
    ids = [m["id"] for m in response.json()["data"]]
    assert ids[:4] == [
        "orkestra/auto",
        "orkestra/cheapest",
        "orkestra/smartest",
        "orkestra/balanced",
    ]
    assert {"orkestra/openai", "orkestra/anthropic", "orkestra/google", "gpt-4o-mini"} <= set(ids)
    # The same routed names without a slash, for SDKs that read "a/b" as a provider prefix.
    assert {"orkestra-auto", "orkestra-cheapest", "orkestra-openai", "orkestra-google"} <= set(ids)
    one = client.get("/v1/models/orkestra/auto", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert one.json()["id"] == "orkestra/auto"
    missing = client.get("/v1/models/gpt-17", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert missing.status_code == 404 and is_openai_error(missing)


def test_health(app_client: AppClient) -> None:
    response = app_client().get("/healthz")
    assert response.json() == {"status": "ok", "providers": ["openai", "anthropic", "google"]}


def test_no_key_ever_reaches_a_response_or_the_log(
    app_client: AppClient,
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    client = app_client(keys=(client_key(),))
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    fake.queue(Fault.status(401, message=f"Incorrect API key provided: {UPSTREAM_KEY}"))
    texts = [
        client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini"), headers=auth),
        client.post("/v1/chat/completions", json=chat_body(), headers=auth),
        client.post("/v1/chat/completions", json=chat_body(stream=True), headers=auth),
        client.post(
            "/v1/chat/completions",
            json=chat_body(),
            headers={"authorization": f"Bearer {UPSTREAM_KEY}"},
        ),
    ]
    usage_log.flush()
    stored = json.dumps([r.as_dict() for r in usage_log.query()])
    everything = "".join(r.text + str(r.headers) for r in texts) + stored + caplog.text
    assert UPSTREAM_KEY not in everything
    assert CLIENT_KEY not in everything


@pytest.mark.parametrize(
    ("model", "providers"),
    [
        ("orkestra-auto", {"openai", "anthropic", "google"}),
        ("orkestra-cheapest", {"openai", "anthropic", "google"}),
        ("orkestra-anthropic", {"anthropic"}),
    ],
)
def test_routed_names_without_a_slash_route_like_their_slashed_forms(
    app_client: AppClient, fake: FakeProviderServer, model: str, providers: set[str]
) -> None:
    client = app_client()
    response = client.post("/v1/chat/completions", json=chat_body(model=model))
    assert response.status_code == 200, response.text
    assert response.headers["x-orkestra-provider"] in providers
    assert fake.requests[-1].provider == response.headers["x-orkestra-provider"]
    if model == "orkestra-cheapest":
        assert response.json()["orkestra"]["strategy"] == "cheapest"
    unknown = client.post("/v1/chat/completions", json=chat_body(model="orkestra-nothing"))
    assert unknown.status_code == 404 and is_openai_error(unknown)
