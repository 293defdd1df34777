"""What the proxy adds: latency over calling the upstream directly, and requests per second.

    .venv/bin/python bench/proxy.py                  # orkestra and LiteLLM, side by side
    .venv/bin/python bench/proxy.py --skip-litellm   # orkestra only
    .venv/bin/python bench/proxy.py --requests 0.5   # half the requests (quicker, noisier)
    .venv/bin/python bench/proxy.py --skip-litellm --workers 1,2 --rounds 3   # --workers N
    .venv/bin/python bench/proxy.py --skip-litellm --cascade   # + orkestra/cascade

Everything runs on 127.0.0.1, each in its own process: the fake provider server
(``python -m orkestra.testing``), ``orkestra serve`` (``python -m orkestra.server``, one worker,
a client key, the usage log on SQLite in a temp dir) in front of its OpenAI endpoint, and
LiteLLM's proxy (one worker, a master key, no database) in front of the same endpoint. LiteLLM
is a peer, not a dependency: it is installed into ``.cache/litellm-venv`` by this script
(``pip install "litellm[proxy]"``) the first time.

Four targets get the same non-streaming chat requests (eight prompts in turn, ``max_tokens``
64), through a small keep-alive HTTP/1.1 client on asyncio so the load generator costs little:

- ``direct``: the fake upstream itself (the baseline);
- ``orkestra gpt-4o-mini``: pass-through to one model (auth, validation, usage log, pricing);
- ``orkestra/openai``: the same plus the routing decision (embedding + KNN) on every request;
- ``litellm gpt-4o-mini``: LiteLLM's proxy, its model fixed.

``--cascade`` adds ``orkestra/cascade``: the same requests as a cascade (gpt-4o-mini first, its
answer checked by the heuristic verifier, the next tier up when the check fails: with the fake's
echoing answers, the one maths prompt of the eight climbs every time).

For each, at concurrency 1, 16 and 64, a bounded number of requests after a warm-up: p50 and p99
latency, requests per second, and (at concurrency 1) the latency added over ``direct``.

``--workers 1,2`` measures the orkestra targets once per worker count (``orkestra serve
--workers N``, one server per count) and ends with each count's requests per second as a
multiple of the first count's, at each concurrency; ``--rounds R`` measures them R times in
turn and pools each target's rounds (the machine's load drifts over every count alike).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VENV = ROOT / ".cache" / "litellm-venv"
UPSTREAM_KEY = "test-key"
CLIENT_KEY = "ok-bench-" + "k" * 40
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
LEVELS = ((1, 400), (16, 2000), (64, 3000))  # (concurrency, requests)
WARMUP = 100


# -- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------


class Connection:
    """One keep-alive connection: POST, read the status and the whole body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
        self.writer.write("\r\n".join(head).encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            data = bytearray()
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
            payload = bytes(data)
        else:
            payload = await self.reader.readexactly(length or 0)
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


@dataclass
class Target:
    name: str
    url: str  # http://127.0.0.1:port
    path: str
    model: str
    key: str

    def body(self, i: int) -> bytes:
        message = {"role": "user", "content": PROMPTS[i % len(PROMPTS)]}
        return json.dumps({"model": self.model, "messages": [message], "max_tokens": 64}).encode()


@dataclass
class Result:
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


async def load(target: Target, concurrency: int, requests: int) -> Result:
    host, port = target.url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {target.key}"}
    counter = iter(range(requests))
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        connection = Connection(host, int(port))
        try:
            for i in counter:
                body = target.body(i)
                started = time.perf_counter()
                status, payload = await connection.post(target.path, body, headers)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
                    if errors == 1:
                        print(f"  {target.name}: HTTP {status}: {payload[:300]!r}", file=sys.stderr)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(concurrency, requests, time.perf_counter() - started, latencies, errors)


def pool(a: Result, b: Result) -> Result:
    """Two runs of one target at one concurrency as one."""
    return Result(
        a.concurrency,
        a.requests + b.requests,
        a.seconds + b.seconds,
        a.latencies + b.latencies,
        a.errors + b.errors,
    )


def measure(target: Target, scale: float) -> list[Result]:
    asyncio.run(load(target, 4, WARMUP))
    results = []
    for concurrency, requests in LEVELS:
        result = asyncio.run(load(target, concurrency, max(concurrency, int(requests * scale))))
        print(
            f"  {target.name:24} c={concurrency:<3} p50 {result.percentile(0.5):7.2f} ms  "
            f"p99 {result.percentile(0.99):7.2f} ms  {result.rps:7.0f} req/s"
            + (f"  ({result.errors} errors)" if result.errors else ""),
            file=sys.stderr,
        )
        results.append(result)
    return results


# -- the servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def ensure_litellm() -> Path:
    python = LITELLM_VENV / "bin" / "python"
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        print(f"installing litellm[proxy] into {LITELLM_VENV} ...", file=sys.stderr)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "litellm[proxy]"], check=True)
    return litellm


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def orkestra_config(upstream: str, tmp: Path) -> Path:
    path = tmp / "orkestra.toml"
    path.write_text(f"""
[routing]
max_retries = 0

[usage]
database_url = "sqlite:///{tmp / "usage.db"}"

[providers.openai]
api_key_env = "BENCH_UPSTREAM_KEY"
base_url = "{upstream}/v1"

[[keys]]
name = "bench"
sha256 = "{hashlib.sha256(CLIENT_KEY.encode()).hexdigest()}"
""")
    return path


