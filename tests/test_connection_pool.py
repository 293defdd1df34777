"""Upstream connections: reused by every call, bounded per provider (``max_connections``), and
shared budgets reserved and settled off the event loop.

Counted where they land: the fake provider server counts the TCP connections it accepts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

import orkestra as o
from orkestra.providers._stainless import SHARD_CONNECTIONS, StainlessClients, shard_limits
from orkestra.providers.base import ClientSettings
from orkestra.testing import FakeProviderServer, Reply
from orkestra.usage import SQLiteUsageLog, UsageSink
from orkestra.usage.ledger import SQLSpendStore

T = TypeVar("T")
PROMPT = "What is the capital of Japan?"
FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.005, deadline=20.0)
PROVIDERS = ("openai", "anthropic", "google")


def provider(fake: FakeProviderServer, name: str = "openai", **kwargs: Any) -> o.Provider:
    return o.Provider(name, fake.api_key, usage_sink=None, **{"retry": FAST, **kwargs})


def run(main: Callable[[], Any], *providers: o.Provider) -> Any:
    """``asyncio.run(main())``, closing the providers' async clients before the loop ends."""

    async def closing() -> Any:
        try:
            return await main()
        finally:
            for p in providers:
                await p.aclose()

    return asyncio.run(closing())


# -- reuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_sequential_async_calls_and_streams_reuse_one_connection(
    fake: FakeProviderServer, name: str
) -> None:
    p = provider(fake, name)
    model = p.tier_models()["budget"].id

    async def main() -> None:
        for i in range(4):
            await p.achat(f"{PROMPT} #{i}", model=model, max_tokens=16)
            stream = await p.astream(f"{PROMPT} #{i}", model=model, max_tokens=16)
            assert "".join([chunk async for chunk in stream])

    run(main, p)
    assert len(fake.requests) == 8
    assert fake.connections_accepted == 1


def test_a_pool_of_n_connections_serves_many_calls_on_n(fake: FakeProviderServer) -> None:
    p = provider(fake, max_connections=2)
    fake.queue(Reply(delay=0.1), provider="openai", times=8)

    async def main() -> list[o.Response]:
        return await asyncio.gather(*(p.achat(f"{PROMPT} #{i}") for i in range(8)))

    answers = run(main, p)
    assert len(answers) == 8 and all(a.text for a in answers)
    assert fake.connections_accepted == 2  # never more at once, each reused


# -- the bound -------------------------------------------------------------------------------


def test_a_call_past_max_connections_waits_then_fails_unsent(fake: FakeProviderServer) -> None:
    budget = o.Budget(1.0)
    p = provider(fake, max_connections=2, timeout=o.Timeouts(pool=0.3), budget=budget)
    fake.queue(Reply(delay=1.5), provider="openai", times=2)

    async def main() -> list[Any]:
        calls = [asyncio.create_task(p.achat(f"{PROMPT} #{i}")) for i in range(2)]
        await asyncio.sleep(0.2)  # both in flight, holding the two connections
        started = time.monotonic()
        with pytest.raises(o.PoolTimeoutError) as refused:
            await p.achat("the third")
        waited = time.monotonic() - started
        assert 0.25 < waited < 1.2 and refused.value.waited >= 0.25
        assert refused.value.provider == "openai"
        answers = await asyncio.gather(*calls)
        after = await p.achat("once one is free")  # no breaker tripped, nothing left held
        return [*answers, after]

    answers = run(main, p)
    assert all(isinstance(a, o.Response) for a in answers)
    assert [r.body["messages"][0]["content"] for r in fake.requests].count("the third") == 0
    assert budget.reserved == pytest.approx(0.0, abs=1e-12)
    assert budget.spent == pytest.approx(sum(a.total_cost for a in answers))


def test_the_bound_holds_for_sync_calls_from_threads(fake: FakeProviderServer) -> None:
    p = provider(fake, max_connections=1, timeout=o.Timeouts(pool=0.3))
    fake.queue(Reply(delay=1.2), provider="openai")
    first = threading.Thread(target=p.chat, args=(PROMPT,))
    first.start()
    try:
        time.sleep(0.3)
        with pytest.raises(o.PoolTimeoutError):
            p.chat("the second")
    finally:
        first.join()
    assert p.chat("once it is free").text
    assert len(fake.requests) == 2


def test_a_stream_holds_its_connection_until_it_ends(fake: FakeProviderServer) -> None:
    p = provider(fake, max_connections=1, timeout=o.Timeouts(pool=0.2))

    async def main() -> str:
        stream = await p.astream(PROMPT)
        first = await anext(stream)
        with pytest.raises(o.PoolTimeoutError):
            await p.achat("while the stream is open")
        await stream.aclose()  # gives the connection back
        return first + (await p.achat("after it closed")).text

    assert run(main, p)


def test_a_bound_past_one_pool_is_split_over_pools_and_still_holds(
    fake: FakeProviderServer,
) -> None:
    """40 connections are two pools of 20 (SHARD_CONNECTIONS is 32): 40 calls at once get 40
    connections, the 41st waits for one, and later calls reuse them."""
    p = provider(fake, max_connections=40, timeout=o.Timeouts(pool=0.3))
    fake.queue(Reply(delay=1.2), provider="openai", times=40)

    async def main() -> list[o.Response]:
        calls = [asyncio.create_task(p.achat(f"{PROMPT} #{i}")) for i in range(40)]
        await asyncio.sleep(0.5)  # all 40 in flight
        with pytest.raises(o.PoolTimeoutError):
            await p.achat("the 41st")
        answers = await asyncio.gather(*calls)
        for i in range(4):
            answers.append(await p.achat(f"again #{i}"))
        return answers

    answers = run(main, p)
    assert len(answers) == 44 and all(a.text for a in answers)
    assert fake.connections_accepted == 40
    assert [r.body["messages"][0]["content"] for r in fake.requests].count("the 41st") == 0


