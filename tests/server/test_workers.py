"""``python -m orkestra.server --workers 2``: two processes on one port, whose metrics add up
whichever worker answers the scrape, and whose calls all reach the one usage log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from proxy_helpers import (
    CLIENT_KEY,
    OTHER_KEY,
    LiveServer,
    chat_body,
    config_toml,
    server_env,
    start_server,
)
from test_metrics import samples, value

from orkestra.testing import FakeProviderServer
from orkestra.usage import SQLiteUsageLog, key_id_for

pytestmark = pytest.mark.slow

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
CHAT = "/v1/chat/completions"
REQUESTS = 40


def workers_of(pid: int) -> list[int]:
    """The worker processes of the server ``pid`` (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.fixture
def two_workers(
    upstream: FakeProviderServer, tmp_path: Path
) -> Iterator[tuple[LiveServer, list[int]]]:
    db = tmp_path / "usage.db"
    config = tmp_path / "orkestra.toml"
    config.write_text(config_toml(upstream, db))
    server = start_server(
        config, server_env(tmp_path), tmp_path / "server.log", db, args=("--workers", "2")
    )
    try:
        deadline = time.monotonic() + 30
        while len(workers := workers_of(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server, workers
    finally:
        server.stop()


def test_two_workers_count_every_request_once_and_log_every_call(
    two_workers: tuple[LiveServer, list[int]], upstream: FakeProviderServer
) -> None:
    upstream.clear()
    server, workers = two_workers
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux's /proc to find the worker processes")
    assert len(workers) == 2, server.output()
    metrics_dir = Path(environ_of(workers[0])["PROMETHEUS_MULTIPROC_DIR"])

    def ask(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            body = chat_body(f"Say {i}", model="gpt-4o-mini")
            return http.post(CHAT, json=body, headers=AUTH).status_code

    # Which worker accepts a connection is the kernel's race between them; a worker quick to
    # get back to its accept() may win a whole batch. More batches, until both have answered.
    expected = {f"counter_{pid}.db" for pid in workers}
    sent = 0
    while sent < 5 * REQUESTS:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(ask, range(sent, sent + REQUESTS)))
        assert statuses == [200] * REQUESTS
        sent += REQUESTS
        if {p.name for p in metrics_dir.glob("counter_*.db")} >= expected:
            break
    with httpx.Client(base_url=server.url) as http:
        broke = http.post(CHAT, json=chat_body(), headers={"authorization": f"Bearer {OTHER_KEY}"})
        assert broke.status_code == 429
        # Whichever worker answers, the counts are every worker's together.
        for _ in range(6):
            found = samples(http.get("/metrics", headers=AUTH).text)
            ok = {"route": CHAT, "status": "200", "key_id": key_id_for(CLIENT_KEY)}
            assert value(found, "orkestra_requests_total", **ok) == sent
            assert value(found, "orkestra_upstream_attempts_total", outcome="ok") == sent
            assert value(found, "orkestra_requests_total", status="429") == 1
            assert value(found, "orkestra_build_info") == 1  # one series, not one per worker
            remaining = key_id_for(OTHER_KEY)
            assert value(found, "orkestra_key_budget_remaining_usd", key_id=remaining) == 0
    # Both workers answered calls: each wrote counters of its own.
    served = {p.name for p in metrics_dir.glob("counter_*.db")}
    assert served == expected, server.output()

    log = SQLiteUsageLog(server.db)
    try:
        deadline = time.monotonic() + 20
        while len(log.query()) < sent + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        records = log.query()
    finally:
        log.close()
    assert sorted(r.status for r in records) == ["BudgetExceededError"] + ["ok"] * sent

    server.stop()
    assert not metrics_dir.exists()  # this run's metrics leave with it
