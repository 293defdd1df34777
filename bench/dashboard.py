"""What a dashboard request costs on a big usage log: time and peak memory, this tree vs another.

    .venv/bin/python bench/dashboard.py                       # 300,000 calls in SQLite
    .venv/bin/python bench/dashboard.py --before 68fe230      # side by side with that commit
    .venv/bin/python bench/dashboard.py --postgres --before 68fe230   # a throwaway PostgreSQL

Fills a usage log with ``--rows`` plausible calls spread over the last ``--hours`` hours (so the
1 h window holds a share of them, and 24 h and "all" hold every one), then asks the dashboard's
API for each page request the browser makes. Every request runs in a fresh process (the app
over the log, Starlette's TestClient), after one warm-up request: its wall time (best and median
of ``--repeat``) and its peak resident memory above what the process held before it (the
kernel's high-water mark, reset just before). ``--before REV`` runs the same requests with the
``src/`` of that git revision (``git archive``) on the same database, and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

PATHS = (
    "/api/summary?since=1h",
    "/api/summary?since=24h",
    "/api/summary?since=all",
    "/api/calls?limit=100",
)

# Runs in a fresh process: argv = url, path, repeat. Prints one JSON line.
PROBE = r"""
import json, resource, sys, time
from starlette.testclient import TestClient
import orkestra.dashboard, orkestra.usage
url, path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # MB
    raise KeyError(field)

log = orkestra.usage.open_usage_log(url)
app = orkestra.dashboard.create_app(log)
times = []
with TestClient(app, base_url="http://127.0.0.1") as client:
    assert client.get("/api/calls?limit=1").status_code == 200  # imports, connections
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    before = status("VmRSS")
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    peak = status("VmHWM")
body = response.json()
calls = body["totals"]["calls"] if "totals" in body else len(body["calls"])
print(json.dumps({"times": times, "peak_mb": peak - before, "rss_mb": before,
                  "calls": calls, "module": orkestra.__file__}))
log.close()
"""

MODELS = [
    ("openai", "gpt-4o-mini", "budget"),
    ("openai", "gpt-4.1", "balanced"),
    ("openai", "o3", "premium"),
    ("anthropic", "claude-haiku-4-5", "budget"),
    ("anthropic", "claude-sonnet-4-6", "balanced"),
    ("anthropic", "claude-opus-4-6", "premium"),
    ("google", "gemini-2.5-flash-lite", "budget"),
    ("google", "gemini-3-flash-preview", "balanced"),
    ("google", "gemini-3.1-pro-preview", "premium"),
]


def fill(url: str, rows: int, hours: float, seed: int) -> None:
    from orkestra.usage import UsageRecord, open_usage_log

    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    span = timedelta(hours=hours).total_seconds()
    log = open_usage_log(url, store_prompts=True)
    started = time.perf_counter()
    batch: list[UsageRecord] = []
    for i in range(rows):
        provider, model, tier = rng.choice(MODELS)
        failed = rng.random() < 0.05
        attempts = 2 if rng.random() < 0.1 else 1
        batch.append(
            UsageRecord(
                provider=provider,
                model=model,
                tier=tier,
                strategy=rng.choice([None, "cheapest", "balanced"]),
                ts=now - timedelta(seconds=span * (i + rng.random()) / rows),
                input_tokens=rng.randint(20, 4000),
                output_tokens=rng.randint(10, 1500),
                cost=rng.random() / 100,
                base_model="o3",
                base_cost=rng.random() / 20,
                latency_ms=rng.uniform(200, 4000),
                routing_ms=rng.uniform(0.2, 1.5),
                scores={"budget": rng.random(), "balanced": rng.random(), "premium": rng.random()},
                knob=rng.choice([0.8823, 0.8823, 0.8823, 0.5, None]),
                attempts=attempts,
                attempts_detail=[{"provider": provider, "model": model, "ok": True}] * attempts,
                status="RateLimitError" if failed else "ok",
                error="HTTP 429: slow down" if failed else None,
                key_id=rng.choice(["a1b2c3d4e5f6", "0f9e8d7c6b5a", None]),
                prompt=rng.choice(["What is the capital of Japan?", "Write a haiku " * 20]),
                source=rng.choice(["library", "proxy"]),
            )
        )
        if len(batch) == 10_000 or i == rows - 1:
            log._write(batch)  # in bulk, as the writer thread does (a queue would push back)
            batch = []
    log.close()
    print(f"filled {rows:,} calls over {hours} h in {time.perf_counter() - started:.1f} s")


def export_src(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def probe(url: str, path: str, repeat: int, src: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, url, path, str(repeat)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    if not str(result["module"]).startswith(str(src)):
        raise SystemExit(f"the probe imported {result['module']}, not the tree under {src}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--hours", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also run the src/ of this git revision")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT / "src"}
        if args.before:
            trees = {f"{args.before}": export_src(args.before, Path(tmp) / "before"), **trees}
        if args.postgres:
            from _postgres import throwaway_postgres

            with throwaway_postgres() as url:
                run(url, trees, args)
        else:
            run(f"sqlite:///{tmp}/usage.db", trees, args)


def run(url: str, trees: dict[str, Path], args: argparse.Namespace) -> None:
    fill(url, args.rows, args.hours, args.seed)
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{backend}, {args.rows:,} calls; best / median of {args.repeat}; peak RSS above start")
    results: dict[str, dict[str, dict[str, object]]] = {}
    for path in PATHS:
        for name, src in trees.items():
            results.setdefault(path, {})[name] = probe(url, path, args.repeat, src)
    names = list(trees)
    header = f"{'request':26}" + "".join(f"{n:>34}" for n in names)
    if len(names) == 2:
        header += f"{'time ratio':>12}{'RSS ratio':>11}"
    print(header)
    for path, by_tree in results.items():
        line = f"{path:26}"
        for name in names:
            r = by_tree[name]
            times = r["times"]
            assert isinstance(times, list)
            line += (
                f"{min(times):9.3f} s /{statistics.median(times):7.3f} s "
                f"{float(r['peak_mb']):7.1f} MB ({r['calls']})"  # type: ignore[arg-type]
            )
        if len(names) == 2:
            a, b = (by_tree[n] for n in names)
            ratio = statistics.median(a["times"]) / statistics.median(b["times"])  # type: ignore[arg-type]
            rss = max(float(a["peak_mb"]), 0.1) / max(float(b["peak_mb"]), 0.1)  # type: ignore[arg-type]
            line += f"{ratio:11.1f}x{rss:10.1f}x"
        print(line)


if __name__ == "__main__":
    main()
