"""``kill -9`` in the middle of a busy run: how many records of calls the clients saw end are lost.

    .venv/bin/python bench/crash.py                       # proxy and library, SQLite
    .venv/bin/python bench/crash.py --postgres            # a throwaway PostgreSQL (durable)
    .venv/bin/python bench/crash.py --mode proxy --clients 200 --fault-rate 0.2 --seconds 10
    PYTHONPATH=/path/to/other/src .venv/bin/python bench/crash.py   # another tree, e.g. before

The fake provider server runs in this process; about ``--fault-rate`` of the requests it gets
are answered with a fault (429, 500, 503, a dropped connection, a stream cut after text, a
delay), queued as the requests arrive.

- ``proxy``: ``orkestra serve`` (``python -m orkestra.server``, one worker) in its own process,
  and ``--clients`` threads of the real ``openai`` client calling it (routed and pass-through,
  half streaming). Every request that got an answer (a completion, a finished stream, or an
  error status) is "completed", known by its ``x-request-id``.
- ``library``: a child process with ``--clients`` threads calling a ``MultiProvider``, each
  prompt unique (the log keeps prompts), printing each call that returned or raised.

After ``--seconds`` the server (or child) is killed with SIGKILL, mid-flight. The usage log is
then opened here, as a restarted server would (which replays the dead process's journal), and
each completed call's record is looked up. Prints the completed calls, the records lost (must be
0), the calls in flight counted as ``Interrupted`` (at their worst case), and the dollars the
log holds against those the clients were told.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

CLIENT_KEY = "ok-crash-" + "k" * 40
UPSTREAM_KEY = "test-key"
PROMPTS = ["What is the capital of Japan?", "Write a haiku about rain", "What is 17 times 23?"]

LIBRARY_CHILD = r"""
import sys, threading, time
import orkestra as o
clients, stop = int(sys.argv[1]), float(sys.argv[2])
timeouts = o.Timeouts(connect=1.0, read=2.0)
providers = [o.Provider(n, timeout=timeouts) for n in ("openai", "anthropic", "google")]
multi = o.MultiProvider(providers)
lock = threading.Lock()
def say(line):
    with lock:
        sys.stdout.write(line + "\n"); sys.stdout.flush()
def client(c):
    n = 0
    while time.time() < stop:  # the parent's wall clock
        n += 1
        marker = f"c{c}n{n}"
        prompt = f"{marker}: What is the capital of Japan?"
        try:
            if n % 2:
                s = multi.stream(prompt, max_tokens=64)
                "".join(s)
                cost = s.response.total_cost
            else:
                cost = multi.chat(prompt, max_tokens=64).total_cost
            say(f"ok {marker} {cost!r}")
        except o.OrkestraError as e:
            say(f"err {marker} {sum(a.cost for a in e.attempts)!r} {type(e).__name__}")
o.usage.default_usage_log()
for p in providers:  # warm up: SDK imports and clients, the router
    p.chat("hello", max_tokens=8)
