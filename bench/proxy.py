"""What the proxy adds: latency over calling the upstream directly, requests per second, and the
CPU the proxy's processes spend per request.

    .venv/bin/python bench/proxy.py                     # orkestra and LiteLLM, side by side
    .venv/bin/python bench/proxy.py --skip-litellm      # orkestra only
    .venv/bin/python bench/proxy.py --before /tmp/main  # and orkestra from another source tree
    .venv/bin/python bench/proxy.py --requests 0.5      # half the requests (quicker, noisier)
    .venv/bin/python bench/proxy.py --skip-litellm --workers 1,2 --rounds 3   # --workers N
    .venv/bin/python bench/proxy.py --skip-litellm --cascade   # + orkestra/cascade

Everything runs on 127.0.0.1, each in its own process: the fake provider server
(``python -m orkestra.testing``), ``orkestra serve`` (``python -m orkestra.server``, a client key,
the usage log on SQLite in a temp dir) in front of its OpenAI endpoint, and LiteLLM's proxy (one
worker, a master key, no database) in front of the same endpoint. LiteLLM is a peer, not a
dependency: it is installed into ``--litellm-venv`` (default ``.cache/litellm-venv``) with
``pip install "litellm[proxy]"`` the first time. ``--before TREE`` runs a second
``orkestra serve`` from the source tree ``TREE`` (``PYTHONPATH=TREE/src``, same venv): before
and after a change, in one run.

Every target gets the same chat requests (eight prompts in turn, ``max_tokens`` 64), streaming
(``stream: true``, read to ``data: [DONE]``) and not, through a small keep-alive HTTP/1.1 client
on asyncio so the load generator costs little:

- ``direct``: the fake upstream itself (the baseline);
- ``<server> gpt-4o-mini``: pass-through to one model (auth, validation, usage log, pricing);
- ``<server> orkestra/openai``: the same plus the routing decision (embedding + KNN);
- ``litellm gpt-4o-mini``: LiteLLM's proxy, its model fixed.

``--cascade`` adds ``<server> orkestra/cascade``: the same requests as a cascade (gpt-4o-mini
first, its answer checked by the heuristic verifier, the next tier up when the check fails: with
the fake's echoing answers, the one maths prompt of the eight climbs every time).

For each mode and concurrency (``--levels``, default 1, 16, 64, 256) the targets are measured in
turn, one after the other, so that the machine's load drifts over all of them alike; ``--rounds
R`` does it R times and pools each target's rounds. Reported: p50 and p99 latency (a stream: to
its last byte), the latency added over ``direct`` at the same concurrency, requests per second,
and the CPU seconds the target's processes (the server and its workers) spent per request, read
from ``/proc`` before and after each measurement; ``req/CPU-s`` is its inverse — the requests one
fully busy core would serve, the fair comparison on a machine whose cores are shared.

``--workers 1,2`` runs one orkestra server per worker count and ends with each count's requests
per second as a multiple of the first count's.
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
from dataclasses import dataclass, field
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
REQUESTS = {1: 300, 16: 1000, 64: 1500, 256: 2000}  # per concurrency, before --requests
WARMUP = 60
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------


class Connection:
    """One keep-alive connection: POST, read the status and the whole body (chunked or not)."""

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
    model: str
    key: str
    pids: list[int] = field(default_factory=list)
    """The processes whose CPU time is the target's (with their descendants)."""
    path: str = "/v1/chat/completions"

    def body(self, i: int, stream: bool) -> bytes:
        message = {"role": "user", "content": PROMPTS[i % len(PROMPTS)]}
        request = {"model": self.model, "messages": [message], "max_tokens": 64}
        if stream:
            request["stream"] = True
        return json.dumps(request).encode()


@dataclass
class Result:
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu: float  # CPU seconds of the target's processes
    load: list[float] = field(default_factory=list)  # 1-minute load average at each measurement

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per request."""
        return self.cpu / self.requests * 1000.0

    @property
    def per_cpu_second(self) -> float:
        """Requests per CPU second: what one fully busy core would serve."""
        return self.requests / self.cpu if self.cpu > 0 else float("inf")

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0

    def __add__(self, other: Result) -> Result:
        return Result(
            self.concurrency,
            self.requests + other.requests,
            self.seconds + other.seconds,
            self.latencies + other.latencies,
            self.errors + other.errors,
            self.cpu + other.cpu,
            self.load + other.load,
        )


# -- CPU time of a process tree, from /proc --------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def descendants(roots: list[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU seconds of ``roots`` and their live descendants."""
    total = 0
    for pid in descendants(roots):
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


# -- load ------------------------------------------------------------------------------------