def litellm_config(upstream: str, tmp: Path) -> Path:
    path = tmp / "litellm.yaml"
    path.write_text(f"""
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}/v1
      api_key: {UPSTREAM_KEY}
      max_retries: 0
""")
    return path


# -- report ----------------------------------------------------------------------------------


def scaling(runs: dict[str, list[Result]], counts: list[int]) -> str:
    """Each worker count's req/s over the first count's, per target and concurrency."""
    lines = [
        "| target | concurrency | "
        + " | ".join(f"{n} worker{'s' * (n > 1)} req/s" for n in counts)
        + " | "
        + " | ".join(f"{n}/{counts[0]}" for n in counts[1:])
        + " |",
        "|---|---:|" + "---:|" * (2 * len(counts) - 1),
    ]
    for base_name in ("orkestra gpt-4o-mini", "orkestra/openai"):
        per_count = [runs[f"{base_name} ({n}w)"] for n in counts]
        for level, results in enumerate(zip(*per_count, strict=True)):
            rates = [r.rps for r in results]
            lines.append(
                f"| {base_name} | {LEVELS[level][0]} | "
                + " | ".join(f"{rate:.0f}" for rate in rates)
                + " | "
                + " | ".join(f"{rate / rates[0]:.2f}×" for rate in rates[1:])
                + " |"
            )
    return "\n".join(lines)


