"""What only the async API has: the event loop is never blocked, sync and async user code mix
in either kind of call, cancelling or closing early settles the call, and the async SDK clients
are closed. (Sync/async parity of every outcome is tests/test_async_parity.py.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import orkestra as o
from orkestra.hooks import Hooks, aemit, arun_middleware, emit, global_hooks, run_middleware
from orkestra.testing import FakeProviderServer, Fault, Reply

T = TypeVar("T")
PROMPT = "What is the capital of Japan?"
POEM = "Write a short poem about rivers and the sea"
FAST = o.RetryPolicy(base_delay=0.001, max_delay=0.005, deadline=20.0)


@pytest.fixture(autouse=True)
def _no_global_hooks() -> Iterator[None]:
    global_hooks().clear()
    yield
    global_hooks().clear()


def run(main: Callable[[], Any], *providers: o.Provider) -> Any:
    """``asyncio.run(main())``, closing the providers' async clients before the loop ends."""

    async def closing() -> Any:
        try:
            return await main()
        finally:
            for provider in providers:
                await provider.aclose()

    return asyncio.run(closing())


def provider(fake: FakeProviderServer, name: str = "openai", **kwargs: Any) -> o.Provider:
    return o.Provider(name, fake.api_key, **{"retry": FAST, **kwargs})


# -- the loop is never blocked ---------------------------------------------------------------


def test_concurrent_calls_overlap(fake: FakeProviderServer) -> None:
    p = provider(fake)
    fake.queue(Fault.delay(0.5), provider="openai", times=4)

    async def main() -> list[o.Response]:
        return await asyncio.gather(*(p.achat(f"{PROMPT} #{i}") for i in range(4)))

    p.route(PROMPT)  # the router's first use loads it (CPU, once per process): not timed here
    started = time.perf_counter()
    responses = run(main, p)
    assert time.perf_counter() - started < 1.5  # four half-second answers, awaited together
    assert sorted(r.text.rsplit("#", 1)[1] for r in responses) == ["0", "1", "2", "3"]