async def load(target: Target, concurrency: int, requests: int, stream: bool) -> Result:
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
                body = target.body(i, stream)
                started = time.perf_counter()
                try:
                    status, payload = await connection.post(target.path, body, headers)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, payload = 0, repr(exc).encode()
                    await connection.close()
                latencies.append(time.perf_counter() - started)
                complete = not stream or payload.rstrip().endswith(b"data: [DONE]")
                if status != 200 or not complete:
                    errors += 1
                    if errors == 1:
                        shown = payload[-300:]
                        print(f"  {target.name}: HTTP {status}: {shown!r}", file=sys.stderr)
        finally:
            await connection.close()

    cpu_before = cpu_seconds(target.pids)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(target.pids) - cpu_before
    return Result(concurrency, requests, seconds, latencies, errors, cpu, [os.getloadavg()[0]])


def measure(target: Target, concurrency: int, requests: int, stream: bool) -> Result:
    result = asyncio.run(load(target, concurrency, requests, stream))
    print(
        f"  {'stream' if stream else 'plain ':6} {target.name:30} c={concurrency:<3} "
        f"p50 {result.percentile(0.5):8.2f} ms  p99 {result.percentile(0.99):8.2f} ms  "
        f"{result.rps:6.0f} req/s  {result.cpu_ms:6.2f} CPU ms/req  load {result.load[0]:.1f}"
        + (f"  ({result.errors} errors)" if result.errors else ""),
        file=sys.stderr,
    )
    return result


# -- the servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    """Wait until ``url`` answers at all (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
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
    env.pop("PYTHONPATH", None)
    return env


def ensure_litellm(venv: Path) -> Path:
    python = venv / "bin" / "python"
    litellm = venv / "bin" / "litellm"
    if not litellm.exists():
        print(f"installing litellm[proxy] into {venv} ...", file=sys.stderr)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "litellm[proxy]"], check=True)
    return litellm


VERSION_OF_LITELLM = "import importlib.metadata as m; print(m.version('litellm'))"