def report(runs: dict[str, list[Result]]) -> str:
    direct = {r.concurrency: r for r in runs["direct"]}
    lines = [
        "| target | concurrency | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, results in runs.items():
        for r in results:
            base = direct[r.concurrency]
            added = (
                ("—", "—")
                if name == "direct"
                else (
                    f"{r.percentile(0.5) - base.percentile(0.5):.2f}",
                    f"{r.percentile(0.99) - base.percentile(0.99):.2f}",
                )
            )
            lines.append(
                f"| {name} | {r.concurrency} | {r.percentile(0.5):.2f} | "
                f"{r.percentile(0.99):.2f} | {added[0]} | {added[1]} | {r.rps:.0f} |"
                + (f" ({r.errors} errors)" if r.errors else "")
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-litellm", action="store_true", help="measure orkestra only")
    parser.add_argument("--requests", type=float, default=1.0, help="scale the request counts")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the orkestra targets this many times, in turn",
    )
    parser.add_argument("--cascade", action="store_true", help="also measure orkestra/cascade")
    parser.add_argument(
        "--workers",
        default="1",
        help="orkestra serve --workers, comma-separated counts to compare (e.g. 1,2)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    runs: dict[str, list[Result]] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orkestra-bench-")))
        env = base_env()
        up_port, lite_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        fake = stack.enter_context(
            process(
                [sys.executable, "-m", "orkestra.testing", "--port", str(up_port)],
                env,
                tmp / "fake.log",
            )
        )
        # The fake answers any GET it does not know with an OpenAI-style error: it is up.
        wait_for_any(f"{upstream}/v1/models", fake, tmp / "fake.log")

        ork_env = {**env, "ORKESTRA_HOME": str(tmp), "BENCH_UPSTREAM_KEY": UPSTREAM_KEY}
        ork_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        config = orkestra_config(upstream, tmp)

        print(f"{os.cpu_count()} CPUs; each line: one target at one concurrency", file=sys.stderr)
        runs["direct"] = measure(
            Target("direct", upstream, "/v1/chat/completions", "gpt-4o-mini", UPSTREAM_KEY),
            args.requests,
        )
        # Every worker count's server runs from the start (an idle one takes next to no CPU);
        # with --rounds R they are measured in turn R times, so that the machine's load drifts
        # over all of them alike, and each target's rounds are pooled.
        orkestra_targets: list[list[Target]] = []
        for count in counts:
            ork_port = free_port()
            command = [sys.executable, "-m", "orkestra.server", "--config", str(config)]
            command += ["--port", str(ork_port), "--workers", str(count)]
            log = tmp / f"orkestra-{count}.log"
            ork = stack.enter_context(process(command, ork_env, log))
            orkestra_url = f"http://127.0.0.1:{ork_port}"
            wait_for(f"{orkestra_url}/healthz", ork, log)
            suffix = f" ({count}w)" if len(counts) > 1 else ""
            orkestra_targets.append(
                [
                    Target(name + suffix, orkestra_url, "/v1/chat/completions", model, CLIENT_KEY)
                    for name, model in (
                        ("orkestra gpt-4o-mini", "gpt-4o-mini"),
                        ("orkestra/openai", "orkestra/openai"),
                        *((("orkestra/cascade", "orkestra/cascade"),) if args.cascade else ()),
                    )
                ]
            )
        for _ in range(args.rounds):
            for group in orkestra_targets:
                for target in group:
                    results = measure(target, args.requests)
                    earlier = runs.get(target.name)
                    runs[target.name] = (
                        results
                        if earlier is None
                        else [pool(a, b) for a, b in zip(earlier, results, strict=True)]
                    )

        targets = []
        version = None
        if not args.skip_litellm:
            litellm = ensure_litellm()
            version = litellm_version()
            master = "sk-" + secrets.token_hex(24)
            lite_env = {
                **env,
                "LITELLM_MASTER_KEY": master,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_LOG": "ERROR",
            }
            lite_env.pop("DATABASE_URL", None)
            lite = stack.enter_context(
                process(
                    [
                        str(litellm),
                        "--config",
                        str(litellm_config(upstream, tmp)),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(lite_port),
                        "--num_workers",
                        "1",
                    ],
                    lite_env,
                    tmp / "litellm.log",
                )
            )
            lite_url = f"http://127.0.0.1:{lite_port}"
            wait_for(f"{lite_url}/health/liveliness", lite, tmp / "litellm.log")
            targets.append(
                Target(
                    "litellm gpt-4o-mini", lite_url, "/v1/chat/completions", "gpt-4o-mini", master
                )
            )

        for target in targets:
            runs[target.name] = measure(target, args.requests)

    print(
        f"\norkestra serve vs LiteLLM {version or '(skipped)'} on the fake upstream, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n"
    )
    print(report(runs))
    if len(counts) > 1:
        print(f"\norkestra serve --workers {args.workers}: req/s against {counts[0]} worker(s)\n")
        print(scaling(runs, counts))
    return 0


def wait_for_any(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``url`` answers at all (any HTTP status)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


if __name__ == "__main__":
    sys.exit(main())
