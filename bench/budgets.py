"""How far a key's budget can be overspent by concurrent requests: spent / cap.

    .venv/bin/python bench/budgets.py                      # every scenario
    .venv/bin/python bench/budgets.py --only passthrough   # one of: passthrough, routed, replicas

Each scenario sends ``--clients`` (50) requests at once, through the real ``openai`` client, with
one key whose ``budget_usd`` is ``--cap`` ($0.01), to the fake provider server, which answers
each after ``--delay`` seconds (so that every request is in flight together) with
``--output-tokens`` (4,000) billed output tokens; no request sets ``max_tokens``. What the key
spent is read from the usage log afterwards (every call's billed cost).

- ``passthrough``: ``model="gpt-4o-mini"``, the app in this process (uvicorn on a thread);
- ``routed``: ``model="orkestra/openai"``, the same app;
- ``replicas``: two ``python -m orkestra.server`` processes sharing one PostgreSQL usage log
  (a throwaway server, as the tests start), half of the clients on each; pass-through.

A ratio above 1.00 is money spent past the cap. Then what a shared budget costs per request:
one reservation and one settlement (two transactions), p50 and p99 over ``--holds`` (2,000)
pairs, on a SQLite usage log and on the PostgreSQL one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "server"))

from pg_server import fresh_database, running  # noqa: E402
from proxy_helpers import UPSTREAM_KEY, served, start_server  # noqa: E402

from orkestra.resilience import SharedBudget  # noqa: E402
from orkestra.server import KeyConfig, ProviderConfig, ServerConfig, create_app, hash_key  # noqa: E402
from orkestra.testing import FakeProviderServer, Reply  # noqa: E402
from orkestra.usage import key_id_for, open_usage_log  # noqa: E402

CLIENT_KEY = "ok-bench-budget-" + "b" * 32


@dataclass
class Outcome:
    scenario: str
    cap: float
    ok: int
    refused: int
    other: int
    spent: float

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.ok} | {self.refused} | {self.other} | "
            f"${self.spent:.6f} | ${self.cap:.2f} | **{self.spent / self.cap:.2f}** |"
        )


async def _fire(urls: list[str], model: str, clients: int) -> tuple[int, int, int]:
    """``clients`` requests at once, spread over ``urls``: (answered, refused 429, other)."""
    pool = [openai.AsyncOpenAI(base_url=u, api_key=CLIENT_KEY, max_retries=0) for u in urls]

    async def one(i: int) -> int:
        try:
            await pool[i % len(pool)].chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"Write essay number {i}"}]
            )
        except openai.RateLimitError:
            return 429
        except openai.APIError as exc:
            print(f"  request {i}: {exc!r}", file=sys.stderr)
            return 500
        return 200

    try:
        codes = await asyncio.gather(*(one(i) for i in range(clients)))
    finally:
        for client in pool:
            await client.close()
    return codes.count(200), codes.count(429), len(codes) - codes.count(200) - codes.count(429)


def _config(upstream: FakeProviderServer, cap: float, database_url: str) -> ServerConfig:
    return ServerConfig(
        providers=(ProviderConfig("openai", base_url=upstream.openai_base_url),),
        keys=(KeyConfig("bench", hash_key(CLIENT_KEY), budget_usd=cap),),
        database_url=database_url,
        max_retries=0,
    )


def _spent(database_url: str) -> float:
    log = open_usage_log(database_url)
    try:
        return log.spend(key_id_for(CLIENT_KEY))
    finally:
        log.close()


def in_process(
    name: str, model: str, upstream: FakeProviderServer, args: argparse.Namespace
) -> Outcome:
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{home}/usage.db"
        upstream.clear()
        upstream.queue(
            Reply(output_tokens=args.output_tokens, delay=args.delay), times=args.clients
        )
        app = create_app(_config(upstream, args.cap, url), environ={"OPENAI_API_KEY": UPSTREAM_KEY})
        with served(app) as base:
            ok, refused, other = asyncio.run(_fire([f"{base}/v1"], model, args.clients))
        return Outcome(name, args.cap, ok, refused, other, _spent(url))


def replicas(upstream: FakeProviderServer, args: argparse.Namespace) -> Outcome:
    with ExitStack() as stack:
        server = stack.enter_context(running())
        url = stack.enter_context(fresh_database(server))
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config = home / "orkestra.toml"
        config.write_text(
            f"""
[server]
port = 0
[routing]
max_retries = 0
[usage]
database_url = "{url}"
[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"
[[keys]]
name = "bench"
sha256 = "{hash_key(CLIENT_KEY)}"
budget_usd = {args.cap}
"""
        )
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env.update(ORKESTRA_HOME=str(home), UPSTREAM_OPENAI_KEY=UPSTREAM_KEY)
        upstream.clear()
        upstream.queue(
            Reply(output_tokens=args.output_tokens, delay=args.delay), times=args.clients
        )
        live = [start_server(config, env, home / f"server{i}.log", home / "unused") for i in (1, 2)]
        try:
            urls = [f"{s.url}/v1" for s in live]
            ok, refused, other = asyncio.run(_fire(urls, "gpt-4o-mini", args.clients))
        finally:
            for s in live:
                s.stop()  # flushes its usage log
        return Outcome("2 replicas, PostgreSQL", args.cap, ok, refused, other, _spent(url))


def _hold_latency(database_url: str, holds: int) -> tuple[float, float]:
    log = open_usage_log(database_url)
    store = log.spend_store()
    budget = SharedBudget(1e9, store, "bench-latency")
    times = []
    try:
        for _ in range(holds):
            started = time.perf_counter()
            budget.reserve(0.001).settle(0.0005)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
        log.close()
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def latency(holds: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as home:
        p50, p99 = _hold_latency(f"sqlite:///{home}/usage.db", holds)
        rows.append(f"| SQLite (WAL) | {p50:.3f} ms | {p99:.3f} ms |")
    with running() as server, fresh_database(server) as url:
        p50, p99 = _hold_latency(url, holds)
        rows.append(f"| PostgreSQL (127.0.0.1) | {p50:.3f} ms | {p99:.3f} ms |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cap", type=float, default=0.01)
    parser.add_argument("--output-tokens", type=int, default=4000)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--holds", type=int, default=2000)
    parser.add_argument("--only", choices=["passthrough", "routed", "replicas", "latency"])
    args = parser.parse_args()
    outcomes = []
    if args.only == "latency":
        print("| store | reserve + settle p50 | p99 |\n|---|---:|---:|")
        print("\n".join(latency(args.holds)))
        return
    with FakeProviderServer(api_key=UPSTREAM_KEY) as upstream:
        if args.only in (None, "passthrough"):
            outcomes.append(in_process("in-process, pass-through", "gpt-4o-mini", upstream, args))
        if args.only in (None, "routed"):
            outcomes.append(in_process("in-process, routed", "orkestra/openai", upstream, args))
        if args.only in (None, "replicas"):
            outcomes.append(replicas(upstream, args))
    print(
        f"\n{args.clients} concurrent requests, {args.output_tokens} output tokens each, "
        f"no max_tokens\n"
    )
    print("| scenario | answered | refused (429) | other | spent | cap | spent / cap |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for outcome in outcomes:
        print(outcome.row())
    if args.only is None:
        print("\n| store | reserve + settle p50 | p99 |\n|---|---:|---:|")
        print("\n".join(latency(args.holds)))


if __name__ == "__main__":
    main()
