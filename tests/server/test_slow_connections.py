"""Slow and idle connections cannot exhaust the proxy (issue 12, D4).

Before: uvicorn waits for a request's head as long as the client likes and takes every
connection it is offered, so 20,000 connections that each trickle out a header exhausted the
server's descriptors, and every failed accept() logged a traceback (2.9 million lines in the
attack run; 626,694 in 40 s in ``bench/slow_connections.py`` at a 1,024-descriptor limit).

Against a real server process with small limits (``max_connections = 40``,
``header_timeout = 1``, ``body_timeout = 2``), a few hundred slow sockets.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from proxy_helpers import UPSTREAM_KEY, LiveServer, start_server

from orkestra.testing import FakeProviderServer

pytestmark = pytest.mark.slow

MAX_CONNECTIONS = 40
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture(scope="module")
def guarded(
    upstream: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("guarded-proxy")
    config = home / "orkestra.toml"
    config.write_text(
        f"""
[server]
port = 0
max_connections = {MAX_CONNECTIONS}
header_timeout = 1
body_timeout = 2
[usage]
enabled = false
[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(ORKESTRA_HOME=str(home), UPSTREAM_OPENAI_KEY=UPSTREAM_KEY)
    server = start_server(config, env, home / "server.log", home / "unused.db")
    yield server
    server.stop()


def port_of(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def descriptors(server: LiveServer) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def open_slow(server: LiveServer, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
        sock.sendall(SLOW_HEAD)
        sockets.append(sock)
    return sockets


def hung_up(sock: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing ``sock`` within ``within`` s (None: still open)."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    except OSError:
        pass
    return received


def health(server: LiveServer) -> int:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_a_request_head_that_never_ends_is_cut_off(guarded: LiveServer) -> None:
    sockets = open_slow(guarded, 20)
    try:
        started = time.monotonic()
        answers = [hung_up(sock, within=5) for sock in sockets]
        assert all(a is not None for a in answers), "slow heads must be hung up on"
        assert time.monotonic() - started < 5
        assert all(a is not None and a.startswith(b"HTTP/1.1 408") for a in answers)
    finally:
        for sock in sockets:
            sock.close()
    assert health(guarded) == 200


def test_an_idle_connection_is_closed_too(guarded: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(guarded)), timeout=5) as sock:
        assert hung_up(sock, within=4) is not None


def test_a_body_that_never_ends_is_cut_off(guarded: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", port_of(guarded)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model"'
        )
        answer = hung_up(sock, within=6)
    assert answer is not None and answer.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in answer


def test_connections_beyond_the_cap_are_refused_and_descriptors_stay_bounded(
    guarded: LiveServer,
) -> None:
    baseline = descriptors(guarded)
    lines_before = len(guarded.output().splitlines())
    sockets: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", port_of(guarded)), timeout=5)
            with contextlib.suppress(OSError):
                sock.sendall(SLOW_HEAD)
            sockets.append(sock)
        # Connections accepted a moment ago are being answered and closed: within a moment the
        # server holds no more than the cap.
        deadline = time.monotonic() + 3
        while (peak := descriptors(guarded)) > baseline + MAX_CONNECTIONS + 5:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # Each one is answered: 503 at once beyond the cap, or 408 once its head is late (a
        # connection still in the listen queue gets whichever applies when it is accepted).
        answers = [hung_up(sock, within=10) or b"" for sock in sockets]
        refused = sum(a.startswith(b"HTTP/1.1 503") for a in answers)
        late = sum(a.startswith(b"HTTP/1.1 408") for a in answers)
        assert peak <= baseline + MAX_CONNECTIONS + 5, f"{peak} descriptors open"
        assert refused + late == 300
        assert refused >= 150 and late >= MAX_CONNECTIONS
    finally:
        for sock in sockets:
            sock.close()
    # The slow ones are cut off by the header timeout; the server serves again.
    deadline = time.monotonic() + 10
    while health(guarded) != 200:
        assert time.monotonic() < deadline, "the server did not recover"
        time.sleep(0.2)
    logged = guarded.output().splitlines()[lines_before:]
    assert len(logged) <= 10, "\n".join(logged[:20])  # a line a minute per kind, with a count
    assert guarded.alive()


def test_the_cap_fits_the_descriptor_limit() -> None:
    import resource

    from orkestra.server.protocol import Limits, fit_descriptors

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        fitted, note = fit_descriptors(Limits(1000, 10.0), 256, raise_limit=False)
        assert fitted.max_connections < 1000 and note is not None
        assert "ulimit -n" in note and fitted.header_timeout == 10.0
        if hard == resource.RLIM_INFINITY or hard >= 2000:
            raised, note = fit_descriptors(Limits(1000, 10.0), 256)
            assert raised.max_connections == 1000 and note is None
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 1024
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_flood_of_one_warning_logs_a_line_a_minute_with_a_count() -> None:
    import logging

    from orkestra.server.logs import ThrottleFilter

    clock = [0.0]
    throttle = ThrottleFilter()
    throttle.throttle._clock = lambda: clock[0]

    def record(level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", level, "x", 1, "Invalid HTTP request.", (), None)

    passed = [throttle.filter(record()) for _ in range(1000)]
    assert passed.count(True) == 1
    assert all(throttle.filter(record(logging.INFO)) for _ in range(5))  # calls are not touched
    clock[0] = 61.0
    later = record()
    assert throttle.filter(later)
    assert "999 more like this" in later.getMessage()
