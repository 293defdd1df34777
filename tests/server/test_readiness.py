"""``GET /readyz``: ready when the providers are configured and the usage log answers; a 503
naming what failed otherwise. ``/healthz`` stays 200 either way (the process is up)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from proxy_helpers import AppClient, make_config
from starlette.testclient import TestClient

from orkestra.server import create_app
from orkestra.testing import FakeProviderServer
from orkestra.usage import SQLiteUsageLog, UsageRecord

# The keyless proxy answers to this machine's names only (not TestClient's "testserver").
LOCAL = "http://127.0.0.1:8000"


def test_ready_with_providers_and_a_working_log(app_client: AppClient) -> None:
    response = app_client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and "failed" not in body
    assert body["checks"]["usage_log"] == {"ok": True, "backend": "sqlite"}
    assert body["checks"]["providers"] == {
        "ok": True,
        "providers": ["openai", "anthropic", "google"],
    }


def test_a_usage_log_that_went_away_is_a_503_naming_it(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    folder = tmp_path / "volume"
    log = SQLiteUsageLog(folder / "usage.db")
    try:
        with TestClient(create_app(make_config(), usage_log=log), base_url=LOCAL) as client:
            assert client.get("/readyz").status_code == 200
            shutil.rmtree(folder)
            response = client.get("/readyz")
            assert client.get("/healthz").status_code == 200
    finally:
        log.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["failed"] == ["usage_log"]
    assert body["checks"]["usage_log"]["ok"] is False
    assert "not writable" in body["checks"]["usage_log"]["error"]
    assert body["checks"]["providers"]["ok"] is True


def test_a_provider_key_that_is_gone_is_a_503_naming_the_variable(
    fake: FakeProviderServer, usage_log: SQLiteUsageLog
) -> None:
    env = dict(fake.env(), OPENAI_API_KEY=fake.api_key, ANTHROPIC_API_KEY=fake.api_key)
    env["GOOGLE_API_KEY"] = fake.api_key
    with TestClient(
        create_app(make_config(), usage_log=usage_log, environ=env), base_url=LOCAL
    ) as client:
        assert client.get("/readyz").status_code == 200
        del env["ANTHROPIC_API_KEY"]
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["providers"]
    assert "ANTHROPIC_API_KEY is not set" in body["checks"]["providers"]["error"]
    assert fake.api_key not in response.text


class _StuckLog:
    """A usage log whose database stopped answering (its probe never returns in time)."""

    store_prompts = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def record(self, record: UsageRecord) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        self.release.set()

    def ping(self) -> None:
        self.release.wait(10)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def test_a_usage_log_that_does_not_answer_is_a_503_after_the_time_limit(
    fake: FakeProviderServer,
) -> None:
    log = _StuckLog()
    app = create_app(make_config(), usage_log=log)  # type: ignore[arg-type]
    app.state.proxy.readiness.timeout = 0.3
    try:
        with TestClient(app, base_url=LOCAL) as client:
            response = client.get("/readyz")
    finally:
        log.release.set()
    assert response.status_code == 503
    assert response.json()["checks"]["usage_log"] == {
        "ok": False,
        "error": "no answer within 0.3 s",
    }


def test_without_a_usage_log_readiness_is_the_providers_alone(app_client: AppClient) -> None:
    response = app_client(log=None, usage_log=False).get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["usage_log"] == {"ok": True, "enabled": False}
