"""Per-key limits, as LiteLLM's virtual keys have them: the models a key may use, requests and
tokens a minute, requests in flight at once, an expiry. Typed errors: 403 for a model the key
may not use, 429 with retry-after for a rate limit, 401 for an expired key; nothing reaches the
provider."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from proxy_helpers import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    AppClient,
    LiveServer,
    chat_body,
    client_key,
    is_openai_error,
    start_server,
)

from orkestra import ConfigurationError
from orkestra.server import load_config
from orkestra.server.keys import hash_key
from orkestra.server.run import per_worker
from orkestra.testing import FakeProviderServer, Reply

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
CHAT = "/v1/chat/completions"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(app_client: AppClient, **limits: Any) -> tuple[Any, Clock]:
    client = app_client(keys=(client_key(**limits),))
    clock = Clock()
    client.app.state.proxy.limits.clock = clock  # type: ignore[attr-defined]
    return client, clock


def ask(client: Any, model: str = "gpt-4o-mini", **extra: Any) -> Any:
    return client.post(CHAT, json=chat_body(model=model, **extra), headers=AUTH)


def test_a_key_uses_only_the_models_it_may(app_client: AppClient, fake: FakeProviderServer) -> None:
    client = app_client(
        keys=(client_key(models=("gpt-4o-mini", "orkestra/openai", "anthropic/*")),)
    )
    for model in ("gpt-4o-mini", "openai/gpt-4o-mini", "orkestra/openai", "claude-haiku-4-5"):
        assert ask(client, model).status_code == 200, model
    served = len(fake.requests)
    for model in ("orkestra/auto", "gpt-4.1", "gemini-3-flash-preview", "orkestra/anthropic"):
        response = ask(client, model)
        assert response.status_code == 403 and is_openai_error(response), model
        error = response.json()["error"]
        assert error["code"] == "model_not_allowed" and error["param"] == "model"
    assert len(fake.requests) == served
    listed = [m["id"] for m in client.get("/v1/models", headers=AUTH).json()["data"]]
    assert "gpt-4o-mini" in listed and "orkestra/openai" in listed
    assert "claude-haiku-4-5" in listed and "orkestra/auto" not in listed
    assert not any(m.startswith("gemini") for m in listed)
    assert client.get("/v1/models/gpt-4.1", headers=AUTH).status_code == 403
    assert client.get("/v1/models/gpt-4o-mini", headers=AUTH).status_code == 200


def test_a_routed_name_is_allowed_in_either_spelling(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    """``orkestra-openai`` is ``orkestra/openai`` spelled for SDKs that read ``a/b`` as a
    provider prefix: a key allowed one may use (and is listed) the other, and nothing more."""
    client = app_client(keys=(client_key(models=("orkestra/openai",)),))
    for model in ("orkestra/openai", "orkestra-openai"):
        assert ask(client, model).status_code == 200, model
    assert ask(client, "orkestra-auto").status_code == 403
    listed = [m["id"] for m in client.get("/v1/models", headers=AUTH).json()["data"]]
    assert {"orkestra/openai", "orkestra-openai"} <= set(listed)
    assert "orkestra-auto" not in listed and "orkestra/auto" not in listed
    flat = app_client(keys=(client_key(models=("orkestra-*",)),))
    assert ask(flat, "orkestra/anthropic").status_code == 200
    assert ask(flat, "gpt-4o-mini").status_code == 403


def test_requests_a_minute(app_client: AppClient, fake: FakeProviderServer) -> None:
    client, clock = limited(app_client, rpm=3)
    for _ in range(3):
        assert ask(client).status_code == 200
        clock.now += 10
    refused = ask(client)
    assert refused.status_code == 429 and is_openai_error(refused)
    error = refused.json()["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["retry-after"] == "30"  # the first leaves the minute in 30 s
    assert len(fake.requests) == 3
    clock.now += 30
    assert ask(client).status_code == 200


def test_tokens_a_minute(app_client: AppClient, fake: FakeProviderServer) -> None:
    client, clock = limited(app_client, tpm=1000)
    fake.queue(Reply("long", input_tokens=700, output_tokens=400))
    assert ask(client).status_code == 200  # let in under the limit, counted when it ends
    refused = ask(client)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert refused.headers["x-ratelimit-limit-tokens"] == "1000"
    assert int(refused.headers["retry-after"]) == 60
    clock.now += 61
    assert ask(client).status_code == 200
    assert len(fake.requests) == 2


def test_tokens_a_minute_count_a_cascades_discarded_answer(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    """A cascade that climbed used the tokens of every answer it asked for, the discarded one
    included: 600 + 500 tokens pass a 1,000-token minute though neither answer alone does."""
    client, clock = limited(app_client, tpm=1000)
    cheapest = "gemini-2.5-flash-lite"  # the cascade's first rung across the three providers
    refusal = "I'm sorry, but I can't help with that."
    fake.queue(Reply(refusal, input_tokens=300, output_tokens=300), model=cheapest)
    fake.queue(Reply("Tokyo.", input_tokens=250, output_tokens=250))
    climbed = ask(client, "orkestra/cascade")
    assert climbed.status_code == 200
    assert climbed.json()["orkestra"]["cascade"]["escalated"] is True
    refused = ask(client)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    clock.now += 61
    assert ask(client).status_code == 200


def test_requests_in_flight_at_once(app_client: AppClient, fake: FakeProviderServer) -> None:
    client, _ = limited(app_client, max_parallel=2)
    fake.queue(Reply("slow", delay=1.0), times=2)
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def slow() -> None:
        barrier.wait()
        statuses.append(ask(client).status_code)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = dt.datetime.now() + dt.timedelta(seconds=5)
    while len(fake.requests) < 2 and dt.datetime.now() < deadline:
        threading.Event().wait(0.01)
    third = ask(client)
    for t in threads:
        t.join()
    assert statuses == [200, 200]
    assert third.status_code == 429 and "2 requests at once" in third.json()["error"]["message"]
    assert third.headers["retry-after"] == "1"
    # A stream holds its slot until it ends; then the slots are free again.
    streamed = client.post(CHAT, json=chat_body(model="gpt-4o-mini", stream=True), headers=AUTH)
    assert streamed.status_code == 200
    assert ask(client).status_code == 200 and ask(client).status_code == 200


def test_an_expired_key_is_refused(app_client: AppClient, fake: FakeProviderServer) -> None:
    client = app_client(keys=(client_key(expires=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)),))
    refused = ask(client)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_expired"
    assert "2020-01-01" in refused.json()["error"]["message"]
    later = app_client(keys=(client_key(expires=dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc)),))
    assert ask(later).status_code == 200
    assert len(fake.requests) == 1


def test_the_config_reads_every_limit(tmp_path: Path) -> None:
    config = tmp_path / "orkestra.toml"
    config.write_text(
        f"""
