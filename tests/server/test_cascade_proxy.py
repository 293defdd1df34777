"""Cascades through the proxy: ``model="orkestra/cascade"`` and ``[routing] mode = "cascade"``,
non-streaming and streaming (always buffered: an OpenAI client cannot be told that text it was
sent is withdrawn), the steps in ``x-orkestra-cascade-steps`` and the ``orkestra`` object, every
attempt in the usage log. In process, then a real server process with the real ``openai``
client."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import openai
import pytest
from proxy_helpers import CLIENT_KEY, AppClient, LiveServer, chat_body, sse_events

from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog

REFUSAL = "I'm sorry, but I can't help with that."
QUESTION = "What is the capital of Japan?"
CHEAPEST = "gemini-2.5-flash-lite"  # the cheapest budget model of the three providers


def generations(fake: FakeProviderServer) -> list[tuple[str | None, bool]]:
    return [(r.model, r.stream) for r in fake.requests if r.method == "POST"]


# -- in process -------------------------------------------------------------------------------


def test_orkestra_cascade_climbs_and_says_so(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    fake.queue(Reply(REFUSAL), model=CHEAPEST)
    response = app_client().post("/v1/chat/completions", json=chat_body(model="orkestra/cascade"))

    assert response.status_code == 200
    body, headers = response.json(), response.headers
    first, second = generations(fake)
    assert first == (CHEAPEST, False) and second[0] == body["model"]
    steps = headers["x-orkestra-cascade-steps"].split(",")
    assert steps == [
        f"google/{CHEAPEST}:failed",
        f"{headers['x-orkestra-provider']}/{body['model']}:passed",
    ]
    cascade = body["orkestra"]["cascade"]
    assert cascade["escalated"] is True
    cheap, kept = cascade["steps"]
    assert (cheap["model"], cheap["passed"], cheap["accepted"]) == (CHEAPEST, False, False)
    assert "refusal" in cheap["reason"] and cheap["verifier"] == "heuristic"
    assert kept["accepted"] is True and kept["passed"] is True
    cost = float(headers["x-orkestra-cost-usd"])
    assert cost == pytest.approx(cheap["cost_usd"] + kept["cost_usd"])
    assert body["orkestra"]["cost_usd"] == pytest.approx(cost)
    assert cascade["discarded_cost_usd"] == pytest.approx(cheap["cost_usd"])

    usage_log.flush()
    (record,) = usage_log.query()
    assert record.id == headers["x-request-id"] and record.source == "proxy"
    assert record.cost == pytest.approx(cost) and record.model == body["model"]
    assert record.attempts == 2 and record.attempts_detail is not None
    assert [a["discarded"] for a in record.attempts_detail] == [True, False]
    assert record.attempts_detail[0]["verdict"]["passed"] is False


def test_routed_names_cascade_when_the_config_says(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    client = app_client(mode="cascade")
    fake.queue(Reply(REFUSAL), model=CHEAPEST)
    routed = client.post("/v1/chat/completions", json=chat_body())
    assert routed.status_code == 200
    assert routed.json()["orkestra"]["cascade"]["escalated"] is True
    assert "x-orkestra-cascade-steps" in routed.headers

    fake.clear()
    passed_through = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini"))
    assert passed_through.json()["orkestra"]["cascade"] is None
    assert "x-orkestra-cascade-steps" not in passed_through.headers
    assert generations(fake) == [("gpt-4o-mini", False)]

    names = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert "orkestra/cascade" in names


def test_a_routing_proxy_routes_unless_asked(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    response = app_client().post("/v1/chat/completions", json=chat_body())
    assert response.json()["orkestra"]["cascade"] is None
    assert "x-orkestra-cascade-steps" not in response.headers


def test_a_streamed_cascade_is_buffered(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    fake.queue(Reply(REFUSAL), model=CHEAPEST)
    body = chat_body(model="orkestra/cascade", stream=True, stream_options={"include_usage": True})
    response = app_client().post("/v1/chat/completions", json=body)

    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    text = "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events[:-1]
        if isinstance(e, dict) and e["choices"]
    )
    assert REFUSAL not in text and text  # the withdrawn answer never reached the client
    model = response.headers["x-orkestra-model"]
    assert text.startswith(f"[{model}]")
    # Both checked answers were asked whole; nothing was streamed from a provider before its
    # check passed.
    assert [stream for _, stream in generations(fake)] == [False, False]
    assert response.headers["x-orkestra-cascade-steps"] == (
        f"google/{CHEAPEST}:failed,{response.headers['x-orkestra-provider']}/{model}:passed"
    )
    final = events[-2]
    assert final["orkestra"]["cascade"]["steps"][0]["passed"] is False
    assert final["orkestra"]["cascade"]["streaming"] == "buffer"

    usage_log.flush()
    (record,) = usage_log.query()
    assert record.attempts == 2 and record.cost == pytest.approx(final["orkestra"]["cost_usd"])


def _payloads(text: str) -> list[dict[str, Any]]:
    """The JSON ``data:`` of an event stream whose blocks are ``event:`` + ``data:`` pairs."""
    return [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_a_streamed_cascade_names_the_model_that_answered_on_every_api(
    app_client: AppClient, fake: FakeProviderServer, path: str
) -> None:
    """The Messages and Responses streams of a cascade that climbed (asked by its slashless
    name) name the model whose answer was kept, never the one whose answer was withdrawn."""
    fake.queue(Reply(REFUSAL), model=CHEAPEST)
    if path == "/v1/messages":
        body: dict[str, Any] = {
            "model": "orkestra-cascade",
            "max_tokens": 256,
            "stream": True,
            "messages": [{"role": "user", "content": QUESTION}],
        }
    else:
        body = {"model": "orkestra-cascade", "input": QUESTION, "stream": True}
    response = app_client().post(path, json=body)

    assert response.status_code == 200
    model = response.headers["x-orkestra-model"]
    assert model != CHEAPEST
    assert response.headers["x-orkestra-cascade-steps"].startswith(f"google/{CHEAPEST}:failed,")
    events = _payloads(response.text)
    if path == "/v1/messages":
        named = [e["message"]["model"] for e in events if e["type"] == "message_start"]
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        final = next(e for e in events if e["type"] == "message_delta")["orkestra"]
    else:
        named = [e["response"]["model"] for e in events if "response" in e]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        final = events[-1]["response"]["orkestra"]
    assert named and set(named) == {model}
    assert text.startswith(f"[{model}]") and REFUSAL not in text
    assert final["cascade"]["steps"][0]["passed"] is False


def test_a_cascade_refused_by_a_key_budget_reports_what_it_spent(
    app_client: AppClient, fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    from proxy_helpers import client_key

    client = app_client(keys=(client_key(budget_usd=0.0001),))
    prompt = "Tom has 12 apples and buys 3 more. How many apples does he have now?"
    response = client.post(
        "/v1/chat/completions",
        json=chat_body(prompt, model="orkestra/cascade", max_tokens=64),
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert generations(fake) == [(CHEAPEST, False)]  # the climb was refused before any call
    assert float(response.headers["x-orkestra-cost-usd"]) > 0  # the cheap call was billed
    usage_log.flush()
    (record,) = usage_log.query()
    assert record.status == "BudgetExceededError" and record.cost > 0


# -- a real server process, the real openai client --------------------------------------------


def stored(live: LiveServer, request_id: str, timeout: float = 10.0) -> sqlite3.Row | None:
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(live.db) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM calls WHERE id = ?", (request_id,)).fetchone()
        if row is not None or time.monotonic() > deadline:
            return row  # type: ignore[no-any-return]
        time.sleep(0.05)


@pytest.mark.slow
def test_the_openai_client_against_a_live_cascading_proxy(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.clear()
    messages: Any = [{"role": "user", "content": QUESTION}]
    with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
        upstream.queue(Reply(REFUSAL), model=CHEAPEST)
        raw = client.chat.completions.with_raw_response.create(
            model="orkestra/cascade", messages=messages
        )
        completion = raw.parse()
        assert completion.choices[0].message.content.startswith(f"[{completion.model}]")
        steps = raw.headers["x-orkestra-cascade-steps"].split(",")
        assert steps[0] == f"google/{CHEAPEST}:failed" and steps[-1].endswith(":passed")
        extra = completion.model_extra
        assert extra is not None and len(extra["orkestra"]["cascade"]["steps"]) == 2
        row = stored(live, raw.headers["x-request-id"])
        assert row is not None and row["attempts"] == 2
        detail = json.loads(row["attempts_detail"])
        assert [a["discarded"] for a in detail] == [True, False]
        assert row["cost"] == pytest.approx(float(raw.headers["x-orkestra-cost-usd"]))

        upstream.queue(Reply(REFUSAL), model=CHEAPEST)
        chunks = list(
            client.chat.completions.create(
                model="orkestra/cascade",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert REFUSAL not in text and text.endswith(QUESTION)
        last = chunks[-1].model_extra
        assert last is not None and last["orkestra"]["cascade"]["escalated"] is True

    async def ask() -> str:
        async with openai.AsyncOpenAI(
            base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0
        ) as client:
            completion = await client.chat.completions.create(
                model="orkestra/cascade", messages=messages
            )
            return completion.model

    upstream.clear()
    assert asyncio.run(ask()) == CHEAPEST  # a passing cheap answer: one call
    assert generations(upstream) == [(CHEAPEST, False)]


def test_the_config_mode_is_checked() -> None:
    from proxy_helpers import make_config

    from orkestra import ConfigurationError
    from orkestra.server import ServerConfig

    with pytest.raises(ConfigurationError, match=r"routing\.mode: 'cascades'"):
        make_config(mode="cascades")
    config = ServerConfig.from_mapping(
        {"routing": {"mode": "cascade"}, "providers": {"openai": {}}},
        environ={"OPENAI_API_KEY": "sk-test-0123456789abcdef"},
    )
    assert config.mode == "cascade"
