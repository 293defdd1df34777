"""Slow connections (slowloris) against a real ``orkestra serve``: descriptors, log lines, health.

    .venv/bin/python bench/slow_connections.py                       # 20,000 connections
    .venv/bin/python bench/slow_connections.py --connections 2000 --hold 20

``--connections`` sockets (spread over ``--attackers`` processes, each under its own descriptor
limit) connect to a real ``python -m orkestra.server`` (no client keys, no usage log, the fake
provider upstream) and send the start of a request — ``GET /healthz HTTP/1.1``, ``Host``, then a
header that never ends — adding one byte every 5 s, for ``--hold`` seconds. Meanwhile, once a
second: the server's open descriptors (``/proc/<pid>/fd``) and a fresh ``GET /healthz`` (5 s
timeout). Printed: the peak descriptors, how many slow sockets the server closed by itself, the
health checks answered and their worst latency, and the lines the server logged.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from proxy_helpers import (  # noqa: E402
    UPSTREAM_KEY,
    keyless_openai_toml,
    server_env,
    start_server,
)

from orkestra.testing import FakeProviderServer  # noqa: E402

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _attack(port: int, count: int, hold: float, closed: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    stop = time.monotonic() + hold

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        try:
            writer.write(HEAD)
            while time.monotonic() < stop:
                try:
                    data = await asyncio.wait_for(reader.read(1024), timeout=5)
                except asyncio.TimeoutError:
                    writer.write(b"a")  # one more byte of a header that never ends
                    continue
                if not data:  # the server hung up
                    with closed.get_lock():
                        closed.value += 1
                    return
        except OSError:
            with closed.get_lock():
                closed.value += 1
        finally:
            writer.close()

    tasks = []
    for _ in range(count):
        tasks.append(asyncio.ensure_future(one()))
        await asyncio.sleep(0)  # spread the connects a little
    await asyncio.gather(*tasks)


def _attacker(port: int, count: int, hold: float, closed: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    _raise_fd_limit()
    asyncio.run(_attack(port, count, hold, closed))


def _descriptors(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def _limit_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return f"{int(line.split()[3]):,}"
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=40.0)
    parser.add_argument(
        "--server-fd-limit",
        type=int,
        help="the server's descriptor limit (default: this shell's; many systems use 1,024)",
    )
    args = parser.parse_args()
    _raise_fd_limit()
    with FakeProviderServer(api_key=UPSTREAM_KEY) as upstream, tempfile.TemporaryDirectory() as d:
        home = Path(d)
        config = home / "orkestra.toml"
        config.write_text(keyless_openai_toml(upstream))
        env = server_env(home)
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        if args.server_fd_limit:  # the server process inherits it
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.server_fd_limit, limits[1]))
        try:
            server = start_server(config, env, home / "server.log", home / "unused.db")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        pid = server.process.pid
        server_limit = _limit_of(pid)
        port = int(server.url.rsplit(":", 1)[1])
        lines_before = len(server.output().splitlines())
        closed = multiprocessing.Value("i", 0)
        share = args.connections // args.attackers
        attackers = [
            multiprocessing.Process(target=_attacker, args=(port, share, args.hold, closed))
            for _ in range(args.attackers)
        ]
        samples: list[int] = []
        health: list[float | None] = []
        done = threading.Event()

        def watch() -> None:
            with httpx.Client(timeout=5) as client:
                while not done.is_set():
                    samples.append(_descriptors(pid))
                    started = time.perf_counter()
                    try:
                        ok = client.get(f"{server.url}/healthz").status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    health.append(time.perf_counter() - started if ok else None)
                    time.sleep(1)

        watcher = threading.Thread(target=watch)
        started = time.monotonic()
        watcher.start()
        for p in attackers:
            p.start()
        for p in attackers:
            p.join()
        done.set()
        watcher.join()
        elapsed = time.monotonic() - started
        time.sleep(1)
        alive = server.alive()
        log = server.output().splitlines()
        server.stop()
        answered = [h for h in health if h is not None]
        print(
            f"\n{args.connections:,} slow connections held {args.hold:g} s "
            f"(run took {elapsed:.0f} s); the server's descriptor limit {server_limit}\n"
        )
        print("| what | measured |\n|---|---:|")
        print(f"| server descriptors, peak | {max(samples):,} |")
        print(f"| server descriptors, median over the run | {statistics.median(samples):,.0f} |")
        print(f"| slow sockets the server closed by itself | {closed.value:,} |")
        print(f"| `/healthz` answered (once a second) | {len(answered)} of {len(health)} |")
        worst = f"{max(answered) * 1000:,.0f} ms" if answered else "-"
        print(f"| `/healthz` worst latency when answered | {worst} |")
        print(f"| lines the server logged during the run | {len(log) - lines_before:,} |")
        print(f"| server still running after | {'yes' if alive else 'no'} |")
        distinct = {line.split(":", 1)[0] + ":" + line[9:70] for line in log[lines_before:]}
        for sample in sorted(distinct)[:5]:
            print(f"|   e.g. `{sample.strip()}` | |")


if __name__ == "__main__":
    main()
