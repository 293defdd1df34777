"""Web pages cannot use the proxy (issue 12, D1): a keyless ``orkestra serve`` (the README's
default) answered any ``Host`` and took ``text/plain`` bodies whatever their ``Origin``, so any
page could spend the user's provider keys (a "simple" cross-site POST needs no preflight) and,
by DNS rebinding (its own name resolving to 127.0.0.1), read the answers.

Against a real server process: what a browser would send is refused with a typed, OpenAI-shaped
error before anything reaches a provider; the real ``openai`` client is unaffected; an origin
the config allows gets CORS headers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from proxy_helpers import UPSTREAM_KEY, LiveServer, chat_body, is_openai_error, start_server

from orkestra.testing import FakeProviderServer

pytestmark = pytest.mark.slow

APP_ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def keyless(
    upstream: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """``orkestra serve`` as the README starts it: no client keys, on 127.0.0.1; one origin
    allowed by the config."""
    home = tmp_path_factory.mktemp("keyless-proxy")
    config = home / "orkestra.toml"
    config.write_text(
        f"""
[server]
port = 0
allowed_origins = ["{APP_ORIGIN}"]
[usage]
database_url = "sqlite:///{home / "usage.db"}"
[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(ORKESTRA_HOME=str(home), UPSTREAM_OPENAI_KEY=UPSTREAM_KEY)
    server = start_server(config, env, home / "server.log", home / "usage.db")
    yield server
    server.stop()


@pytest.fixture
def fresh(upstream: FakeProviderServer) -> FakeProviderServer:
    upstream.clear()
    return upstream


def post(server: LiveServer, headers: dict[str, str], body: bytes | None = None) -> httpx.Response:
    payload = body if body is not None else json.dumps(chat_body(model="gpt-4o-mini")).encode()
    return httpx.post(
        f"{server.url}/v1/chat/completions", content=payload, headers=headers, timeout=30
    )


def test_a_cross_site_form_post_in_text_plain_is_refused(
    keyless: LiveServer, fresh: FakeProviderServer
) -> None:
    # What <form enctype="text/plain"> or fetch(..., {mode: "no-cors"}) sends: no preflight.
    response = post(
        keyless,
        {
            "content-type": "text/plain",
            "origin": "https://evil.example",
            "sec-fetch-site": "cross-site",
        },
    )
    assert response.status_code == 403 and is_openai_error(response)
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert fresh.requests == []


def test_text_plain_is_refused_even_without_an_origin(
    keyless: LiveServer, fresh: FakeProviderServer
) -> None:
    response = post(keyless, {"content-type": "text/plain"})
    assert response.status_code == 415 and is_openai_error(response)
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
    response = post(keyless, {})  # no content type at all
    assert response.status_code == 415
    assert fresh.requests == []


def test_a_rebound_host_name_is_refused(keyless: LiveServer, fresh: FakeProviderServer) -> None:
    # DNS rebinding: the page's own name now resolves to 127.0.0.1, so the browser calls the
    # proxy with the page's Host (and, being same-origin for the browser, no Origin at all).
    for path in ("/v1/chat/completions", "/v1/models", "/healthz"):
        method = "POST" if path.endswith("completions") else "GET"
        response = httpx.request(
            method,
            f"{keyless.url}{path}",
            json=chat_body(model="gpt-4o-mini") if method == "POST" else None,
            headers={"host": "evil.example:8000"},
            timeout=30,
        )
        assert response.status_code == 421 and is_openai_error(response), path
        assert response.json()["error"]["code"] == "invalid_host"
    assert fresh.requests == []


def test_a_cross_site_json_request_is_refused_and_its_preflight_gets_no_cors(
    keyless: LiveServer, fresh: FakeProviderServer
) -> None:
    preflight = httpx.options(
        f"{keyless.url}/v1/chat/completions",
        headers={
            "origin": "https://evil.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
        timeout=30,
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    response = post(keyless, {"content-type": "application/json", "origin": "https://evil.example"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "origin_not_allowed"
    # Sec-Fetch-Site alone (a browser that sends no Origin) is enough.
    response = post(keyless, {"content-type": "application/json", "sec-fetch-site": "same-site"})
    assert response.status_code == 403
    assert fresh.requests == []


def test_an_allowed_origin_gets_cors_and_an_answer(
    keyless: LiveServer, fresh: FakeProviderServer
) -> None:
    preflight = httpx.options(
        f"{keyless.url}/v1/chat/completions",
        headers={
            "origin": APP_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
        timeout=30,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    response = post(
        keyless,
        {"content-type": "application/json", "origin": APP_ORIGIN, "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "x-orkestra-cost-usd" in response.headers["access-control-expose-headers"]
    assert len(fresh.requests) == 1


def test_the_openai_client_is_served_as_before(
    keyless: LiveServer, fresh: FakeProviderServer
) -> None:
    with openai.OpenAI(base_url=keyless.base_url, api_key="unused", max_retries=0) as client:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
        assert answer.choices[0].message.content == "[gpt-4o-mini] Hi"
    for host in ("localhost", "127.0.0.1", "[::1]"):
        port = keyless.url.rsplit(":", 1)[1]
        response = httpx.get(
            f"{keyless.url}/healthz", headers={"host": f"{host}:{port}"}, timeout=30
        )
        assert response.status_code == 200, host


def test_the_server_log_says_what_was_refused_without_flooding(keyless: LiveServer) -> None:
    for _ in range(50):
        post(keyless, {"host": "evil.example", "content-type": "application/json"})
    lines = [line for line in keyless.output().splitlines() if "evil.example" in line]
    assert 1 <= len(lines) <= 5  # rate-limited, not one line per refused request


def test_only_a_keyed_proxy_may_allow_any_origin(tmp_path: Path) -> None:
    from orkestra.errors import ConfigurationError
    from orkestra.server import ServerConfig

    config = tmp_path / "orkestra.toml"
    config.write_text('[server]\nallowed_origins = ["*"]\n[providers.openai]\n')
    with pytest.raises(ConfigurationError, match="allowed_origins"):
        ServerConfig.load(config, environ={"OPENAI_API_KEY": "sk-test"})
    config.write_text(
        '[server]\nallowed_origins = ["https://a.example/path"]\n[providers.openai]\n'
    )
    with pytest.raises(ConfigurationError, match="allowed_origins"):
        ServerConfig.load(config, environ={"OPENAI_API_KEY": "sk-test"})