def litellm_version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", VERSION_OF_LITELLM],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def orkestra_config(upstream: str, tmp: Path, name: str) -> Path:
    path = tmp / f"orkestra-{name}.toml"
    path.write_text(f"""
[routing]
max_retries = 0

[usage]
database_url = "sqlite:///{tmp / f"usage-{name}.db"}"

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

Runs = dict[tuple[str, bool, int], Result]  # (target, stream, concurrency) -> pooled result


def report(runs: Runs, names: list[str], levels: list[int], stream: bool) -> str:
    lines = [
        "| target | c | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s "
        "| CPU ms/req | req/CPU-s | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for c in levels:
            r = runs.get((name, stream, c))
            if r is None:
                continue
            base = runs[("direct", stream, c)]
            added = (
                ("—", "—")
                if name == "direct"
                else (
                    f"{r.percentile(0.5) - base.percentile(0.5):.2f}",
                    f"{r.percentile(0.99) - base.percentile(0.99):.2f}",
                )
            )
            load = "–".join(f"{x:.0f}" for x in (min(r.load), max(r.load)))
            lines.append(
                f"| {name} | {c} | {r.percentile(0.5):.2f} | {r.percentile(0.99):.2f} | "
                f"{added[0]} | {added[1]} | {r.rps:.0f} | {r.cpu_ms:.2f} | "
                f"{r.per_cpu_second:.0f} | {load} |" + (f" ({r.errors} errors)" if r.errors else "")
            )
    return "\n".join(lines)


def ratios(runs: Runs, pairs: list[tuple[str, str]], levels: list[int]) -> str:
    """``a`` against ``b``: req/s and req/CPU-s as multiples, per mode and concurrency."""
    lines = [
        "| a / b | mode | c | req/s | req/CPU-s | p50 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for a, b in pairs:
        for stream in (False, True):
            for c in levels:
                ra, rb = runs.get((a, stream, c)), runs.get((b, stream, c))
                if ra is None or rb is None:
                    continue
                lines.append(
                    f"| {a} / {b} | {'stream' if stream else 'plain'} | {c} | "
                    f"{ra.rps / rb.rps:.2f}× | {ra.per_cpu_second / rb.per_cpu_second:.2f}× | "
                    f"{ra.percentile(0.5) / rb.percentile(0.5):.2f}× |"
                )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-litellm", action="store_true", help="measure orkestra only")
    parser.add_argument("--litellm-venv", type=Path, default=LITELLM_VENV)
    parser.add_argument(
        "--before", type=Path, help="also serve orkestra from this source tree (its src/)"
    )
    parser.add_argument("--requests", type=float, default=1.0, help="scale the request counts")
    parser.add_argument("--levels", default="1,16,64,256", help="concurrencies to measure")
    parser.add_argument("--modes", default="plain,stream", help="plain, stream or both")
    parser.add_argument("--rounds", type=int, default=1, help="measure every target R times")
    parser.add_argument(
        "--workers",
        default="1",
        help="orkestra serve --workers, comma-separated counts to compare (e.g. 1,2)",
    )
    parser.add_argument("--routed", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--cascade", action="store_true", help="also measure orkestra/cascade")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    levels = [int(c) for c in args.levels.split(",")]
    modes = [m == "stream" for m in args.modes.split(",")]

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orkestra-bench-")))
        env = base_env()
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        fake_log = tmp / "fake.log"
        fake = stack.enter_context(
            process(
                [sys.executable, "-m", "orkestra.testing", "--port", str(up_port)], env, fake_log
            )
        )
        wait_for(f"{upstream}/v1/models", fake, fake_log)
        targets = [Target("direct", upstream, "gpt-4o-mini", UPSTREAM_KEY, [fake.pid])]

        servers: list[tuple[str, Path | None, int]] = []
        if args.before is not None:
            servers += [("before", args.before.resolve() / "src", n) for n in counts]
        servers += [("orkestra", None, n) for n in counts]
        for label, tree, count in servers:
            name = label + (f" {count}w" if len(counts) > 1 else "")
            port = free_port()
            ork_env = {**env, "ORKESTRA_HOME": str(tmp), "BENCH_UPSTREAM_KEY": UPSTREAM_KEY}
            ork_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            if tree is not None:
                ork_env["PYTHONPATH"] = str(tree)
            config = orkestra_config(upstream, tmp, name.replace(" ", "-"))
            command = [sys.executable, "-m", "orkestra.server", "--config", str(config)]
            command += ["--port", str(port), "--workers", str(count)]
            log = tmp / f"{name.replace(' ', '-')}.log"
            server = stack.enter_context(process(command, ork_env, log))
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/healthz", server, log)
            models = [("gpt-4o-mini", "gpt-4o-mini")]
            if args.routed:
                models.append(("orkestra/openai", "orkestra/openai"))
            if args.cascade:
                models.append(("orkestra/cascade", "orkestra/cascade"))
            targets += [
                Target(f"{name} {shown}", url, model, CLIENT_KEY, [server.pid])
                for shown, model in models
            ]

        version = None
        if not args.skip_litellm:
            litellm = ensure_litellm(args.litellm_venv)
            version = litellm_version(args.litellm_venv)
            master = "sk-" + secrets.token_hex(24)
            lite_env = {
                **env,
                "LITELLM_MASTER_KEY": master,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_LOG": "ERROR",
            }
            lite_env.pop("DATABASE_URL", None)
            lite_port = free_port()
            lite_command = [str(litellm), "--config", str(litellm_config(upstream, tmp))]
            lite_command += ["--host", "127.0.0.1", "--port", str(lite_port), "--num_workers", "1"]
            lite = stack.enter_context(process(lite_command, lite_env, tmp / "litellm.log"))
            lite_url = f"http://127.0.0.1:{lite_port}"
            wait_for(f"{lite_url}/health/liveliness", lite, tmp / "litellm.log")
            targets.append(
                Target("litellm gpt-4o-mini", lite_url, "gpt-4o-mini", master, [lite.pid])
            )

        print(f"{os.cpu_count()} CPUs, load {os.getloadavg()}; warming up", file=sys.stderr)
        for target in targets:
            for stream in modes:
                asyncio.run(load(target, 4, WARMUP, stream))

        runs: Runs = {}
        for _ in range(args.rounds):
            for stream in modes:
                for c in levels:
                    requests = max(c, int(REQUESTS.get(c, 1000) * args.requests))
                    for target in targets:
                        result = measure(target, c, requests, stream)
                        key = (target.name, stream, c)
                        runs[key] = runs[key] + result if key in runs else result

    names = [t.name for t in targets]
    print(
        f"\nthe proxies on the fake upstream: {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, LiteLLM {version or '(skipped)'}, {args.rounds} round(s)"
    )
    for stream in modes:
        print(f"\n{'streaming' if stream else 'non-streaming'}\n")
        print(report(runs, names, levels, stream))
    pairs: list[tuple[str, str]] = []
    for shown in ("gpt-4o-mini", "orkestra/openai", "orkestra/cascade"):
        ours = [n for n in names if n.startswith("orkestra") and n.endswith(" " + shown)]
        before = [n for n in names if n.startswith("before") and n.endswith(" " + shown)]
        pairs += list(zip(ours, before, strict=False))
        if not args.skip_litellm:
            pairs += [(n, "litellm gpt-4o-mini") for n in ours]
    if len(counts) > 1:
        for shown in ("gpt-4o-mini", "orkestra/openai"):
            many = [n for n in names if n.startswith("orkestra ") and n.endswith(" " + shown)]
            pairs += [(n, many[0]) for n in many[1:]]
    if pairs:
        print("\nratios (a over b; req/CPU-s: requests per CPU second of the proxy processes)\n")
        print(ratios(runs, pairs, levels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
