"""What a sticky session costs a turn, by where its pin lives: in memory, in the usage log's
SQLite file (workers on one machine) or in PostgreSQL (replicas).

Two measurements, each side by side in one run (the machine is shared and noisy):

1. The store alone: one turn is a read of the pin before routing and a write after the answer
   (``get`` + ``pin``), over 100 sessions, by 1 and by 8 threads at once.
2. Through the proxy: sequential chat requests with a ``prompt_cache_key`` to one in-process
   ``orkestra serve`` app (uvicorn, the fake provider server upstream, the real ``openai``
   client), its sessions in memory or in the usage database; requests to the variants are
   interleaved so that drift in the machine's load hits them alike.

    python bench/sessions.py                 # memory, sqlite, postgres (a throwaway server)
    python bench/sessions.py --no-postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "server"))

from pg_server import fresh_database, running  # noqa: E402
from proxy_helpers import served  # noqa: E402

import orkestra as o  # noqa: E402
from orkestra.server import ProviderConfig, ServerConfig, create_app  # noqa: E402
from orkestra.testing import FakeProviderServer  # noqa: E402
from orkestra.usage import open_usage_log  # noqa: E402

PINS = [o.Pin("google", "gemini-2.5-flash-lite", "budget"), o.Pin("openai", "o3", "premium")]


def store_turns(store: o.SessionStore, turns: int, threads: int) -> list[float]:
    """Seconds per turn (get + pin), ``turns`` in all over ``threads`` threads."""
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        mine = []
        start.wait()
        for i in range(turns // threads):
            session = f"s-{(worker * 7919 + i) % 100}"
            began = time.perf_counter()
            store.get(session)
            store.pin(session, PINS[i % 2])
            mine.append(time.perf_counter() - began)
        with lock:
            times.extend(mine)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6


def proxy_latencies(urls: dict[str, str], requests: int) -> dict[str, list[float]]:
    clients = {
        name: openai.OpenAI(base_url=f"{url}/v1", api_key="unused-local-key", max_retries=0)
        for name, url in urls.items()
    }
    times: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(requests + 10):
        for name, client in clients.items():
            began = time.perf_counter()
            client.chat.completions.create(
                model="orkestra/auto",
                messages=[{"role": "user", "content": "What is the capital of Japan?"}],
                prompt_cache_key=f"conv-{i % 20}",
            )
            if i >= 10:  # the first requests warm connections and caches up
                times[name].append(time.perf_counter() - began)
    for client in clients.values():
        client.close()
    return times


def main() -> None:
    warnings.simplefilter("ignore", o.ModelRetirementWarning)  # real dates: not what is measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=4000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {"sqlite": f"sqlite:///{tmp / 'usage.db'}"}
        if not args.no_postgres:
            server = stack.enter_context(running())
            urls["postgres"] = stack.enter_context(fresh_database(server))
        logs = {name: open_usage_log(url) for name, url in urls.items()}
        for log in logs.values():
            stack.callback(log.close)

        stores: dict[str, Callable[[], o.SessionStore]] = {"memory": o.Sessions}
        for name, log in logs.items():
            stores[name] = log.session_store

        print(f"1. the store alone: {args.turns} turns (get + pin) over 100 sessions")
        print(f"{'store':10} {'threads':>7} {'p50 µs':>9} {'p99 µs':>9} {'turns/s':>9}")
        for threads in (1, 8):
            for name, make in stores.items():
                store = make()
                began = time.perf_counter()
                times = store_turns(store, args.turns, threads)
                rate = len(times) / (time.perf_counter() - began)
                store.close()
                p50, p99 = summary(times)
                print(f"{name:10} {threads:>7} {p50:>9.1f} {p99:>9.1f} {rate:>9.0f}")

        print(f"\n2. through the proxy: {args.requests} sequential requests each, interleaved")
        fake = stack.enter_context(FakeProviderServer(api_key="sk-bench-0123456789abcdef01"))
        os.environ.update(OPENAI_API_KEY=fake.api_key, OPENAI_BASE_URL=fake.openai_base_url)
        apps = {}
        memory_log = open_usage_log(f"sqlite:///{tmp / 'memory.db'}")
        stack.callback(memory_log.close)
        variants = {"memory": (memory_log, False)}
        variants.update({name: (log, True) for name, log in logs.items()})
        for name, (log, shared) in variants.items():
            config = ServerConfig(providers=(ProviderConfig("openai"),), shared_sessions=shared)
            apps[name] = stack.enter_context(served(create_app(config, usage_log=log)))
        latencies = proxy_latencies(apps, args.requests)
        base = statistics.median(latencies["memory"])
        print(f"{'sessions':10} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs memory':>14}")
        for name, times in latencies.items():
            p50, p99 = summary(times)
            print(f"{name:10} {p50 / 1000:>8.2f} {p99 / 1000:>8.2f} {p50 / 1e6 / base:>13.2f}×")


if __name__ == "__main__":
    main()
