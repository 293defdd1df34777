"""Several proxy processes on one usage database share sticky sessions, budgets and the log.

In this process: two apps on one SQLite file stand for two workers (each has its own
connections). Then two real ``python -m orkestra.server`` processes on one real PostgreSQL,
driven by the real ``openai`` client, a conversation's turns alternating between them.

The turns are chosen for what the router does with them alone (the proxy routes with the
``cheapest`` strategy over the three providers at the fake server): BUDGET_TURNS go to the
budget tier, BALANCED_TURN to balanced, PREMIUM_TURN to premium (checked below, so a router
change shows here first rather than as a confusing failure).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from proxy_helpers import (
    CLIENT_KEY,
    OTHER_KEY,
    UPSTREAM_KEY,
    client_key,
    make_config,
    served,
    start_server,
)

from orkestra.server import create_app, hash_key
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog, key_id_for, open_usage_log

BUDGET_TURNS = (
    "What is the capital of Japan?",
    "Which river flows through the city of Paris in France?",
    "Which river flows through the city of Rome in Italy?",
    "What is the tallest mountain on the continent of Africa?",
)
BALANCED_TURN = "Explain in detail how a hash table handles collisions and resizing"
PREMIUM_TURN = (
    "Write a formal proof that the halting problem is undecidable, with every step justified."
)


class Conversation:
    """One conversation through the proxy: the history, sent whole each turn with its
    ``prompt_cache_key``, to the client whose turn it is."""

    def __init__(self, session: str | None) -> None:
        self.session = session
        self.messages: list[dict[str, Any]] = []

    def say(self, client: openai.OpenAI, text: str) -> tuple[str, str]:
        """The model and tier that answered ``text``."""
        self.messages.append({"role": "user", "content": text})
        extra = {} if self.session is None else {"prompt_cache_key": self.session}
        raw = client.chat.completions.with_raw_response.create(
            model="orkestra/auto", messages=self.messages, **extra
        )
        answer = raw.parse().choices[0].message.content
        self.messages.append({"role": "assistant", "content": answer})
        return raw.headers["x-orkestra-model"], raw.headers["x-orkestra-tier"]


def alternate(clients: list[openai.OpenAI], session: str) -> list[tuple[str, str]]:
    """Budget, budget, balanced, budget, premium, budget: turn i on ``clients[i % 2]``."""
    chat = Conversation(session)
    texts = [*BUDGET_TURNS[:2], BALANCED_TURN, BUDGET_TURNS[2], PREMIUM_TURN, BUDGET_TURNS[3]]
    return [chat.say(clients[i % len(clients)], text) for i, text in enumerate(texts)]


def alone(client: openai.OpenAI, text: str) -> str:
    """The tier the router gives ``text`` with no session."""
    return Conversation(None).say(client, text)[1]


def openai_clients(urls: list[str], key: str = CLIENT_KEY) -> list[openai.OpenAI]:
    return [openai.OpenAI(base_url=f"{u}/v1", api_key=key, max_retries=0) for u in urls]


@pytest.fixture
def two_workers(fake: FakeProviderServer, usage_log: SQLiteUsageLog) -> Iterator[list[str]]:
    """Two apps on one SQLite usage log (each opens its own session store): two workers."""
    config = make_config(keys=(client_key(), client_key("team-b", OTHER_KEY)))
    first, second = (create_app(config, usage_log=usage_log) for _ in range(2))
    with served(first) as one, served(second) as two:
        yield [one, two]


def test_the_turns_route_as_this_module_assumes(two_workers: list[str]) -> None:
    client = openai_clients(two_workers)[0]
    assert [alone(client, t) for t in BUDGET_TURNS] == ["budget"] * 4
    assert alone(client, BALANCED_TURN) == "balanced"
    assert alone(client, PREMIUM_TURN) == "premium"


def test_two_workers_keep_a_conversation_on_one_model(
    two_workers: list[str], fake: FakeProviderServer
) -> None:
    answers = alternate(openai_clients(two_workers), "conv-workers")
    models = [model for model, _ in answers]
    tiers = [tier for _, tier in answers]
    # escalates on worker 1, stays up on worker 2: never down
    assert tiers == ["budget", "budget", "balanced", "balanced", "premium", "premium"]
    assert models[0] == models[1] and models[2] == models[3] and models[4] == models[5]
    assert fake.requests[-1].body["prompt_cache_key"] == "conv-workers"  # o3 is OpenAI's


def test_a_cascading_conversation_never_climbs_back_down_across_workers(
    two_workers: list[str], fake: FakeProviderServer
) -> None:
    """A cascade that climbed pins its session at the tier that answered: the next turn, on
    the other worker, starts its cascade there (the pin is read and written off the event loop,
    in the shared database)."""
    cheapest = "gemini-2.5-flash-lite"
    fake.queue(Reply("I'm sorry, but I can't help with that."), model=cheapest)
    clients = openai_clients(two_workers)
    messages: list[dict[str, Any]] = [{"role": "user", "content": BUDGET_TURNS[0]}]
    tiers, steps = [], []
    for i, text in enumerate(BUDGET_TURNS[:3]):
        if i:
            messages.append({"role": "user", "content": text})
        raw = clients[i % 2].chat.completions.with_raw_response.create(
            model="orkestra/cascade", messages=messages, prompt_cache_key="conv-cascade"
        )
        messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
        tiers.append(raw.headers["x-orkestra-tier"])
        steps.append(raw.headers["x-orkestra-cascade-steps"].split(","))
    assert steps[0][0] == f"google/{cheapest}:failed" and len(steps[0]) == 2
    assert tiers[0] != "budget" and tiers == [tiers[0]] * 3
    assert [len(s) for s in steps[1:]] == [1, 1]  # started at the session's tier, passed there
    generated = [r.model for r in fake.requests if r.method == "POST"]
    assert generated.count(cheapest) == 1


def test_a_sticky_session_belongs_to_its_client_key(two_workers: list[str]) -> None:
    team_a = openai_clients(two_workers)
    team_b = openai_clients(two_workers, OTHER_KEY)
    assert alternate(team_a, "conv-shared-id")[-1][1] == "premium"
    # the same prompt_cache_key from another key is another session
    assert Conversation("conv-shared-id").say(team_b[1], BUDGET_TURNS[0])[1] == "budget"


def test_sessions_stay_per_process_when_configured(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    config = make_config(shared_sessions=False)
    first, second = (create_app(config, usage_log=usage_log) for _ in range(2))
    with served(first) as one, served(second) as two:
        tiers = [tier for _, tier in alternate(openai_clients([one, two]), "conv-local")]
    # worker 2 never saw the escalations on worker 1: its turns fall back to budget
    assert tiers == ["budget", "budget", "balanced", "budget", "premium", "budget"]


# -- two real server processes on one real PostgreSQL -----------------------------------------

CAP = 0.01
CAPPED_KEY = "ok-client-capped-Hh7Jk2Lm9Nb4Vc6Xz1Qw3Er5"


async def spend_concurrently(urls: list[str], count: int) -> list[tuple[int, str]]:
    """``count`` requests at once with the capped key over both replicas: (status, request id)
    of each."""
    clients = [
        openai.AsyncOpenAI(base_url=f"{u}/v1", api_key=CAPPED_KEY, max_retries=0) for u in urls
    ]

    async def one(i: int) -> tuple[int, str]:
        messages = [{"role": "user", "content": f"Write essay number {i}"}]
        try:
            raw = await clients[i % 2].chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages
            )
        except openai.APIStatusError as error:
            return error.status_code, error.response.headers["x-request-id"]
        return raw.status_code, raw.headers["x-request-id"]

    try:
        return await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for client in clients:
            await client.close()


async def race(urls: list[str], session: str, turns: int) -> list[tuple[str, str, str]]:
    """``turns`` turns of one session at once over both replicas, each a random mix of the
    module's turns: (model, tier, request id) of each."""
    clients = [
        openai.AsyncOpenAI(base_url=f"{u}/v1", api_key=CLIENT_KEY, max_retries=0) for u in urls
    ]
    rng = random.Random(7)
    texts = [rng.choice([*BUDGET_TURNS, BALANCED_TURN, PREMIUM_TURN]) for _ in range(turns)]

    async def one(i: int) -> tuple[str, str, str]:
        raw = await clients[i % 2].chat.completions.with_raw_response.create(
            model="orkestra/auto",
            messages=[{"role": "user", "content": texts[i]}],
            prompt_cache_key=session,
        )
        h = raw.headers
        return h["x-orkestra-model"], h["x-orkestra-tier"], h["x-request-id"]

    try:
        return await asyncio.gather(*(one(i) for i in range(turns)))
    finally:
        for client in clients:
            await client.close()