def test_pool_limits_add_up_to_the_bound() -> None:
    assert shard_limits(None) == (None,)
    assert shard_limits(1) == (1,) and shard_limits(SHARD_CONNECTIONS) == (SHARD_CONNECTIONS,)
    assert shard_limits(40) == (20, 20) and shard_limits(100) == (25, 25, 25, 25)
    for n in range(1, 2000, 7):
        limits = shard_limits(n)
        assert sum(limits) == n and max(limits) <= SHARD_CONNECTIONS  # type: ignore[type-var]
        assert max(limits) - min(limits) <= 1  # type: ignore[type-var,operator]


def test_each_call_takes_the_pool_with_the_fewest_calls_in_flight() -> None:
    clients: StainlessClients[Any, Any] = StainlessClients(
        ClientSettings("sk-test", "http://127.0.0.1:9/v1", max_connections=70),
        "openai",
        "OpenAI",
        "AsyncOpenAI",
    )

    async def main() -> None:
        async with clients.lease() as a, clients.lease() as b, clients.lease() as c:
            assert len({id(a), id(b), id(c)}) == 3  # three pools of 24, 23 and 23
            async with clients.lease() as d:
                assert d is a  # all equally busy: the first
        async with clients.lease() as first:
            async with clients.lease() as second:
                assert first is a and second is b
            async with clients.lease() as again:
                assert again is b  # given back: the emptiest again
        await clients.aclose()

    asyncio.run(main())


def test_max_connections_is_checked() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(o.ConfigurationError, match="max_connections"):
            o.Provider("openai", "test-key", max_connections=bad)  # type: ignore[arg-type]
    with pytest.raises(o.InvalidRequestError, match="pool timeout"):
        o.Timeouts(pool=-1)


# -- shared budgets: their database is never waited on in the event loop ---------------------


class OffLoopCheck:
    """A :class:`~orkestra.SpendStore` over a real one, noting whether each transaction was
    asked for from a thread running an event loop."""

    def __init__(self, store: SQLSpendStore) -> None:
        self.store = store
        self.on_loop: list[bool] = []

    def _note(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_loop.append(False)
        else:
            self.on_loop.append(True)

    def hold(
        self, account: str, amount: float, cap: float, since: datetime | None, hold_seconds: float
    ) -> tuple[str | None, float, float]:
        self._note()
        return self.store.hold(account, amount, cap, since, hold_seconds)

    def settle(self, account: str, hold_id: str | None, cost: float) -> None:
        self._note()
        self.store.settle(account, hold_id, cost)

    def totals(self, account: str, since: datetime | None) -> tuple[float, float]:
        return self.store.totals(account, since)


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[OffLoopCheck, SQLiteUsageLog]]:
    log = SQLiteUsageLog(tmp_path / "usage.db")
    store = log.spend_store()
    yield OffLoopCheck(store), log
    store.close()
    log.close()


def test_async_calls_reserve_and_settle_a_shared_budget_off_the_loop(
    fake: FakeProviderServer, shared: tuple[OffLoopCheck, SQLiteUsageLog]
) -> None:
    store, _ = shared
    budget = o.SharedBudget(1.0, store, "key-a")
    p = provider(fake)

    async def main() -> float:
        answer = await p.achat(PROMPT, budget=budget)
        stream = await p.astream(PROMPT, budget=budget)
        assert "".join([chunk async for chunk in stream])
        assert stream.response is not None
        return answer.total_cost + stream.response.total_cost

    cost = run(main, p)
    assert store.on_loop == [False] * 4  # two holds, two settlements, each in a thread
    spent, held = store.totals("key-a", None)
    assert held == 0.0 and spent == pytest.approx(cost)


def test_a_cancelled_async_stream_settles_its_shared_hold_and_is_logged(
    fake: FakeProviderServer, shared: tuple[OffLoopCheck, SQLiteUsageLog]
) -> None:
    store, log = shared
    budget = o.SharedBudget(1.0, store, "key-a")
    p = o.Provider("openai", fake.api_key, retry=FAST, usage_sink=UsageSink(log))
    fake.queue(Reply("word " * 64, chunk_delay=0.3), provider="openai")
    got_text = asyncio.Event()

    async def read() -> None:
        stream = await p.astream(PROMPT, budget=budget, max_tokens=256)
        async for _ in stream:
            got_text.set()

    async def main() -> None:
        reader = asyncio.create_task(read())
        await got_text.wait()
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader

    run(main, p)
    assert False not in [not on for on in store.on_loop]
    spent, held = store.totals("key-a", None)
    # Text was handed out and the final usage never came: the whole hold counts as spent.
    assert held == 0.0 and spent > 0.0
    log.flush()
    assert [r.status for r in log.query()] == ["StreamClosed"]
    deadline = time.monotonic() + 10
    while fake.streams_left == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.streams_left == 1  # the upstream stream was closed, not read to its end