[providers.openai]
[[keys]]
name = "team-a"
sha256 = "{hash_key(CLIENT_KEY)}"
models = ["gpt-4o-mini", "orkestra/*"]
rpm = 60
tpm = 100000
max_parallel = 4
expires = 2027-01-31
[[keys]]
name = "ci"
sha256 = "{hash_key("ok-" + "c" * 40)}"
expires = "2027-02-01T12:00:00+01:00"
"""
    )
    loaded = load_config(config, {"OPENAI_API_KEY": "sk-test"})
    team, ci = loaded.keys
    assert team.models == ("gpt-4o-mini", "orkestra/*")
    assert (team.rpm, team.tpm, team.max_parallel) == (60, 100_000, 4)
    assert team.expires == dt.datetime(2027, 1, 31, tzinfo=dt.timezone.utc)
    assert ci.expires == dt.datetime(2027, 2, 1, 11, tzinfo=dt.timezone.utc)
    # Counted per process: each of 3 workers takes a third, rounded up.
    shared = per_worker(loaded, 3).keys[0]
    assert (shared.rpm, shared.tpm, shared.max_parallel) == (20, 33_334, 2)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("rpm = 0", "keys[0].rpm"),
        ("tpm = -5", "keys[0].tpm"),
        ("max_parallel = 'many'", "keys[0].max_parallel"),
        ('models = "gpt-4o-mini"', "keys[0].models"),
        ('expires = "soon"', "keys[0].expires"),
    ],
)
def test_a_bad_limit_names_its_field(tmp_path: Path, line: str, field: str) -> None:
    config = tmp_path / "orkestra.toml"
    config.write_text(
        f'[providers.openai]\n[[keys]]\nname = "a"\nsha256 = "{hash_key(CLIENT_KEY)}"\n{line}\n'
    )
    with pytest.raises(ConfigurationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_config(config, {"OPENAI_API_KEY": "sk-test"})


# -- the real openai client against a real server process ------------------------------------


@pytest.fixture(scope="module")
def limited_live(
    upstream: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("limited-proxy")
    config = home / "orkestra.toml"
    config.write_text(
        f"""
[server]
port = 0
[usage]
enabled = false
[providers.openai]
api_key_env = "UPSTREAM_OPENAI_KEY"
base_url = "{upstream.openai_base_url}"
[[keys]]
name = "team-a"
sha256 = "{hash_key(CLIENT_KEY)}"
models = ["gpt-4o-mini"]
rpm = 2
[[keys]]
name = "old"
sha256 = "{hash_key("ok-old-" + "o" * 40)}"
expires = 2020-01-01
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(ORKESTRA_HOME=str(home), UPSTREAM_OPENAI_KEY=UPSTREAM_KEY)
    server = start_server(config, env, home / "server.log", home / "unused.db")
    yield server
    server.stop()


@pytest.mark.slow
def test_the_openai_client_raises_its_usual_errors(
    limited_live: LiveServer, upstream: FakeProviderServer
) -> None:
    upstream.clear()
    messages = [{"role": "user", "content": "Hi"}]

    async def run() -> None:
        async with openai.AsyncOpenAI(
            base_url=limited_live.base_url, api_key=CLIENT_KEY, max_retries=0
        ) as client:
            with pytest.raises(openai.PermissionDeniedError):
                await client.chat.completions.create(model="gpt-4.1", messages=messages)
            for _ in range(2):
                await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            assert int(caught.value.response.headers["retry-after"]) >= 1
        async with openai.AsyncOpenAI(
            base_url=limited_live.base_url, api_key="ok-old-" + "o" * 40, max_retries=0
        ) as old:
            with pytest.raises(openai.AuthenticationError) as expired:
                await old.chat.completions.create(model="gpt-4o-mini", messages=messages)
            assert expired.value.code == "key_expired"

    asyncio.run(run())
    assert len(upstream.requests) == 2
