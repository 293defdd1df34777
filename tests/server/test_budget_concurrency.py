"""A key's budget holds under 50 concurrent clients: in this process (pass-through and routed)
and across two real server processes on one real PostgreSQL.

Every upstream answer waits a moment, so all fifty requests are in flight together, and bills
4,000 output tokens; no request sets ``max_tokens``. Before worst-case holds, the reservations
assumed ~1,000 output tokens (pass-through) or the router's predicted length (routed), and each
replica kept its own budget: $0.01 caps were overspent 3.8× (pass-through), 32× (routed) and
7.7× (two replicas) by exactly these requests.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import openai
import pytest
from proxy_helpers import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    client_key,
    make_config,
    served,
    start_server,
)

from orkestra.server import create_app, hash_key
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog, key_id_for, open_usage_log

CLIENTS = 50
CAP = 0.01
OUTPUT_TOKENS = 4_000


async def fire(base_urls: list[str], model: str, *, stream: bool = False) -> list[int]:
    """``CLIENTS`` requests at once over ``base_urls``: the status of each."""
    clients = [openai.AsyncOpenAI(base_url=u, api_key=CLIENT_KEY, max_retries=0) for u in base_urls]

    async def one(i: int) -> int:
        messages = [{"role": "user", "content": f"Write essay number {i}"}]
        client = clients[i % len(clients)]
        try:
            if stream:
                chunks = await client.chat.completions.create(
                    model=model, messages=messages, stream=True
                )
                async for _ in chunks:
                    pass
            else:
                await client.chat.completions.create(model=model, messages=messages)
        except openai.APIStatusError as error:
            return error.status_code
        return 200

    try:
        return await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    finally:
        for client in clients:
            await client.close()


def long_answers(upstream: FakeProviderServer) -> None:
    upstream.queue(Reply(output_tokens=OUTPUT_TOKENS, delay=0.3), times=CLIENTS)


@pytest.mark.parametrize(
    ("model", "stream"),
    [("gpt-4o-mini", False), ("orkestra/openai", False), ("gpt-4o-mini", True)],
)
def test_fifty_concurrent_requests_stay_within_a_key_budget(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog, model: str, stream: bool
) -> None:
    long_answers(fake)
    app = create_app(make_config(keys=(client_key(budget_usd=CAP),)), usage_log=usage_log)
    with served(app) as url:
        statuses = asyncio.run(fire([f"{url}/v1"], model, stream=stream))
    usage_log.flush()
    spent = usage_log.spend(key_id_for(CLIENT_KEY))
    store = usage_log.spend_store()
    try:  # every hold was settled: the ledger's spend is the log's
        ledger_spent, held = store.totals(key_id_for(CLIENT_KEY), None)
    finally:
        store.close()
    assert held == 0.0
    assert ledger_spent == pytest.approx(spent)
    answered = statuses.count(200)
    assert set(statuses) <= {200, 429}
    assert answered >= 1  # the cap is not simply refusing everything
    # Every attempt reserved its worst case, and none billed more: nothing past the cap.
    assert spent <= CAP, f"spent ${spent:.6f} of ${CAP} ({spent / CAP:.2f}×)"
    assert len(fake.requests) == answered  # the refused ones never reached the provider


@pytest.mark.slow
def test_two_replicas_on_one_postgres_share_a_key_budget(
    upstream: FakeProviderServer, postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "orkestra.toml"
    config.write_text(
        f"""
[server]
port = 0
[routing]
max_retries = 0
[usage]
database_url = "{postgres_url}"
[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"
[[keys]]
name = "team-a"
sha256 = "{hash_key(CLIENT_KEY)}"
budget_usd = {CAP}
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(ORKESTRA_HOME=str(tmp_path), UPSTREAM_OPENAI_KEY=UPSTREAM_KEY)
    upstream.clear()
    long_answers(upstream)
    replicas = [
        start_server(config, env, tmp_path / f"replica{i}.log", tmp_path / "unused.db")
        for i in (1, 2)
    ]
    try:
        statuses = asyncio.run(fire([f"{r.url}/v1" for r in replicas], "gpt-4o-mini"))
    finally:
        for replica in replicas:
            replica.stop()  # its usage log is flushed on the way out
    upstream.clear()
    log = open_usage_log(postgres_url)
    try:
        spent = log.spend(key_id_for(CLIENT_KEY))
        records = log.query()
    finally:
        log.close()
    answered = statuses.count(200)
    assert set(statuses) <= {200, 429}
    assert answered >= 1
    assert {r.status for r in records} == {"ok", "BudgetExceededError"}
    assert spent <= CAP, f"spent ${spent:.6f} of ${CAP} ({spent / CAP:.2f}×)"
