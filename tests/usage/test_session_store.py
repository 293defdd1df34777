"""Sticky sessions shared through the usage database (``orkestra.usage.sessions``), on both
backends, and the in-memory store they stand in for.

Two stores on one database stand for two processes (workers, proxy replicas): each has its own
connections, and only the database keeps their pins consistent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLSessionStore
from orkestra.usage.base import SQLUsageLog
from orkestra.usage.sessions import PostgresSessionStore, SQLiteSessionStore, session_key

OpenLog = Callable[..., SQLUsageLog]

BUDGET = o.Pin("google", "gemini-2.5-flash-lite", "budget")
BALANCED = o.Pin("openai", "gpt-4o-mini", "balanced")
BALANCED_TOO = o.Pin("anthropic", "claude-haiku-4-5", "balanced")
PREMIUM = o.Pin("openai", "o3", "premium")


@pytest.fixture
def stores(open_log: OpenLog) -> Iterator[list[SQLSessionStore]]:
    """Two session stores on one database: two processes."""
    opened = [open_log().session_store(), open_log().session_store()]
    yield opened
    for store in opened:
        store.close()


def test_a_pin_moves_up_or_sideways_never_down(stores: list[SQLSessionStore]) -> None:
    one, two = stores
    assert one.get("s-1") is None
    one.pin("s-1", BALANCED)
    assert two.get("s-1") == BALANCED  # the other process sees it
    two.pin("s-1", BUDGET)  # a fallback answered lower: the session stays
    assert one.get("s-1") == BALANCED
    one.pin("s-1", BALANCED_TOO)  # same tier: it moves
    assert two.get("s-1") == BALANCED_TOO
    two.pin("s-1", PREMIUM)  # escalated
    assert one.get("s-1") == PREMIUM
    one.pin("s-1", BUDGET, moved=True)  # its model could not serve the turn
    assert two.get("s-1") == BUDGET
    two.forget("s-1")
    assert one.get("s-1") is None


def test_scopes_keep_sessions_apart(stores: list[SQLSessionStore]) -> None:
    team_a, team_b = stores[0].scoped("proxy:a"), stores[1].scoped("proxy:b")
    team_a.pin("conv-1", PREMIUM)
    assert team_b.get("conv-1") is None
    assert stores[1].scoped("proxy:a").get("conv-1") == PREMIUM
    team_b.pin("conv-1", BUDGET)
    assert team_a.get("conv-1") == PREMIUM and team_b.get("conv-1") == BUDGET


def test_a_session_expires_after_its_last_answered_turn(open_log: OpenLog) -> None:
    log = open_log()
    store = log.session_store(ttl=1.0)
    try:
        store.pin("s-1", PREMIUM)
        time.sleep(0.6)
        store.pin("s-1", BUDGET)  # lower: stays premium, its time to live starts again
        time.sleep(0.6)  # 1.2 s after the first turn, 0.6 s after the last
        assert store.get("s-1") == PREMIUM
        time.sleep(0.5)
        assert store.get("s-1") is None
        store.pin("s-1", BUDGET)  # an expired pin does not hold a new session up
        assert store.get("s-1") == BUDGET
    finally:
        store.close()


def test_expired_pins_are_deleted_and_ids_are_not_stored(
    open_log: OpenLog, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log()
    old = log.session_store(ttl=1.0)
    monkeypatch.setattr("orkestra.usage.sessions._PURGE_EVERY", 0.0)
    try:
        for i in range(5):
            old.pin(f"user-alice-{i}", BUDGET)
        time.sleep(1.1)
        old.pin("user-bob", PREMIUM)  # its transaction deletes the five expired pins
        rows = _rows(db_url)
    finally:
        old.close()
    assert rows == [(session_key("user-bob"), "openai", "o3", "premium")]
    assert all("bob" not in str(value) for row in rows for value in row)


def _rows(db_url: str) -> list[tuple[object, ...]]:
    sql = "SELECT session, provider, model, tier FROM session_pins"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            return [tuple(r) for r in conn.execute(sql)]
    import psycopg

    with psycopg.connect(db_url) as conn:
        return [tuple(r) for r in conn.execute(sql)]


def test_two_processes_racing_on_one_session_leave_it_on_the_highest_model(
    stores: list[SQLSessionStore],
) -> None:
    """16 threads over two stores answer turns of one session on models of every tier, at
    once. Whatever the order, the session ends on the premium model, and no reader ever sees
    it move down."""
    pins = [BUDGET, BALANCED, BALANCED_TOO, PREMIUM]
    start = threading.Barrier(17)
    seen: list[int] = []
    done = threading.Event()

    def answer(i: int) -> None:
        rng = random.Random(i)
        start.wait()
        for _ in range(12):
            stores[i % 2].pin("conv-race", rng.choice(pins))

    def watch() -> None:
        start.wait()
        while not done.is_set():
            pin = stores[1].get("conv-race")
            if pin is not None:
                seen.append(o.TIERS.index(pin.tier))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(16)]
    watcher = threading.Thread(target=watch)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert stores[0].get("conv-race") == PREMIUM
    assert seen == sorted(seen), "a reader saw the session move down"


def test_an_unreachable_database_routes_afresh_and_never_fails_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = PostgresSessionStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    try:
        with caplog.at_level(logging.WARNING, logger="orkestra.sessions"):
            assert store.get("s-1") is None
            store.pin("s-1", PREMIUM)
    finally:
        store.close()
    assert [r.message.split(":")[0] for r in caplog.records] == ["sticky sessions"] * 2


def test_the_in_memory_store_keeps_the_same_rule() -> None:
    store = o.Sessions(max_sessions=2, ttl=60)
    store.pin("s-1", BALANCED)
    store.pin("s-1", BUDGET)
    assert store.get("s-1") == BALANCED
    store.pin("s-1", PREMIUM)
    store.pin("s-1", BUDGET, moved=True)
    assert store.get("s-1") == BUDGET
    store.pin("s-2", BUDGET)
    store.pin("s-3", BUDGET)  # over max_sessions: the least recently used goes
    assert store.get("s-1") is None and len(store) == 2
    expiring = o.Sessions(ttl=0.05)
    expiring.pin("s-1", PREMIUM)
    time.sleep(0.1)
    expiring.pin("s-1", BUDGET)  # the premium pin had expired
    assert expiring.get("s-1") == BUDGET


# -- the library with a shared store ---------------------------------------------------------

EASY = "What is the capital of Japan?"
HARD = "Explain how a hash table handles collisions"


def test_two_processes_of_the_library_keep_one_conversation_on_one_model(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    """Two MultiProviders, each with its own store on one SQLite file, answer alternate
    turns of one conversation: it escalates on one and stays there on the other."""
    from orkestra.usage import SQLiteUsageLog

    log = SQLiteUsageLog(tmp_path / "usage.db")
    stores = [log.session_store(), log.session_store()]

    def router(store: SQLSessionStore) -> o.MultiProvider:
        providers = [o.Provider(p, fake.api_key, record_usage=False) for p in ("google", "openai")]
        return o.MultiProvider(providers, sessions=store)

    first, second = router(stores[0]), router(stores[1])
    try:
        budget = first.chat(EASY, session_id="conv-1", quality=0.0)
        assert budget.tier == "budget"
        assert second.chat(HARD, session_id="conv-1", quality=0.0).model == budget.model
        escalated = first.chat(HARD, session_id="conv-1", quality=1.0)
        assert escalated.tier == "premium" and "escalated" in escalated.routing.reason
        after = second.chat(EASY, session_id="conv-1", quality=0.0)
        assert (after.provider, after.model) == (escalated.provider, escalated.model)
        # without the shared store the second process would have kept the budget model
        assert o.MultiProvider(second.providers).chat(EASY, quality=0.0).tier == "budget"
        chat = o.Conversation(second, session_id="conv-1")
        chat.reset()  # forgets the session everywhere
        assert stores[0].get("conv-1") is None
    finally:
        for store in stores:
            store.close()
        log.close()


def test_a_pin_another_router_made_moves_the_session_instead_of_failing(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    from orkestra.usage import SQLiteUsageLog

    log = SQLiteUsageLog(tmp_path / "usage.db")
    store = log.session_store()
    try:
        store.pin("conv-1", o.Pin("anthropic", "claude-opus-4-1", "premium"))
        store.pin("conv-2", o.Pin("openai", "a-model-the-catalog-dropped", "premium"))
        provider = o.Provider("openai", fake.api_key, record_usage=False, sessions=store)
        for session in ("conv-1", "conv-2"):
            response = provider.chat(EASY, session_id=session, quality=0.0)
            assert response.provider == "openai" and "session moved" in response.routing.reason
            assert store.get(session) == o.Pin("openai", response.model, response.tier)
    finally:
        store.close()
        log.close()


class _WatchedStore(SQLiteSessionStore):
    """The real SQLite store, noting the thread of each database access."""

    threads: list[int]

    def get(self, session: str) -> o.Pin | None:
        self.threads.append(threading.get_ident())
        return super().get(session)

    def pin(self, session: str, new: o.Pin, *, moved: bool = False) -> None:
        self.threads.append(threading.get_ident())
        super().pin(session, new, moved=moved)


@pytest.mark.parametrize("stream", [False, True])
def test_async_calls_reach_a_database_store_off_the_event_loop(
    fake: FakeProviderServer, tmp_path: Path, stream: bool
) -> None:
    from orkestra.usage import SQLiteUsageLog

    log = SQLiteUsageLog(tmp_path / "usage.db")
    store = _WatchedStore(log.path)
    store.threads = []
    provider = o.Provider("openai", fake.api_key, usage_sink=None, sessions=store)

    async def turns() -> tuple[int, list[o.Response]]:
        loop_thread = threading.get_ident()
        chat = o.Conversation(provider, session_id="conv-async")
        for text, quality in ((EASY, 0.0), (HARD, 1.0), (EASY, 0.0)):
            if stream:
                async for _ in chat.astream_text(text, quality=quality):
                    pass
            else:
                await chat.achat(text, quality=quality)
        return loop_thread, chat.responses

    try:
        loop_thread, responses = asyncio.run(turns())
    finally:
        store.close()
        log.close()
    assert [r.tier for r in responses] == ["budget", "premium", "premium"]
    assert len(store.threads) == 6  # a read and a write per turn
    assert loop_thread not in store.threads


@pytest.mark.parametrize("stream", [False, True])
def test_async_cascades_reach_a_database_store_off_the_event_loop(
    fake: FakeProviderServer, tmp_path: Path, stream: bool
) -> None:
    """A cascade ends its answer itself (the accepted step, then the session): with a database
    store that too runs in a worker thread, as for a routed call."""
    from orkestra.usage import SQLiteUsageLog

    log = SQLiteUsageLog(tmp_path / "usage.db")
    store = _WatchedStore(log.path)
    store.threads = []
    provider = o.Provider("openai", fake.api_key, usage_sink=None, sessions=store, mode="cascade")

    async def turns() -> tuple[int, list[o.Response]]:
        loop_thread = threading.get_ident()
        chat = o.Conversation(provider, session_id="conv-async-cascade")
        for text in (EASY, HARD):
            if stream:
                async for _ in chat.astream_text(text):
                    pass
            else:
                await chat.achat(text)
        return loop_thread, chat.responses

    try:
        loop_thread, responses = asyncio.run(turns())
    finally:
        store.close()
        log.close()
    assert all(r.cascade is not None for r in responses)
    assert len(store.threads) == 4  # a read and a write per turn
    assert loop_thread not in store.threads


def _broken_check(request: object, answer: object) -> bool:
    raise ZeroDivisionError("a bug in the verifier")


CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("failure", ["invalid at the top", "the check raises"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_async_cascade_settles_a_database_store_off_the_event_loop(
    fake: FakeProviderServer, tmp_path: Path, stream: bool, failure: str
) -> None:
    """A cascade that fails after an answer was made and billed (its top answer fails its
    response_format, or the verifier raises) still records it and settles the session: in a
    worker thread too, not on the loop."""
    from orkestra.usage import SQLiteUsageLog

    log = SQLiteUsageLog(tmp_path / "usage.db")
    store = _WatchedStore(log.path)
    store.threads = []
    options: dict[str, Any] = {"session_id": "conv-failed"}
    if failure == "invalid at the top":
        fake.queue(Reply("not json"), provider="openai", times=3)
        options["response_format"] = CITY
        raised: type[Exception] = o.StructuredOutputError
    else:
        options["verifier"] = _broken_check
        raised = ZeroDivisionError
    provider = o.Provider("openai", fake.api_key, usage_sink=None, sessions=store, mode="cascade")

    async def turn() -> int:
        with pytest.raises(raised):
            if stream:
                async for _ in provider.astream_text(EASY, **options):
                    pass
            else:
                await provider.achat(EASY, **options)
        return threading.get_ident()

    try:
        loop_thread = asyncio.run(turn())
    finally:
        store.close()
        log.close()
    assert len(store.threads) == 2  # the read before routing, the write of the billed answer
    assert loop_thread not in store.threads