def test_sync_middleware_runs_in_a_worker_thread_and_the_loop_goes_on(
    fake: FakeProviderServer,
) -> None:
    p = provider(fake)
    threads: list[int] = []

    @p.middleware
    def blocking(data: dict[str, Any], next_: Any) -> Any:
        threads.append(threading.get_ident())
        time.sleep(0.2)  # blocking code: it must not stall the loop
        return next_(data)

    fake.queue(Fault.delay(0.2), provider="openai")

    async def main() -> tuple[o.Response, int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        response = await p.achat(PROMPT)
        task.cancel()
        return response, ticks, threading.get_ident()

    p.route(PROMPT)  # load the router first (once per process, on the loop otherwise)
    response, ticks, loop_thread = run(main, p)
    assert response.text.endswith(PROMPT)
    assert threads and threads[0] != loop_thread
    assert ticks >= 15  # ~0.4 s of middleware sleep and slow answer: the loop ticked through


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting the jobs handed to it (``asyncio.to_thread``)."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.jobs = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


def test_threads_only_for_sync_middleware_one_per_run_of_them(fake: FakeProviderServer) -> None:
    p = provider(fake)
    order: list[str] = []

    def sync_mw(name: str) -> Any:
        def mw(data: dict[str, Any], next_: Any) -> Any:
            order.append(name)
            return next_(data)

        return mw

    async def async_mw(data: dict[str, Any], next_: Any) -> Any:
        order.append("async")
        return await next_(data)

    async def main() -> list[int]:
        executor = CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        await p.achat(PROMPT)  # the connection is open from here on
        jobs = [executor.jobs]
        await p.achat(PROMPT)  # no hooks anywhere: no thread at all
        jobs.append(executor.jobs)
        p.middleware(sync_mw("a"))
        p.middleware(sync_mw("b"))
        await p.achat(PROMPT)  # two sync middleware in a row share one thread
        jobs.append(executor.jobs)
        p.middleware(async_mw)
        p.middleware(sync_mw("c"))
        await p.achat(PROMPT)  # sync, async, sync: two threads
        jobs.append(executor.jobs)
        return jobs

    first, no_hooks, one_run, two_runs = run(main, p)
    assert no_hooks - first == 0
    assert one_run - no_hooks == 1
    assert two_runs - one_run == 2
    assert order == ["a", "b", "a", "b", "async", "c"]


# -- sync and async user code in either kind of call -----------------------------------------


def test_mixed_middleware_nest_in_order_in_both_kinds_of_call() -> None:
    outer, inner = Hooks(), Hooks()
    seen: list[str] = []

    def a(data: dict[str, Any], next_: Any) -> Any:
        seen.append("a")
        return next_({**data, "path": [*data["path"], "a"]}) + "!"

    async def b(data: dict[str, Any], next_: Any) -> Any:
        seen.append("b")
        return "<" + await next_({**data, "path": [*data["path"], "b"]}) + ">"

    def c(data: dict[str, Any], next_: Any) -> Any:
        seen.append("c")
        return next_({**data, "path": [*data["path"], "c"]})

    outer.add_middleware(a)
    outer.add_middleware(b)
    inner.add_middleware(c)

    def call(d: dict[str, Any]) -> str:
        return "/".join(d["path"])

    async def acall(d: dict[str, Any]) -> str:
        return call(d)

    assert run_middleware([outer, inner], {"path": []}, call) == "<a/b/c>!"
    assert asyncio.run(arun_middleware([outer, inner], {"path": []}, acall)) == "<a/b/c>!"
    assert seen == ["a", "b", "c"] * 2


def test_a_middleware_error_reaches_the_caller_unchanged(fake: FakeProviderServer) -> None:
    p = provider(fake)

    class Refused(Exception):
        pass

    @p.middleware
    def refuse(data: dict[str, Any], next_: Any) -> Any:
        raise Refused(data["prompt"])

    with pytest.raises(Refused, match="capital"):
        run(lambda: p.achat(PROMPT), p)
    assert fake.requests == []


def test_async_middleware_in_a_sync_call_inside_a_running_loop_is_refused(
    fake: FakeProviderServer,
) -> None:
    p = provider(fake)

    @p.middleware
    async def passthrough(data: dict[str, Any], next_: Any) -> Any:
        return await next_(data)

    async def main() -> None:
        p.chat(PROMPT)  # a blocking call in async code: asyncio.run is impossible here

    with pytest.raises(o.ConfigurationError, match=r"passthrough.*achat"):
        run(main, p)
    assert fake.requests == []
    assert p.chat(PROMPT).text.endswith(PROMPT)  # outside a loop it runs


def test_an_async_handler_in_a_sync_call_inside_a_loop_is_skipped_with_a_warning(
    fake: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    p = provider(fake)
    seen: list[str] = []

    @p.event("on_response")
    async def later(event: dict[str, Any]) -> None:
        seen.append("async")

    p.event("on_response")(lambda event: seen.append("sync"))

    async def main() -> o.Response:
        return p.chat(PROMPT)

    with caplog.at_level(logging.WARNING, logger="orkestra.hooks"):
        response = run(main, p)
    assert response.text.endswith(PROMPT)
    assert seen == ["sync"]
    assert "on_response handler" in caplog.text and "skipped" in caplog.text
    seen.clear()
    p.chat(PROMPT)  # no loop running: the coroutine is run to completion
    assert seen == ["async", "sync"]


def test_a_failing_async_handler_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks()
    got: list[str] = []

    async def broken(event: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async boom")

    hooks.add_handler("on_chunk", broken)
    hooks.add_handler("on_chunk", lambda e: got.append(e["chunk"]))
    with caplog.at_level(logging.ERROR, logger="orkestra.hooks"):
        asyncio.run(aemit([hooks], "on_chunk", chunk="a"))
        emit([hooks], "on_chunk", chunk="b")
    assert got == ["a", "b"]
    failures = [r for r in caplog.records if r.exc_info and "async boom" in str(r.exc_info[1])]
    assert len(failures) == 2


# -- closing, cancelling, bad input, secrets -------------------------------------------------


def test_closing_a_stream_early_settles_the_budget(fake: FakeProviderServer) -> None:
    budget = o.Budget(1.0)
    p = provider(fake, budget=budget)
    fake.queue(Reply(" ".join(["word"] * 200)), provider="openai", times=2)

    async def main() -> tuple[str, str]:
        stream = await p.astream(POEM)
        first = await anext(stream)
        assert budget.reserved > 0  # the call holds its reservation while it streams
        await stream.aclose()
        async for chunk in p.astream_text(POEM):
            return first, chunk  # leaving the loop early closes the stream
        raise AssertionError("no chunk")

    first, chunk = run(main, p)
    assert first and chunk
    assert budget.reserved == 0.0


def test_a_cancelled_call_releases_its_reservation(fake: FakeProviderServer) -> None:
    budget = o.Budget(1.0)
    p = provider(fake, budget=budget)
    fake.queue(Fault.delay(2.0), provider="openai")

    async def main() -> None:
        task = asyncio.create_task(p.achat(PROMPT))
        await asyncio.sleep(0.3)
        assert budget.reserved > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.perf_counter()
    run(main, p)
    assert time.perf_counter() - started < 1.5
    assert budget.reserved == 0.0 and budget.spent == 0.0


def test_cancelling_while_a_sync_middleware_waits_cancels_the_call(
    fake: FakeProviderServer,
) -> None:
    budget = o.Budget(1.0)
    p = provider(fake, budget=budget)
    outcome: list[str] = []

    @p.middleware
    def waits(data: dict[str, Any], next_: Any) -> Any:
        try:
            return next_(data)
        except BaseException as error:
            outcome.append(type(error).__name__)
            raise

    fake.queue(Fault.delay(2.0), provider="openai")

    async def main() -> None:
        task = asyncio.create_task(p.achat(PROMPT))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the worker thread sees the cancelled call end
            if outcome:
                break
            await asyncio.sleep(0.01)

    started = time.perf_counter()
    run(main, p)
    assert time.perf_counter() - started < 1.5
    assert outcome == ["CancelledError"]
    assert budget.reserved == 0.0 and budget.spent == 0.0


def test_bad_input_raises_before_anything_is_sent(fake: FakeProviderServer) -> None:
    p = provider(fake)
    multi = o.MultiProvider([p])

    async def main() -> None:
        with pytest.raises(o.InvalidRequestError, match="empty"):
            await p.achat("   ")
        with pytest.raises(o.InvalidRequestError, match="max_tokens"):
            await p.astream(PROMPT, max_tokens=0)
        with pytest.raises(o.InvalidRequestError, match="temperature"):
            await anext(multi.astream_text(PROMPT, temperature=3.0))
        with pytest.raises(o.UnknownStrategyError):
            await multi.achat(PROMPT, strategy="nonsense")

    run(main, p)
    assert fake.requests == []


def test_sdk_errors_are_mapped_and_never_show_the_key(fake: FakeProviderServer) -> None:
    key = "sk-not-the-right-key-0123456789abcdef"
    p = o.Provider("anthropic", key, retry=FAST)

    async def main() -> list[o.OrkestraError]:
        errors: list[o.OrkestraError] = []
        for call in (lambda: p.achat(PROMPT), lambda: anext(p.astream_text(POEM))):
            with pytest.raises(o.AuthenticationError) as info:
                await call()
            errors.append(info.value)
        return errors

    errors = run(main, p)
    for error in errors:
        assert error.provider == "anthropic"
        assert key not in str(error) and key not in repr(error)
        assert key not in repr(error.__cause__)


def test_aclose_closes_the_clients_and_the_next_call_reopens_them(
    fake: FakeProviderServer,
) -> None:
    p = provider(fake, "google")

    async def main() -> list[str]:
        texts = [(await p.achat(PROMPT)).text]
        await p.aclose()
        assert p.endpoint._adapter is None
        texts.append((await p.achat(PROMPT)).text)
        return texts

    first, second = run(main, p)
    assert first == second and first.endswith(PROMPT)
    assert p.endpoint._adapter is None  # closed again by run()


# -- the usage log ---------------------------------------------------------------------------


@pytest.fixture
def usage_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The process's usage log, freshly opened in a temp ORKESTRA_HOME."""
    from orkestra import usage

    monkeypatch.setenv("ORKESTRA_HOME", str(tmp_path))
    monkeypatch.setenv("ORKESTRA_USAGE_LOG", "on")
    old = usage._default_log
    usage._default_log = None
    log = usage.default_usage_log()
    yield log
    if log is not None:
        log.close()
    usage._default_log = old


def test_async_calls_land_in_the_usage_log(fake: FakeProviderServer, usage_log: Any) -> None:
    p = o.Provider("openai", fake.api_key, max_retries=0)

    async def main() -> tuple[o.Response, o.Response | None]:
        response = await p.achat(PROMPT)
        stream = await p.astream(POEM)
        async for _ in stream:
            pass
        fake.queue(Fault.status(400), provider="openai")
        with pytest.raises(o.BadRequestError):
            await p.achat(PROMPT, model="gpt-4o-mini")
        return response, stream.response

    response, streamed = run(main, p)
    usage_log.flush()
    records = usage_log.query()
    assert [r.status for r in records] == ["ok", "ok", "BadRequestError"]
    assert streamed is not None
    assert [(r.provider, r.model) for r in records] == [
        ("openai", response.model),
        ("openai", streamed.model),
        ("openai", "gpt-4o-mini"),
    ]
    assert records[0].cost == pytest.approx(response.cost)
    assert records[0].key_id == p.key_id and fake.api_key not in repr(records)
