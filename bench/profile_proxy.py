"""Where the proxy's CPU per request goes: ``python -m orkestra.server`` under cProfile (or
py-spy) while bench/proxy.py's client sends it chat requests through the fake upstream.

    .venv/bin/python bench/profile_proxy.py                        # pass-through, plain
    .venv/bin/python bench/profile_proxy.py --model orkestra/openai --stream
    .venv/bin/python bench/profile_proxy.py --profiler none        # CPU ms per request only
    .venv/bin/python bench/profile_proxy.py --profiler py-spy      # sampled (pip install py-spy)

The server is the same process bench/proxy.py measures (same config: a client key, the usage
log on SQLite in a temp dir, no retries), from this checkout or from ``--tree DIR`` (its src/).
After 100 warm-up requests it sends ``--requests`` more at concurrency ``--concurrency``:

- ``--profiler cprofile`` (the default): cProfile of the event loop's thread, started and
  stopped by signal (start-up and warm-up stay out), exact call counts, every Python call
  slowed alike; prints the CPU per request under the profiler and the top functions by
  cumulative and by own time (``--save FILE`` keeps the stats);
- ``--profiler py-spy``: the CPU per request unprofiled, then ``py-spy record`` (sampled, no
  slowdown, every thread, native frames) over as many requests again: the top leaf and
  inclusive frames;
- ``--profiler none``: the CPU per request only (the server process, read from ``/proc``).

No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from proxy import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    Target,
    base_env,
    cpu_seconds,
    free_port,
    load,
    orkestra_config,
    process,
    wait_for,
)

# The server's module run under a profiler that SIGUSR1 starts and SIGUSR2 stops and saves (the
# event loop's thread only: start-up and the warm-up stay out of it).
PROFILED = """
import cProfile, os, runpy, signal, sys
profile = cProfile.Profile()
def stop(*_):
    profile.disable()
    profile.dump_stats({stats!r} + ".part")
    os.replace({stats!r} + ".part", {stats!r})  # whole, or not there yet
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
signal.signal(signal.SIGUSR2, stop)
sys.argv[0] = "orkestra.server"
runpy.run_module("orkestra.server", run_name="__main__", alter_sys=True)
"""


def py_spy() -> str:
    """py-spy beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def py_spy_report(raw: Path, top: int) -> str:
    """Leaf (own) and inclusive sample shares from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples", "", "own:"]
    out += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"{n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--profiler", choices=["cprofile", "py-spy", "none"], default="cprofile")
    ap.add_argument("--top", type=int, default=60)
    ap.add_argument("--save", type=Path, help="keep the cProfile stats in this file")
    ap.add_argument("--tree", type=Path, help="serve orkestra from this source tree (its src/)")
    args = ap.parse_args()

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orkestra-prof-")))
        env = base_env()
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        fake = stack.enter_context(
            process(
                [sys.executable, "-m", "orkestra.testing", "--port", str(up_port)],
                env,
                tmp / "fake.log",
            )
        )
        wait_for(f"{upstream}/v1/models", fake, tmp / "fake.log")
        port = free_port()
        ork_env = {**env, "ORKESTRA_HOME": str(tmp), "BENCH_UPSTREAM_KEY": UPSTREAM_KEY}
        ork_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if args.tree is not None:
            ork_env["PYTHONPATH"] = str(args.tree.resolve() / "src")
        config = orkestra_config(upstream, tmp, "prof")
        serve = ["-m", "orkestra.server", "--config", str(config), "--port", str(port)]
        stats = tmp / "server.prof"
        if args.profiler == "cprofile":
            command = [sys.executable, "-c", PROFILED.format(stats=str(stats)), *serve[2:]]
        else:
            command = [sys.executable, *serve]
        log = tmp / "server.log"
        server = stack.enter_context(process(command, ork_env, log))
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz", server, log)
        target = Target(args.model, url, args.model, CLIENT_KEY, [server.pid])
        asyncio.run(load(target, 4, 100, args.stream))  # warm up

        if args.profiler != "cprofile":
            result = asyncio.run(load(target, args.concurrency, args.requests, args.stream))
            print(
                f"{args.model} {'stream' if args.stream else 'plain'} c={args.concurrency}: "
                f"{result.cpu_ms:.3f} CPU ms/req (server process), p50 "
                f"{result.percentile(0.5):.2f} ms, {result.rps:.0f} req/s, "
                f"load {os.getloadavg()[0]:.1f}, {result.errors} errors"
            )
        if args.profiler == "py-spy":
            raw = tmp / "spy.txt"
            spy = subprocess.Popen(
                [
                    *(py_spy(), "record", "--pid", str(server.pid), "--format", "raw"),
                    *("--rate", "500", "--output", str(raw), "--nonblocking"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            asyncio.run(load(target, args.concurrency, args.requests, args.stream))
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
            print(py_spy_report(raw, args.top))
        elif args.profiler == "cprofile":
            server.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
            cpu = cpu_seconds([server.pid])
            result = asyncio.run(load(target, args.concurrency, args.requests, args.stream))
            cpu = cpu_seconds([server.pid]) - cpu
            server.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while not stats.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            print(
                f"{args.model} {'stream' if args.stream else 'plain'} c={args.concurrency}, "
                f"under cProfile: {cpu / args.requests * 1000:.3f} CPU ms/req, "
                f"{result.errors} errors"
            )
            if args.save is not None:
                shutil.copyfile(stats, args.save)
            profile = pstats.Stats(str(stats))
            profile.sort_stats("cumulative").print_stats(args.top)
            profile.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
