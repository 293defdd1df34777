"""Does a big ``response_format`` schema stall the proxy? ``/healthz`` latency meanwhile.

    .venv/bin/python bench/schema_stall.py

A real ``python -m orkestra.server`` process (no client keys, the fake provider upstream) gets
chat requests whose ``response_format`` carries a JSON Schema of N properties, while another
connection asks ``GET /healthz`` every 20 ms. Printed per case: how the schema requests were
answered (status, seconds) and the worst and median ``/healthz`` latency while they ran.

- ``3 MB``: one schema of 40,000 properties (what the attack run sent);
- ``8 × 60 KB``: eight schemas of 850 properties at once (each under the documented limit).
"""

from __future__ import annotations

import json
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


def schema(properties: int) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {
            f"field_{i}": {"type": "string", "description": "d" * 20} for i in range(properties)
        },
    }


def body(properties: int) -> bytes:
    return json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Fill the form"}],
            "max_tokens": 16,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "form", "schema": schema(properties)},
            },
        }
    ).encode()


def run_case(url: str, payload: bytes, copies: int) -> tuple[list[str], float, float]:
    results: list[str] = []
    latencies: list[float] = []
    done = threading.Event()

    def send() -> None:
        started = time.perf_counter()
        response = httpx.post(
            f"{url}/v1/chat/completions",
            content=payload,
            headers={"content-type": "application/json"},
            timeout=600,
        )
        results.append(f"{response.status_code} in {time.perf_counter() - started:.2f} s")

    def poll() -> None:
        with httpx.Client(timeout=600) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.get(f"{url}/healthz")
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    senders = [threading.Thread(target=send) for _ in range(copies)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    poller.join()
    return results, max(latencies), statistics.median(latencies)


def main() -> None:
    with FakeProviderServer(api_key=UPSTREAM_KEY) as upstream, tempfile.TemporaryDirectory() as d:
        home = Path(d)
        config = home / "orkestra.toml"
        config.write_text(keyless_openai_toml(upstream))
        env = server_env(home)
        server = start_server(config, env, home / "server.log", home / "unused.db")
        try:
            print("| case | schema requests answered | /healthz worst | /healthz median |")
            print("|---|---|---:|---:|")
            for name, properties, copies in (("3 MB", 40_000, 1), ("8 × 60 KB", 850, 8)):
                payload = body(properties)
                results, worst, median = run_case(server.url, payload, copies)
                size = f"{len(payload) / 1024:,.0f} KB"
                print(
                    f"| {name} ({size} body) | {', '.join(sorted(results))} | "
                    f"{worst:,.0f} ms | {median:,.1f} ms |"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
