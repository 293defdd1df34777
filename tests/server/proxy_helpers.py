"""What the proxy tests share: keys, configs, request bodies, an error check, a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from orkestra._net import listen
from orkestra.server import KeyConfig, ProviderConfig, ServerConfig, hash_key
from orkestra.testing import FakeProviderServer

# Shaped like real keys, so a leak would also be caught by the log's scrubbing patterns.
UPSTREAM_KEY = "sk-upstream-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CLIENT_KEY = "ok-client-Zq3xT0pLk9vRm2sWd7yHb4nJc8fGa1eU"
OTHER_KEY = "ok-client-other-a8s7d6f5g4h3j2k1l0q9w8e7r6"
PROVIDERS = ("openai", "anthropic", "google")

AppClient = Callable[..., TestClient]
"""The ``app_client`` fixture: ``app_client(**config overrides)`` → a running TestClient."""


def make_config(**overrides: Any) -> ServerConfig:
    """Every provider (keys and base URLs from the environment), no client keys."""
    settings: dict[str, Any] = {"providers": tuple(ProviderConfig(p) for p in PROVIDERS)}
    settings.update(overrides)
    return ServerConfig(**settings)


def client_key(name: str = "team-a", key: str = CLIENT_KEY, **budget: Any) -> KeyConfig:
    return KeyConfig(name, hash_key(key), **budget)


def chat_body(text: str = "What is the capital of Japan?", **extra: Any) -> dict[str, Any]:
    return {"model": "orkestra/auto", "messages": [{"role": "user", "content": text}], **extra}


def is_openai_error(response: Any) -> bool:
    """``{"error": {"message": str, "type": str, "param": ..., "code": ...}}``."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and set(error) == {"message", "type", "param", "code"}
        and isinstance(error["message"], str)
        and bool(error["message"])
        and isinstance(error["type"], str)
    )


def sse_events(text: str) -> list[Any]:
    """The ``data:`` payloads of an event stream (``[DONE]`` kept as the string)."""
    events = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# -- a real HTTP server in this process -------------------------------------------------------


@contextmanager
def served(app: Starlette) -> Iterator[str]:
    """``app`` served by uvicorn on a thread, on a free 127.0.0.1 port: its base URL."""
    sock = listen("127.0.0.1", 0, backlog=2048, in_use_hint="")
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, log_config=None)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


# -- a real server process -------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_file: Path
    db: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def output(self) -> str:
        return self.log_file.read_text("utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def config_toml(upstream: FakeProviderServer, db: Path) -> str:
    """Every provider at the fake server, keys in variables; one client key, one broke key."""
    return f"""
[server]
host = "127.0.0.1"
port = 0

[routing]
strategy = "cheapest"
max_retries = 1

[usage]
database_url = "sqlite:///{db}"
budget_sync_seconds = 0.2

[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"

[providers.anthropic]
api_key_env = "UPSTREAM_ANTHROPIC_KEY"
base_url = "{upstream.anthropic_base_url}"

[providers.google]
api_key_env = "UPSTREAM_GOOGLE_KEY"
base_url = "{upstream.google_base_url}"

[[keys]]
name = "team-a"
sha256 = "{hash_key(CLIENT_KEY)}"

[[keys]]
name = "broke"
key_env = "BROKE_CLIENT_KEY"
budget_usd = 0
"""


def keyless_openai_toml(upstream: FakeProviderServer) -> str:
    """OpenAI at the fake server (its key in the variable :func:`server_env` sets), no client
    keys, no usage log: the bare proxy the benchmarks drive."""
    return f"""
[server]
port = 0
[usage]
enabled = false
[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"
"""


def server_env(home: Path) -> dict[str, str]:
    """The environment of a proxy process started by a test: no real keys or URLs, the
    variables :func:`config_toml` names, ``ORKESTRA_HOME`` in the test's directory."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_API_KEY", "_BASE_URL"))
        and key not in ("ORKESTRA_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        ORKESTRA_HOME=str(home),
        NO_PROXY="127.0.0.1,localhost",
        GOOGLE_GENAI_API_VERSION="v1beta",
        UPSTREAM_OPENAI_KEY=UPSTREAM_KEY,
        UPSTREAM_ANTHROPIC_KEY=UPSTREAM_KEY,
        UPSTREAM_GOOGLE_KEY=UPSTREAM_KEY,
        BROKE_CLIENT_KEY=OTHER_KEY,
    )
    return env


def start_server(
    config: Path,
    env: dict[str, str],
    log_file: Path,
    db: Path,
    timeout: float = 60.0,
    args: tuple[str, ...] = (),
) -> LiveServer:
    """``python -m orkestra.server --config … [args]``, once it answers ``/healthz``."""
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orkestra.server", "--config", str(config), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + timeout

    def failed(what: str) -> RuntimeError:
        process.kill()
        process.wait()
        return RuntimeError(f"the proxy {what}:\n{log_file.read_text()}")

    url = None
    while url is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise failed("did not start")
        for line in log_file.read_text("utf-8", errors="replace").splitlines():
            if line.startswith("orkestra serve: http://"):
                url = line.split()[2].removesuffix("/v1")
        time.sleep(0.05)
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return LiveServer(url, process, log_file, db)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise failed("did not answer")
        time.sleep(0.05)
