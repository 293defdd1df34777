"""A real ``python -m orkestra.server`` process on 127.0.0.1, called with the real ``openai``
client (sync, async, streaming), upstream the fake provider server."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator

import openai
import pytest
from proxy_helpers import CLIENT_KEY, OTHER_KEY, UPSTREAM_KEY, LiveServer

from orkestra.testing import FakeProviderServer, Fault
from orkestra.usage import key_id_for

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of Japan?"}]


@pytest.fixture
def client(live: LiveServer, upstream: FakeProviderServer) -> Iterator[openai.OpenAI]:
    upstream.clear()
    with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


def stored_calls(live: LiveServer, request_id: str, timeout: float = 10.0) -> list[sqlite3.Row]:
    """The usage log's rows for a request, once the server's writer has written them."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(live.db) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM calls WHERE id = ?", (request_id,)).fetchall()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_sync_client_gets_a_routed_answer_with_headers(
    client: openai.OpenAI, live: LiveServer, upstream: FakeProviderServer
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="orkestra/auto", messages=QUESTION)
    completion = raw.parse()

    assert completion.choices[0].message.content.startswith(f"[{completion.model}]")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-orkestra-model"] == completion.model == upstream.requests[-1].model
    assert raw.headers["x-orkestra-provider"] == upstream.requests[-1].provider
    assert raw.headers["x-orkestra-tier"] in ("budget", "balanced", "premium")
    cost = float(raw.headers["x-orkestra-cost-usd"])
    assert cost > 0
    assert float(raw.headers["x-orkestra-savings-usd"]) >= -cost
    assert completion.model_extra is not None
    assert completion.model_extra["orkestra"]["cost_usd"] == pytest.approx(cost)

    (row,) = stored_calls(live, raw.headers["x-request-id"])
    assert row["source"] == "proxy"
    assert row["key_id"] == key_id_for(CLIENT_KEY)
    assert row["model"] == completion.model
    assert row["cost"] == pytest.approx(cost)


def test_async_client(live: LiveServer) -> None:
    async def ask() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0
        ) as client:
            answers = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"Say the number {i}"}],
                        max_tokens=50,
                    )
                    for i in range(8)
                )
            )
        return [a.choices[0].message.content or "" for a in answers]

    answers = asyncio.run(ask())
    assert answers == [f"[gpt-4o-mini] Say the number {i}" for i in range(8)]


def test_async_client_streams(live: LiveServer) -> None:
    async def ask() -> tuple[str, int]:
        async with openai.AsyncOpenAI(
            base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model="orkestra-auto",
                messages=[{"role": "user", "content": "What is the capital of Japan?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text, tokens = [], 0
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
                if chunk.usage is not None:
                    tokens = chunk.usage.total_tokens
        return "".join(text), tokens

    text, tokens = asyncio.run(ask())
    assert text.startswith("[") and "capital of Japan" in text
    assert tokens > 0


def test_streaming_with_include_usage(client: openai.OpenAI, live: LiveServer) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="orkestra/auto",
        messages=[{"role": "user", "content": "Write a haiku about the sea"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as raw:
        model_header = raw.headers["x-orkestra-model"]
        chunks = list(raw.parse())

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"[{model_header}]")
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert last.model_extra is not None
    extension = last.model_extra["orkestra"]
    assert extension["model"] == model_header and extension["cost_usd"] > 0

    (row,) = stored_calls(live, raw.headers["x-request-id"])
    assert row["status"] == "ok" and row["cost"] == pytest.approx(extension["cost_usd"])


def test_a_stream_with_the_iterator_api(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-haiku-4-5", messages=QUESTION, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "[claude-haiku-4-5] What is the capital of Japan?"


def test_an_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-17", messages=QUESTION)
    assert caught.value.code == "model_not_found"


def test_a_bad_key_is_an_authentication_error(live: LiveServer) -> None:
    with openai.OpenAI(base_url=live.base_url, api_key="ok-not-a-key", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="orkestra/auto", messages=QUESTION)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_a_key_without_budget_is_refused_without_retries(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.clear()
    broke = openai.OpenAI(base_url=live.base_url, api_key=OTHER_KEY)  # its retries on
    with broke, pytest.raises(openai.RateLimitError) as caught:
        broke.chat.completions.create(model="orkestra/auto", messages=QUESTION)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert upstream.requests == []


def test_unsupported_parameters_are_bad_requests(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="orkestra/auto",
            messages=QUESTION,
            n=2,
        )
    assert caught.value.param == "n"


def test_models_list(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "orkestra/auto" in ids and "gpt-4o-mini" in ids
    assert client.models.retrieve("orkestra/openai").id == "orkestra/openai"


def test_no_key_appears_in_the_servers_output_or_log(
    client: openai.OpenAI, live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.queue(Fault.status(401, message=f"Incorrect API key: {UPSTREAM_KEY}"))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    wrong = openai.OpenAI(base_url=live.base_url, api_key=UPSTREAM_KEY, max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="orkestra/auto", messages=QUESTION)
    raw = client.chat.completions.with_raw_response.create(model="orkestra/auto", messages=QUESTION)
    assert stored_calls(live, raw.headers["x-request-id"])  # written, with those before it
    with sqlite3.connect(live.db) as db:
        dump = "\n".join(db.iterdump())
    output = live.output()
    assert "chat " in output  # the per-call log lines are there...
    for secret in (UPSTREAM_KEY, CLIENT_KEY, OTHER_KEY):
        assert secret not in output  # ...and no key
        assert secret not in dump
    assert live.alive()
