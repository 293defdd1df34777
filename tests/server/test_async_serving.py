"""The proxy serves on the library's async path: every call and every streamed chunk on the
server's event loop, upstream connections reused, a bounded number of requests and upstream
connections with an honest 503 past them, and a client that leaves mid-stream cancels the
upstream call and settles its budget.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from proxy_helpers import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    AppClient,
    chat_body,
    client_key,
    make_config,
    served,
    server_env,
    sse_events,
    start_server,
)

from orkestra.server import ProviderConfig, create_app, hash_key
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog

PASS_THROUGH = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "google": "gemini-2.5-flash-lite",
}


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_calls_and_streamed_chunks_run_on_the_event_loop(app_client: AppClient) -> None:
    client = app_client()
    provider = client.app.state.proxy.dispatcher.providers["openai"]  # type: ignore[attr-defined]
    seen: list[tuple[str, bool]] = []
    for name in ("on_chunk", "on_response", "on_stream_complete"):
        provider.event(name)(lambda event: seen.append((event["event"], _on_a_loop())))

    plain = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini"))
    streamed = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini", stream=True))

    assert plain.status_code == 200 and streamed.status_code == 200
    assert "[DONE]" in sse_events(streamed.text)
    names = [name for name, _ in seen]
    assert names.count("on_response") == 2 and names.count("on_chunk") >= 3
    assert all(on_loop for _, on_loop in seen)  # no worker thread in between


@pytest.mark.parametrize("provider", list(PASS_THROUGH))
def test_upstream_connections_are_reused_streamed_or_not(
    app_client: AppClient, fake: FakeProviderServer, provider: str
) -> None:
    client = app_client()
    model = PASS_THROUGH[provider]
    for i in range(5):
        plain = client.post("/v1/chat/completions", json=chat_body(f"question {i}", model=model))
        streamed = client.post(
            "/v1/chat/completions", json=chat_body(f"question {i}", model=model, stream=True)
        )
        assert plain.status_code == 200 and streamed.status_code == 200, streamed.text
        assert sse_events(streamed.text)[-1] == "[DONE]"
    assert len(fake.requests) == 10
    assert fake.connections_accepted == 1  # one connection, kept alive, not one per request


# -- backpressure ----------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def test_a_full_proxy_answers_503_with_retry_after(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    app = create_app(make_config(max_concurrency=1, queue_timeout=0.3), usage_log=usage_log)
    fake.queue(Reply(delay=1.5), provider="openai")
    with served(app) as url, concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(_post, url, chat_body("slow", model="gpt-4o-mini"))
        time.sleep(0.5)  # the slow one holds the only slot
        started = time.monotonic()
        busy = _post(url, chat_body("turned away", model="gpt-4o-mini"))
        waited = time.monotonic() - started
        assert slow.result().status_code == 200
        after = _post(url, chat_body("served again", model="gpt-4o-mini"))
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "server_busy"
    assert 0.25 < waited < 1.4  # it waited its queue_timeout, not for the slow one
    assert after.status_code == 200
    assert [r.body["messages"][0]["content"] for r in fake.requests] == ["slow", "served again"]


def test_a_provider_at_its_max_connections_answers_503_and_trips_nothing(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    config = make_config(
        providers=(ProviderConfig("openai", max_connections=1),), queue_timeout=0.3
    )
    app = create_app(config, usage_log=usage_log)
    fake.queue(Reply(delay=1.5), provider="openai")
    with served(app) as url, concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(_post, url, chat_body("slow", model="gpt-4o-mini"))
        time.sleep(0.5)
        busy = _post(url, chat_body("no connection free", model="orkestra/openai"))
        assert slow.result().status_code == 200
        after = [_post(url, chat_body(f"then {i}", model="orkestra/openai")) for i in range(3)]
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "server_busy"
    assert "connections to openai" in busy.json()["error"]["message"]
    assert [a.status_code for a in after] == [200, 200, 200]  # no circuit opened by it
    assert "no connection free" not in [r.body["messages"][-1]["content"] for r in fake.requests]
    usage_log.flush()
    assert sorted(r.status for r in usage_log.query()) == ["PoolTimeoutError"] + ["ok"] * 4


def test_max_connections_and_queue_timeout_are_checked() -> None:
    from orkestra.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"providers\.openai\.max_connections"):
        make_config(providers=(ProviderConfig("openai", max_connections=0),))
    with pytest.raises(ConfigurationError, match=r"server\.queue_timeout"):
        make_config(queue_timeout=0)


# -- a client that leaves mid-stream, with a real server process ------------------------------


def _capped_config(upstream: FakeProviderServer, db: Path) -> str:
    return f"""
[usage]
database_url = "sqlite:///{db}"

[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"

[[keys]]
name = "capped"
sha256 = "{hash_key(CLIENT_KEY)}"
budget_usd = 5
"""


def _read_until_text(sock: socket.socket) -> bytes:
    received = b""
    deadline = time.monotonic() + 30
    while b'"content":"' not in received.replace(b'"content":""', b""):
        assert time.monotonic() < deadline, received
        part = sock.recv(65536)
        assert part, received
        received += part
    return received


def test_a_client_that_leaves_mid_stream_cancels_upstream_and_settles_its_budget(
    upstream: FakeProviderServer, tmp_path: Path
) -> None:
    upstream.clear()
    db = tmp_path / "usage.db"
    config = tmp_path / "orkestra.toml"
    config.write_text(_capped_config(upstream, db))
    server = start_server(config, server_env(tmp_path), tmp_path / "server.log", db)
    try:
        # A slow answer: 16 pieces, half a second apart (8 s to the end).
        upstream.queue(Reply("word " * 64, chunk_delay=0.5), provider="openai")
        host, port = server.url.removeprefix("http://").split(":")
        body = chat_body("tell me a long story", model="gpt-4o-mini", stream=True, max_tokens=500)
        payload = httpx.Request("POST", "http://x/v1/chat/completions", json=body).content
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {CLIENT_KEY}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            assert b" 200 " in _read_until_text(sock).split(b"\r\n", 1)[0]
            left = time.monotonic()
        # The upstream stream is cut long before its 8 s: the proxy closed it.
        while upstream.streams_left == 0:
            assert time.monotonic() - left < 5, server.output()
            time.sleep(0.05)
        log = SQLiteUsageLog(db)
        store = log.spend_store()
        try:
            while True:  # the proxy writes its record in the background
                records = log.query()
                if records or time.monotonic() - left > 10:
                    break
                time.sleep(0.1)
            assert [r.status for r in records] == ["StreamClosed"]
            spent, held = store.totals(hash_key(CLIENT_KEY)[:12], None)
        finally:
            store.close()
            log.close()
        # Settled: no hold left, and (text was sent, its final usage never came) the whole
        # hold counted as spent.
        assert held == 0.0 and spent > 0.0
        assert server.alive()
        assert UPSTREAM_KEY not in server.output()
    finally:
        server.stop()
        upstream.clear()


def test_client_key_budgets_still_refuse_through_the_async_path(app_client: AppClient) -> None:
    client = app_client(keys=(client_key(budget_usd=0),))
    response = client.post(
        "/v1/chat/completions",
        json=chat_body(model="gpt-4o-mini", stream=True),
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "insufficient_quota"
