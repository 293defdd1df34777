"""The pytest plugin: SDK clients built from the environment alone reach the fake server."""

from __future__ import annotations

import os

import anthropic
import openai
import pytest
from google import genai

from orkestra.testing import FakeProviderServer, Fault

pytest_plugins = ["orkestra.testing.pytest_plugin"]


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings that would send google-genai to Vertex AI, set before the fixture runs."""
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GEMINI_API_KEY", "other-key")


def test_fixture_points_every_sdk_at_the_server(
    hostile_env: None, fake_providers: FakeProviderServer
) -> None:
    assert "GOOGLE_GENAI_USE_VERTEXAI" not in os.environ
    assert os.environ["OPENAI_BASE_URL"] == fake_providers.openai_base_url
    fake_providers.queue(Fault.status(529), provider="anthropic")

    with openai.OpenAI(max_retries=0) as oai:
        chat = oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}]
        )
    assert chat.choices[0].message.content == "[gpt-4o-mini] ping"

    with anthropic.Anthropic(max_retries=0) as claude:
        with pytest.raises(anthropic.APIStatusError) as caught:
            claude.messages.create(
                model="claude-haiku-4-5",
                max_tokens=10,
                messages=[{"role": "user", "content": "ping"}],
            )
        assert caught.value.status_code == 529

    client = genai.Client()
    try:  # a v1beta-only model: proves GOOGLE_GENAI_API_VERSION was applied
        reply = client.models.generate_content(model="gemini-3.1-pro-preview", contents="ping")
    finally:
        client.close()
    assert reply.text == "[gemini-3.1-pro-preview] ping"

    assert [r.provider for r in fake_providers.requests] == ["openai", "anthropic", "google"]


def test_each_test_gets_a_fresh_server(fake_providers: FakeProviderServer) -> None:
    assert fake_providers.requests == []