def replicas_config(upstream: FakeProviderServer, postgres_url: str) -> str:
    providers = "".join(
        f'[providers.{name}]\napi_key_env = "UPSTREAM_KEY"\nbase_url = "{url}"\n'
        for name, url in (
            ("openai", upstream.openai_base_url),
            ("anthropic", upstream.anthropic_base_url),
            ("google", upstream.google_base_url),
        )
    )
    return f"""
[server]
port = 0
[routing]
strategy = "cheapest"
max_retries = 0
[usage]
database_url = "{postgres_url}"
{providers}
[[keys]]
name = "team-a"
sha256 = "{hash_key(CLIENT_KEY)}"
[[keys]]
name = "capped"
sha256 = "{hash_key(CAPPED_KEY)}"
budget_usd = {CAP}
"""


def pins(postgres_url: str) -> list[tuple[str, str, str]]:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT scope, model, tier FROM session_pins ORDER BY scope, model")
        return [tuple(row) for row in rows]


@pytest.mark.slow
def test_two_replicas_on_one_postgres_share_sessions_budgets_and_the_log(
    upstream: FakeProviderServer, postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "orkestra.toml"
    config.write_text(replicas_config(upstream, postgres_url))
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(
        ORKESTRA_HOME=str(tmp_path),
        UPSTREAM_KEY=UPSTREAM_KEY,
        GOOGLE_GENAI_API_VERSION="v1beta",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.pop("ORKESTRA_DATABASE_URL", None)
    upstream.clear()
    replicas = [
        start_server(config, env, tmp_path / f"replica{i}.log", tmp_path / "unused.db")
        for i in (1, 2)
    ]
    urls = [r.url for r in replicas]
    request_ids: list[str] = []
    try:
        clients = openai_clients(urls)
        # 1. A conversation alternating between the replicas: one model at a time, never down.
        answers = alternate(clients, "conv-replicas")
        tiers = [tier for _, tier in answers]
        assert tiers == ["budget", "budget", "balanced", "balanced", "premium", "premium"]
        models = [model for model, _ in answers]
        assert models[0] == models[1] and models[2] == models[3] and models[4] == models[5]
        assert upstream.requests[-1].body["prompt_cache_key"] == "conv-replicas"
        # what replica 2 answered for turns 4 and 6 is the pin: alone they route to budget
        assert alone(clients[1], BUDGET_TURNS[2]) == alone(clients[0], BUDGET_TURNS[3]) == "budget"
        key = key_id_for(CLIENT_KEY)
        assert pins(postgres_url) == [
            (f"proxy:{key}:openai+anthropic+google", models[4], "premium")
        ]

        # 2. Twenty turns of one new session at once, half on each replica: afterwards both
        # answer it on one model, the highest that any of its turns was answered on.
        raced = asyncio.run(race(urls, "conv-race", 20))
        request_ids += [rid for _, _, rid in raced]
        top = max(raced, key=lambda answer: ("budget", "balanced", "premium").index(answer[1]))
        after = [Conversation("conv-race").say(c, BUDGET_TURNS[0]) for c in clients]
        assert after == [top[:2], top[:2]]
        assert len(pins(postgres_url)) == 2  # one pin per session, whatever the race

        # 3. A capped key spent from both replicas at once stays within its cap.
        upstream.queue(Reply(output_tokens=4_000, delay=0.3), times=30)
        spent_calls = asyncio.run(spend_concurrently(urls, 30))
        request_ids += [rid for _, rid in spent_calls]
        statuses = [status for status, _ in spent_calls]
        assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses
    finally:
        for replica in replicas:
            replica.stop()  # its usage log is flushed on the way out
        upstream.clear()
    log = open_usage_log(postgres_url)
    try:
        spent = log.spend(key_id_for(CAPPED_KEY))
        records = log.query()
    finally:
        log.close()
    assert spent <= CAP, f"spent ${spent:.6f} of ${CAP} ({spent / CAP:.2f}×)"
    # 4. The usage log has every call exactly once (refusals too), whichever replica served it.
    logged = [r.id for r in records]
    assert len(logged) == len(set(logged))
    conversation_calls = 6 + 2 + 2  # the alternating turns, the two "alone" checks, "after"
    assert len(records) == conversation_calls + len(request_ids)
    assert set(request_ids) <= set(logged)