say("ready")
threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
"""


def faults(server: object, rate: float, stop: threading.Event, seed: int) -> None:
    """Queue a fault for about ``rate`` of the requests, as they arrive."""
    from orkestra.testing import Fault

    kinds = [
        Fault.status(429),
        Fault.status(500),
        Fault.status(503),
        Fault.drop(),
        Fault.cut_stream(after_chunks=2),
        Fault.delay(1.5),
    ]
    rng = random.Random(seed)
    seen = 0
    while not stop.is_set():
        count = len(server.requests)  # type: ignore[attr-defined]
        for _ in range(count - seen):
            if rng.random() < rate:
                server.queue(rng.choice(kinds))  # type: ignore[attr-defined]
        seen = count
        time.sleep(0.002)


def proxy_config(server: object, url: str, tmp: Path) -> Path:
    path = tmp / "orkestra.toml"
    providers = "".join(
        f'\n[providers.{name}]\napi_key_env = "CRASH_UPSTREAM_KEY"\n'
        f'base_url = "{getattr(server, f"{name}_base_url")}"\n'
        for name in ("openai", "anthropic", "google")
    )
    path.write_text(
        f'[routing]\nmax_retries = 1\ntimeout = 2.0\n\n[usage]\ndatabase_url = "{url}"\n'
        f'{providers}\n[[keys]]\nname = "crash"\n'
        f'sha256 = "{hashlib.sha256(CLIENT_KEY.encode()).hexdigest()}"\n'
    )
    return path


def env_for(tmp: Path, server: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(
        ORKESTRA_HOME=str(tmp / "home"),
        NO_PROXY="127.0.0.1,localhost",
        CRASH_UPSTREAM_KEY=UPSTREAM_KEY,
        GOOGLE_GENAI_API_VERSION="v1beta",
    )
    return env


def run_proxy(server: object, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    import urllib.request

    import openai

    env = env_for(tmp, server)
    log_file = tmp / "server.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orkestra.server",
                "--config",
                str(proxy_config(server, url, tmp)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = None
    deadline = time.monotonic() + 120
    while base is None and time.monotonic() < deadline:
        for line in log_file.read_text(errors="replace").splitlines():
            if line.startswith("orkestra serve: http://"):
                base = line.split()[2]
        time.sleep(0.05)
    if base is None:
        proc.kill()
        raise SystemExit(f"the proxy did not start:\n{log_file.read_text()[-2000:]}")
    with urllib.request.urlopen(base.removesuffix("/v1") + "/healthz", timeout=30):
        pass

    completed: dict[str, float] = {}
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def client(c: int) -> None:
        with openai.OpenAI(base_url=base, api_key=CLIENT_KEY, max_retries=0, timeout=30) as api:
            n = 0
            while time.monotonic() < stop + 30:
                n += 1
                model = "orkestra/auto" if n % 3 else "gpt-4o-mini"
                messages = [{"role": "user", "content": f"c{c}n{n}: {PROMPTS[n % 3]}"}]
                try:
                    if n % 2:
                        with api.chat.completions.with_streaming_response.create(
                            model=model, messages=messages, stream=True, max_tokens=64
                        ) as raw:
                            rid = raw.headers["x-request-id"]
                            chunks = list(raw.parse())
                        cost = chunks[-1].model_extra["orkestra"]["cost_usd"]  # type: ignore[index]
                        outcome = "ok"
                    else:
                        got = api.chat.completions.with_raw_response.create(
                            model=model, messages=messages, max_tokens=64
                        )
                        rid, cost, outcome = (
                            got.headers["x-request-id"],
                            float(got.headers["x-orkestra-cost-usd"]),
                            "ok",
                        )
                except openai.APIStatusError as e:  # an answer: an error status
                    rid = e.response.headers.get("x-request-id")
                    cost = float(e.response.headers.get("x-orkestra-cost-usd", 0.0))
                    outcome = f"error {e.status_code}"
                except Exception:  # the kill: a connection cut mid-answer
                    if proc.poll() is not None:
                        return  # killed: this one was in flight
                    continue  # a cut stream: no complete answer
                with lock:
                    outcomes[outcome] += 1
                    if rid:
                        completed[rid] = cost

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    with lock:
        before_kill = len(completed)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for t in threads:
        t.join(60)
    print(
        f"proxy: {args.clients} clients; killed after {args.seconds:g} s and {before_kill} answers"
    )
    print(f"  outcomes seen by the clients: {dict(outcomes)}")
    return check(url, tmp, completed, lambda r: r.id)


def run_library(server: object, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    env = env_for(tmp, server)
    env.update(server.env())  # type: ignore[attr-defined]
    env.update(ORKESTRA_DATABASE_URL=url, ORKESTRA_STORE_PROMPTS="1")
    stop = time.time() + 600  # the child's clock: run until killed
    proc = subprocess.Popen(
        [sys.executable, "-c", LIBRARY_CHILD, str(args.clients), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    completed: dict[str, float] = {}
    outcomes: Counter[str] = Counter()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, *rest = line.split()
            if kind in ("ok", "err"):
                completed[rest[0]] = float(rest[1])
                outcomes[kind if kind == "ok" else rest[2]] += 1

    reader = threading.Thread(target=read, daemon=True)
    assert proc.stdout.readline().strip() == "ready"
    reader.start()
    time.sleep(args.seconds)
    before_kill = len(completed)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(30)
    proc.stdout.close()
    print(
        f"library: {args.clients} threads; killed after {args.seconds:g} s, "
        f"{before_kill} calls ended"
    )
    print(f"  outcomes seen by the callers: {dict(outcomes)}")
    return check(url, tmp, completed, lambda r: (r.prompt or "").split(":")[0])


def check(url: str, tmp: Path, completed: dict[str, float], key: object) -> dict[str, float]:
    os.environ["ORKESTRA_HOME"] = str(tmp / "home")  # the journal of a PostgreSQL log is here
    from orkestra.usage import open_usage_log

    interrupted_status = "Interrupted"  # orkestra.usage._journal's (absent in a tree before it)
    with open_usage_log(url, store_prompts=True) as log:
        replayed = getattr(log, "replayed", 0)  # a tree before the journal: --src
        records = log.query()
    by_key = {key(r): r for r in records}  # type: ignore[operator]
    lost = [k for k in completed if k not in by_key]
    interrupted = [r for r in records if r.status == interrupted_status]
    told = sum(completed.values())
    logged = sum(by_key[k].cost for k in completed if k in by_key)
    print(f"  completed calls {len(completed)}; their records lost: {len(lost)} {lost[:5]}")
    print(
        f"  journal segments replayed {replayed}; calls in flight counted as Interrupted: "
        f"{len(interrupted)} (${sum(r.cost for r in interrupted):.6f} held)"
    )
    print(
        f"  records {len(records)}; $ the clients were told {told:.6f}, "
        f"$ their records hold {logged:.6f}; $ in the log in all {sum(r.cost for r in records):.6f}"
    )
    return {"completed": len(completed), "lost": len(lost), "interrupted": len(interrupted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["proxy", "library", "both"], default="both")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=10.0, help="run this long, then kill")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    from orkestra.testing import FakeProviderServer

    lost = 0
    modes = ["proxy", "library"] if args.mode == "both" else [args.mode]
    with contextlib.ExitStack() as stack:
        server_url = None
        if args.postgres:
            from _postgres import throwaway_postgres

            server_url = stack.enter_context(throwaway_postgres())
        for mode in modes:
            with (
                tempfile.TemporaryDirectory() as tmp,
                FakeProviderServer(api_key=UPSTREAM_KEY) as fake,
            ):
                url = f"sqlite:///{tmp}/usage.db"
                if server_url is not None:
                    import psycopg

                    name = f"crash_{mode}_{os.getpid()}"
                    with psycopg.connect(server_url, autocommit=True) as pg:
                        pg.execute(f'CREATE DATABASE "{name}"')
                    url = server_url.rsplit("/", 1)[0] + f"/{name}"
                stop = threading.Event()
                feeder = threading.Thread(
                    target=faults, args=(fake, args.fault_rate, stop, args.seed), daemon=True
                )
                feeder.start()
                run = run_proxy if mode == "proxy" else run_library
                try:
                    lost += run(fake, url, Path(tmp), args)["lost"]
                finally:
                    stop.set()
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
