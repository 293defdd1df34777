"""Soak the resilience layer: thousands of calls through a ``MultiProvider`` with injected faults.

    .venv/bin/python bench/soak.py                       # 2,000 calls, ~20% faults
    .venv/bin/python bench/soak.py --calls 4000 --workers 32 --fault-rate 0.3

Runs its own ``orkestra.testing.FakeProviderServer`` (the real SDKs on 127.0.0.1) and a
``MultiProvider`` of the three providers with the default retry policy. Half the calls go through
a thread pool, half through asyncio (``asyncio.to_thread``: the async API comes with issue 8),
half of each streaming. Before about ``--fault-rate`` of the calls a fault is queued on the
server (429, 500, 503, 529, a dropped connection, a stream cut before or after its first chunk,
a delay past the read timeout); it hits whichever request comes next, retries included.

Prints: calls that succeeded, that failed with a typed ``OrkestraError`` (by type), and that were
*lost* (any other exception, a hang past the deadline, an answer without text, or a
``CircuitOpenError`` without the documented ``retry_after``) — must be 0; retries and
fallbacks; attempts recorded vs generation requests the server saw; dollars recorded vs dollars
charged to the budget; the circuits the faults left open; and the overhead the layer adds:
p50/p99 latency of the same fault-free calls through the layer vs straight to the adapter (no
routing, no layer), and the layer's own time inside each call (total minus time in the SDK).
The overhead phase gives the layer a circuit breaker of its own: at high fault rates the shared
one ends the fault phase with circuits open for their cooldown, which would refuse the calls
being timed; a call it refuses anyway is counted and left out of the timings.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import random
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orkestra as o
from orkestra._call import read_input
from orkestra._request import RequestOptions
from orkestra.resilience.call import Call
from orkestra.testing import FakeProviderServer, Fault

PROMPTS = [
    "What is the capital of Japan?",
    "Write a haiku about autumn rain",
    "Explain how a hash map handles collisions",
    "Summarise the causes of the French Revolution in three sentences",
    "Prove that the square root of two is irrational",
    "Translate 'good morning, how are you?' into Spanish and German",
    "Write a Python function that merges two sorted lists",
    "What is 17 times 23?",
]
# (fault, how many requests in a row it hits, at one provider or at whichever comes next):
# a burst of 3 outlasts the 2 retries of one model, so the call has to fall back.
FAULTS: list[tuple[Fault, int, bool]] = [
    (Fault.status(429), 1, False),
    (Fault.status(500), 1, False),
    (Fault.status(503), 1, False),
    (Fault.status(529), 1, False),
    (Fault.drop(), 1, False),
    (Fault.cut_stream(after_chunks=0), 1, False),
    (Fault.cut_stream(after_chunks=2), 1, False),
    (Fault.delay(3.0), 1, False),
    (Fault.status(529), 3, True),
    (Fault.status(503), 3, True),
]
Planned = tuple[str, bool, str, "tuple[Fault, int, str | None] | None"]
READ_TIMEOUT = 1.0
STRATEGIES = ["cheapest", "smartest", "balanced"]
HANG = 60.0  # a call still running after this many seconds counts as lost


@dataclass
class Tally:
    ok: int = 0
    typed: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    fallbacks: int = 0
    recorded: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempts: tuple[o.Attempt, ...], outcome: str | None) -> None:
        keys = [(a.provider, a.model) for a in attempts]
        pairs = list(itertools.pairwise(keys))
        with self.lock:
            self.attempts += len(attempts)
            self.retries += sum(1 for a, b in pairs if a == b)
            self.fallbacks += sum(1 for a, b in pairs if a != b)
            self.recorded += sum(a.cost for a in attempts)
            if outcome is None:
                self.ok += 1
            else:
                self.typed[outcome] += 1


def one_call(
    multi: o.MultiProvider, prompt: str, stream: bool, strategy: str, tally: Tally
) -> None:
    try:
        if stream:
            s = multi.stream(prompt, strategy=strategy, max_tokens=256)
            text = "".join(s)
            response = s.response
            if response is None or response.text != text:
                raise AssertionError("a stream ended without its response")
        else:
            response = multi.chat(prompt, strategy=strategy, max_tokens=256)
        if not response.text:
            raise AssertionError("an answer without text")
    except o.CircuitOpenError as e:
        # Documented: raised when every candidate is cooling down, with retry_after = the time
        # to the first probe (at most the breaker's cooldown).
        cooldown = multi.circuit_breaker.cooldown
        if e.retry_after is None or not 0 <= e.retry_after <= cooldown:
            with tally.lock:
                tally.lost.append(f"CircuitOpenError with retry_after={e.retry_after!r}")
            return
        tally.add(e.attempts, type(e).__name__)
        return
    except o.OrkestraError as e:
        tally.add(e.attempts, type(e).__name__)
        return
    except Exception as e:  # lost: not a typed error
        with tally.lock:
            tally.lost.append(f"{type(e).__name__}: {e}")
        return
    tally.add(response.attempts, None)


def plan_calls(n: int, fault_rate: float, rng: random.Random) -> list[Planned]:
    calls: list[Planned] = []
    for _ in range(n):
        fault = None
        if rng.random() < fault_rate:
            kind, times, aimed = rng.choice(FAULTS)
            fault = (kind, times, rng.choice(["google", "anthropic", "openai"]) if aimed else None)
        calls.append((rng.choice(PROMPTS), rng.random() < 0.5, rng.choice(STRATEGIES), fault))
    return calls


def inject(server: FakeProviderServer, fault: tuple[Fault, int, str | None] | None) -> None:
    if fault is not None:
        kind, times, provider = fault
        server.queue(kind, provider=provider, times=times)  # type: ignore[arg-type]


def run_threads(multi, server, calls, workers, tally) -> int:  # type: ignore[no-untyped-def]
    def job(call: Planned) -> None:
        prompt, stream, strategy, fault = call
        inject(server, fault)
        one_call(multi, prompt, stream, strategy, tally)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(job, c) for c in calls]
        _, pending = concurrent.futures.wait(futures, timeout=HANG + len(calls))
    for f in pending:
        f.cancel()
    return len(pending)


async def run_async(multi, server, calls, workers, tally) -> int:  # type: ignore[no-untyped-def]
    gate = asyncio.Semaphore(workers)
    hung = 0

    async def job(call: Planned) -> None:
        nonlocal hung
        prompt, stream, strategy, fault = call
        async with gate:
            inject(server, fault)
            try:
                await asyncio.wait_for(
                    asyncio.to_thread(one_call, multi, prompt, stream, strategy, tally), HANG
                )
            except TimeoutError:
                hung += 1

    await asyncio.gather(*(job(c) for c in calls))
    return hung


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Overhead:
    """Milliseconds per call: ``direct`` to the adapter, through the ``layer``, and the layer's
    own time ``inside`` it; and the calls the layer refused, by error type."""

    direct: list[float] = field(default_factory=list)
    layer: list[float] = field(default_factory=list)
    inside: list[float] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)


def overhead(
    multi: o.MultiProvider,
    n: int,
    rng: random.Random,
    breaker: o.CircuitBreaker | None = None,
) -> Overhead:
    """The same fault-free calls straight to the adapter, and through the layer (interleaved).

    The layer gets its own circuit breaker (default: a new one). The fault phase may leave
    circuits of the shared breaker open for their cooldown, and this phase times the layer's
    work on calls it makes, not a refusal: with that breaker a call could be refused outright
    (CircuitOpenError) and the measurement would fail. A call the layer still refuses is
    counted in ``refused`` and its pair is left out of the timings.
    """
    result = Overhead()
    by_name = {p.name: p for p in multi.providers}
    endpoints = {p.name: p.endpoint for p in multi.providers}
    layer: dict[str, Any] = {"policy": multi.retry, "breaker": breaker or o.CircuitBreaker()}
    options = RequestOptions(max_tokens=256)
    for i in range(n):
        prompt = rng.choice(PROMPTS)
        decision = multi.route(prompt)  # routing is not the layer: outside both timings
        provider = by_name[decision.provider]
        model = multi.plan(decision, prompt, max_tokens=256)[0].model
        pair: dict[str, float] = {}
        for mode in ("direct", "layer") if i % 2 else ("layer", "direct"):
            started = time.perf_counter()
            if mode == "direct":
                endpoint = provider.endpoint
                endpoint.adapter.complete(endpoint.prepare(model, prompt, options).request)
            else:  # plan the fallbacks, run the flow, price it, build the Response
                targets = multi.plan(decision, prompt, max_tokens=256)
                call = Call(endpoints, read_input(prompt, None, max_tokens=256), **layer)
                try:
                    response = call.chat(targets)
                except o.OrkestraError as e:
                    result.refused[type(e).__name__] += 1
                    break
            pair[mode] = (time.perf_counter() - started) * 1000
        else:
            result.direct.append(pair["direct"])
            result.layer.append(pair["layer"])
            result.inside.append(pair["layer"] - sum(a.latency_ms for a in response.attempts))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--overhead-calls", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with FakeProviderServer() as server:
        providers = [
            o.Provider(
                name,
                server.api_key,
                base_url=getattr(server, f"{name}_base_url"),
                timeout=o.Timeouts(connect=1.0, read=READ_TIMEOUT),
            )
            for name in ("google", "anthropic", "openai")
        ]
        budget = o.Budget(None, name="soak")
        multi = o.MultiProvider(providers, budget=budget)
        for p in providers:  # warm up: SDK imports and clients, not part of any figure
            p.chat("hello", max_tokens=16)
        server.clear()
        budget.reset()

        calls = plan_calls(args.calls, args.fault_rate, rng)
        faults = sum(1 for c in calls if c[3] is not None)
        queued = sum(c[3][1] for c in calls if c[3] is not None)
        half = len(calls) // 2
        tally = Tally()
        started = time.perf_counter()
        hung = run_threads(multi, server, calls[:half], args.workers, tally)
        hung += asyncio.run(run_async(multi, server, calls[half:], args.workers, tally))
        wall = time.perf_counter() - started
        requests = sum(
            1
            for r in server.requests
            if r.path.endswith(("/completions", "/messages", "Content", "GenerateContent"))
        )
        left = len(server._script)  # faults queued last, after the final requests
        open_after = len(multi.circuit_breaker.open_keys())
        server.clear()
        charged = budget.spent
        times = overhead(multi, args.overhead_calls, rng)
        multi.close()

    failed = sum(tally.typed.values())
    lost = len(tally.lost) + hung
    print(
        f"calls                {args.calls} ({half} threads, {args.calls - half} asyncio; "
        f"{args.workers} at a time; {wall:.1f} s)"
    )
    print(
        f"faults injected      before {faults} calls ({faults / args.calls:.0%}); "
        f"{queued} faulty responses queued, {left} never reached"
    )
    print(f"succeeded            {tally.ok}")
    typed = ", ".join(f"{k} {v}" for k, v in tally.typed.most_common())
    print(f"failed, typed        {failed}" + (f" ({typed})" if typed else ""))
    print(f"lost                 {lost}" + (f": {tally.lost[:3]}" if tally.lost else ""))
    print(f"retries              {tally.retries}")
    print(f"fallbacks            {tally.fallbacks}")
    print(f"attempts recorded    {tally.attempts} (generation requests the server saw: {requests})")
    print(f"cost recorded        ${tally.recorded:.6f} (charged to the budget: ${charged:.6f})")
    print(f"circuits still open  {open_after} (of the shared breaker, after the fault phase)")
    d, lay, inside = times.direct, times.layer, times.inside
    refused = ", ".join(f"{k} {v}" for k, v in times.refused.most_common())
    if refused:
        print(f"overhead refused     {sum(times.refused.values())} ({refused}): left out below")
    if not d:
        print("latency, no faults   no call went through the layer: nothing to time")
        return 1
    print(
        f"latency, no faults   direct to the adapter p50 {percentile(d, 50):.2f} ms "
        f"p99 {percentile(d, 99):.2f} ms; through the layer p50 {percentile(lay, 50):.2f} ms "
        f"p99 {percentile(lay, 99):.2f} ms ({len(d)} calls each)"
    )
    print(
        f"overhead added       p50 {percentile(lay, 50) - percentile(d, 50):+.2f} ms, "
        f"p99 {percentile(lay, 99) - percentile(d, 99):+.2f} ms; the layer's own time per "
        f"call p50 {percentile(inside, 50):.2f} ms p99 {percentile(inside, 99):.2f} ms "
        f"(mean {statistics.fmean(inside):.2f})"
    )
    balanced = tally.attempts == requests and abs(tally.recorded - charged) < 1e-9
    return 1 if lost or not balanced else 0


if __name__ == "__main__":
    sys.exit(main())
