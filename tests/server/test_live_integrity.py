"""What the proxy's clients and usage log can count on, with a real ``orkestra serve`` process
and the real ``openai`` client: after a ``kill -9`` every request a client saw answered is in the
usage log and the request in flight is counted at its worst case (the write-ahead journal,
replayed by the next opener); a stream cut after text tells the client what it cost."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import openai
import pytest
from proxy_helpers import CLIENT_KEY, LiveServer, config_toml, server_env, start_server
from test_live import stored_calls

from orkestra.testing import FakeProviderServer, Fault
from orkestra.usage import key_id_for, open_usage_log
from orkestra.usage._journal import INTERRUPTED

pytestmark = pytest.mark.slow


def test_kill_9_of_the_proxy_loses_no_answered_request(
    upstream: FakeProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.clear()
    db = tmp_path / "usage.db"
    config = tmp_path / "orkestra.toml"
    config.write_text(config_toml(upstream, db))
    live = start_server(config, server_env(tmp_path), tmp_path / "server.log", db)
    answered: dict[str, float] = {}
    try:
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the server's writer cannot store anything now
        with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
            for i in range(6):
                messages = [{"role": "user", "content": f"request {i}"}]
                if i % 2:
                    with client.chat.completions.with_streaming_response.create(
                        model="orkestra/auto", messages=messages, stream=True
                    ) as raw:
                        chunks = list(raw.parse())
                    cost = chunks[-1].model_extra["orkestra"]["cost_usd"]  # type: ignore[index]
                else:
                    got = client.chat.completions.with_raw_response.create(
                        model="gpt-4o-mini", messages=messages
                    )
                    raw = got  # type: ignore[assignment]
                    cost = float(got.headers["x-orkestra-cost-usd"])
                answered[raw.headers["x-request-id"]] = cost

            upstream.queue(Fault.delay(30))  # the next request hangs upstream until the kill
            seen = len(upstream.requests)
            errors: list[Exception] = []

            def ask_in_flight() -> None:
                try:
                    client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "in flight"}],
                    )
                except openai.APIConnectionError as error:  # the server died under it
                    errors.append(error)

            in_flight = threading.Thread(target=ask_in_flight, daemon=True)
            in_flight.start()
            deadline = time.monotonic() + 30
            while len(upstream.requests) == seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(upstream.requests) == seen + 1
            os.kill(live.process.pid, signal.SIGKILL)
            assert live.process.wait(timeout=30) == -signal.SIGKILL
            in_flight.join(30)
            assert len(errors) == 1
        lock.execute("COMMIT")
        lock.close()
    finally:
        if live.alive():
            live.stop()

    assert not db.with_name("usage.db.journal").exists() or any(
        db.with_name("usage.db.journal").iterdir()
    )
    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path))
    with open_usage_log(f"sqlite:///{db}") as log:  # as the restarted proxy would
        assert log.replayed >= 1
        records = {r.id: r for r in log.query()}
    assert {i: records[i].cost for i in answered} == pytest.approx(answered)
    assert all(records[i].key_id == key_id_for(CLIENT_KEY) for i in answered)
    (lost,) = [r for r in records.values() if r.status == INTERRUPTED]
    assert lost.source == "proxy" and lost.key_id == key_id_for(CLIENT_KEY)
    assert lost.model == "gpt-4o-mini" and lost.cost > 0
    assert len(records) == len(answered) + 1


def test_a_stream_cut_after_text_tells_the_client_its_cost(
    live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.clear()
    upstream.queue(Fault.stream_error(2, error_type="api_error", message="boom"))
    text, chunks = "", []
    with openai.OpenAI(base_url=live.base_url, api_key=CLIENT_KEY, max_retries=0) as client:
        stream = client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Tell me a long story about dragons"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        with stream as raw, pytest.raises(openai.APIError) as cut:
            request_id = raw.headers["x-request-id"]
            for chunk in raw.parse():
                chunks.append(chunk)
                text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text  # the client had text before the cut
    told = cut.value.body["orkestra"]  # type: ignore[index]
    assert told["status"] == "StreamInterruptedError" and told["model"] == "gpt-4o-mini"
    usage_chunk = chunks[-1]  # before the error: what was billed, as a normal end has it
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.model_extra["orkestra"]["cost_usd"] == told["cost_usd"]  # type: ignore[index]
    assert usage_chunk.usage.completion_tokens == told["usage"]["completion_tokens"]
    (row,) = stored_calls(live, request_id)
    assert row["status"] == "StreamInterruptedError"
    assert row["cost"] == pytest.approx(told["cost_usd"])
