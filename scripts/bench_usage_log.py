"""How long ``UsageLog.record()`` keeps the caller, and how fast the writer drains.

    python scripts/bench_usage_log.py                       # SQLite in a temp dir
    python scripts/bench_usage_log.py --url postgresql://user@127.0.0.1:5432/db

Reports record() p50/p99/max in microseconds (the call-path cost), the same for
``UsageRecord.from_response()`` + ``record()`` (what a call pays in all), and the writer's
throughput (records made durable per second). The tight loop makes records far faster than the
writer can store them, so its max is the bounded queue pushing back (by design); the paced runs
are what a caller making real LLM calls sees.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import tempfile
import time

from orkestra._types import Response, RoutingDecision, Usage
from orkestra.usage import UsageRecord, key_id_for, open_usage_log


def response() -> Response:
    return Response(
        text="Tokyo.",
        provider="anthropic",
        model="claude-haiku-4-5",
        usage=Usage(1200, 340, cache_read_tokens=1000, reasoning_tokens=40),
        input_cost=0.0012,
        output_cost=0.0017,
        base_model="claude-opus-4-6",
        base_cost=0.0145,
        routing=RoutingDecision(
            provider="anthropic",
            model="claude-haiku-4-5",
            tier="budget",
            scores={"budget": 0.91, "balanced": 0.93, "premium": 0.95},
            knob=0.4,
            reason="bench",
            latency_ms=0.37,
        ),
        latency_ms=812.5,
    )


def percentiles(ns: list[int]) -> str:
    us = sorted(n / 1000 for n in ns)
    p50 = statistics.median(us)
    p99 = us[int(len(us) * 0.99) - 1]
    return f"p50 {p50:6.1f} µs   p99 {p99:6.1f} µs   max {us[-1]:8.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="usage database URL (default: SQLite in a temp dir)")
    parser.add_argument("-n", type=int, default=50_000, help="records per measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        log = open_usage_log(args.url or f"sqlite:///{tmp}/usage.db")
        key_id = key_id_for("sk-bench-key")
        # One Response per record: a record's id is its Response's call_id, and recording
        # the same answer twice is (by design) one row.
        responses = iter([response() for _ in range(1000 + 2 * args.n + 4000)])
        print(f"{log!r}; Python {platform.python_version()}; {os.cpu_count()} CPUs; n={args.n}")

        for _ in range(1000):  # warm up: connections, the writer thread
            log.record(UsageRecord.from_response(next(responses), key_id=key_id))
        log.flush()

        records = [UsageRecord.from_response(next(responses), key_id=key_id) for _ in range(args.n)]
        gc.collect()
        ns = []
        started = time.perf_counter()
        for record in records:
            t0 = time.perf_counter_ns()
            log.record(record)
            ns.append(time.perf_counter_ns() - t0)
        log.flush()
        elapsed = time.perf_counter() - started
        print(f"record()                          {percentiles(ns)}")
        print(f"writer throughput                 {args.n / elapsed:,.0f} records/s durable")

        ns = []
        for _ in range(args.n):
            resp = next(responses)
            t0 = time.perf_counter_ns()
            log.record(UsageRecord.from_response(resp, key_id=key_id))
            ns.append(time.perf_counter_ns() - t0)
        log.flush()
        print(f"from_response() + record()        {percentiles(ns)}")

        # Callers at a realistic pace (500 calls a second), not a tight loop: each record() finds
        # the writer idle and wakes it, and the caller's caches are cold.
        paced = [UsageRecord.from_response(next(responses), key_id=key_id) for _ in range(2000)]
        ns = []
        for record in paced:
            time.sleep(0.002)
            t0 = time.perf_counter_ns()
            log.record(record)
            ns.append(time.perf_counter_ns() - t0)
        print(f"record(), paced                   {percentiles(ns)}")
        ns = []
        for _ in range(2000):
            time.sleep(0.002)
            resp = next(responses)
            t0 = time.perf_counter_ns()
            log.record(UsageRecord.from_response(resp, key_id=key_id))
            ns.append(time.perf_counter_ns() - t0)
        log.close()
        print(f"from_response() + record(), paced {percentiles(ns)}")


if __name__ == "__main__":
    main()
