"""LoopClients: one client per (event loop, key), closed in its own loop when that loop ends."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import pytest

from orkestra.providers._loops import LoopClients

_serial = itertools.count()


class FakeClient:
    """Stands in for an async SDK client: records where and how often it was closed."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.number = next(_serial)
        self.made_in = asyncio.get_running_loop()
        self.aclosed_in: list[asyncio.AbstractEventLoop] = []
        self.sync_closes = 0

    async def aclose(self) -> None:
        self.aclosed_in.append(asyncio.get_running_loop())

    def close(self) -> None:
        self.sync_closes += 1

    @property
    def closed_once_in_its_loop(self) -> bool:
        return self.aclosed_in == [self.made_in] and self.sync_closes == 1


async def _close(client: FakeClient) -> None:
    await client.aclose()
    client.close()


class Maker:
    """Makes fake clients (or fails to, on request) and keeps every one it made."""

    def __init__(self) -> None:
        self.made: list[FakeClient] = []
        self.fail = False

    def __call__(self, key: str) -> FakeClient:
        if self.fail:
            raise RuntimeError("cannot make a client")
        self.made.append(FakeClient(key))
        return self.made[-1]


@pytest.fixture
def clients() -> LoopClients[str, FakeClient]:
    return LoopClients(_close)


@pytest.fixture
def maker() -> Maker:
    return Maker()


@pytest.fixture
def idle_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop driven by hand (no asyncio.run shutdown), shut down properly at the end."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _get(clients: LoopClients[str, FakeClient], maker: Maker, key: str) -> FakeClient:
    return await clients.get(key, lambda: maker(key))


def test_one_client_per_key_in_a_loop_closed_when_asyncio_run_ends(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    async def use() -> list[FakeClient]:
        got = [await _get(clients, maker, key) for key in ("v1", "v1beta", "v1", "v1beta")]
        assert not any(client.aclosed_in for client in got)  # open while the loop runs
        return got

    first = asyncio.run(use())
    assert first[0] is first[2] and first[1] is first[3] and first[0] is not first[1]
    assert maker.made == first[:2]
    assert all(client.closed_once_in_its_loop for client in maker.made)

    second = asyncio.run(use())  # a new loop: new clients, closed at its end too
    assert not {id(c) for c in second} & {id(c) for c in first}
    assert len(maker.made) == 4 and all(c.closed_once_in_its_loop for c in maker.made)


def test_aclose_closes_this_loops_clients_and_later_gets_make_new_ones(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    async def use() -> tuple[FakeClient, FakeClient]:
        before = await _get(clients, maker, "k")
        await clients.aclose()
        assert before.closed_once_in_its_loop
        after = await _get(clients, maker, "k")
        assert after is not before and not after.aclosed_in
        return before, after

    before, after = asyncio.run(use())
    assert before.closed_once_in_its_loop  # not closed twice by the loop's shutdown
    assert after.closed_once_in_its_loop  # the new one closed when the loop ended


def test_close_drives_an_idle_loop_to_close_its_clients(
    clients: LoopClients[str, FakeClient], maker: Maker, idle_loop: asyncio.AbstractEventLoop
) -> None:
    client = idle_loop.run_until_complete(_get(clients, maker, "k"))
    clients.close()
    assert client.closed_once_in_its_loop
    again = idle_loop.run_until_complete(_get(clients, maker, "k"))
    assert again is not client and not again.aclosed_in


def test_close_from_the_loops_own_code_closes_soon(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    async def use() -> FakeClient:
        client = await _get(clients, maker, "k")
        clients.close()  # sync close inside the loop: the close runs once this code yields
        for _ in range(5):
            await asyncio.sleep(0)
        assert client.closed_once_in_its_loop
        return client

    assert asyncio.run(use()).closed_once_in_its_loop


def test_close_reaches_a_loop_running_in_another_thread(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    got: list[FakeClient] = []
    made, release = threading.Event(), threading.Event()

    async def serve() -> None:
        got.append(await _get(clients, maker, "k"))
        made.set()
        while not release.is_set():
            await asyncio.sleep(0.005)

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert made.wait(5)
        clients.close()  # the loop runs over there: the close is run in it
        for _ in range(400):
            if got[0].aclosed_in:
                break
            threading.Event().wait(0.005)
        assert got[0].closed_once_in_its_loop
    finally:
        release.set()
        thread.join(5)
    assert got[0].closed_once_in_its_loop  # and not closed again by that loop's shutdown


def test_an_idle_loop_that_cannot_be_driven_stays_parked_until_its_shutdown(
    clients: LoopClients[str, FakeClient], maker: Maker, idle_loop: asyncio.AbstractEventLoop
) -> None:
    parked = idle_loop.run_until_complete(_get(clients, maker, "k"))

    async def close_inside_another_loop() -> None:
        clients.close()  # the idle loop cannot be run from inside this one

    asyncio.run(close_inside_another_loop())
    assert parked.aclosed_in == []
    assert idle_loop.run_until_complete(_get(clients, maker, "k")) is parked  # still its client
    idle_loop.run_until_complete(idle_loop.shutdown_asyncgens())
    assert parked.closed_once_in_its_loop


def test_a_failing_make_leaves_no_trace(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    async def use() -> FakeClient:
        maker.fail = True
        with pytest.raises(RuntimeError, match="cannot make"):
            await _get(clients, maker, "k")
        maker.fail = False
        return await _get(clients, maker, "k")

    client = asyncio.run(use())
    assert client.closed_once_in_its_loop  # the loop's closer was started after all


def test_loops_closed_by_hand_are_forgotten(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    loop = asyncio.new_event_loop()
    gone = loop.run_until_complete(_get(clients, maker, "k"))
    loop.close()  # no shutdown_asyncgens: its client can no longer be closed in its loop
    clients.close()  # nothing to drive, nothing raised
    assert gone.aclosed_in == []
    fresh = asyncio.run(_get(clients, maker, "k"))
    assert fresh is not gone and fresh.closed_once_in_its_loop


def test_threads_with_their_own_loops_get_their_own_clients(
    clients: LoopClients[str, FakeClient], maker: Maker
) -> None:
    got: list[FakeClient] = []
    lock = threading.Lock()

    def run() -> None:
        async def use() -> None:
            first = await _get(clients, maker, "k")
            await asyncio.sleep(0.01)  # the threads overlap
            assert await _get(clients, maker, "k") is first
            with lock:
                got.append(first)

        asyncio.run(use())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len({id(client) for client in got}) == 4 == len(maker.made)
    assert all(client.closed_once_in_its_loop for client in got)
