"""Bad input fails before the network; provider failures become typed orkestra errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer, Fault

PROVIDERS = ("google", "anthropic", "openai")
SECRET = "sk-test-SECRET-key-1234567890abcdef"


@pytest.mark.parametrize("name", PROVIDERS)
def test_missing_key_is_named_before_any_call(
    name: str, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    provider = o.Provider(name)
    with pytest.raises(o.MissingAPIKeyError, match="_API_KEY"):
        provider.chat("hello")
    assert fake.requests == []
    # Routing needs no key.
    assert provider.route("hello").provider == name


def test_gemini_key_falls_back_to_gemini_api_key(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", fake.api_key)
    assert o.Provider("google").chat("hello").text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": ""}, "empty"),
        ({"prompt": "   \n"}, "empty"),
        ({"prompt": None}, "give a prompt"),
        ({"prompt": 42}, "must be a str"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "hi", "max_tokens": 1.5}, "max_tokens"),
        ({"prompt": "hi", "temperature": -0.1}, "temperature"),
        ({"prompt": "hi", "temperature": float("nan")}, "temperature"),
        ({"prompt": "hi", "temperature": 2.5}, "temperature"),
    ],
)
def test_invalid_requests_fail_before_the_network(
    kwargs: dict[str, object], match: str, fake: FakeProviderServer
) -> None:
    provider = o.Provider("openai", fake.api_key)
    prompt = kwargs.pop("prompt")
    with pytest.raises(o.InvalidRequestError, match=match):
        provider.chat(prompt, **kwargs)  # type: ignore[arg-type]
    assert fake.requests == []


def test_unknown_names_are_typed_errors(fake: FakeProviderServer) -> None:
    with pytest.raises(o.UnknownProviderError, match="'mistral'"):
        o.Provider("cohere")
    with pytest.raises(o.UnknownModelError):
        o.Provider("openai", fake.api_key).chat("hi", model="gpt-9")
    multi = o.MultiProvider([o.Provider("openai", fake.api_key)])
    with pytest.raises(o.UnknownStrategyError, match="fastest"):
        multi.chat("hi", strategy="fastest")
    with pytest.raises(o.UnknownStrategyError):
        o.MultiProvider([o.Provider("openai")], strategy="fastest")
    with pytest.raises(o.ConfigurationError):
        o.MultiProvider([])
    assert fake.requests == []


@pytest.mark.parametrize("name", PROVIDERS)
def test_wrong_key_is_an_authentication_error_without_the_key(
    name: str, fake: FakeProviderServer
) -> None:
    provider = o.Provider(name, SECRET, max_retries=0)
    with pytest.raises(o.AuthenticationError) as info:
        provider.chat("hello")
    assert SECRET not in str(info.value)
    assert SECRET[:12] not in str(info.value)
    assert info.value.provider == name
    assert SECRET not in repr(provider)


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("openai", 429, o.RateLimitError),
        ("anthropic", 429, o.RateLimitError),
        ("google", 429, o.RateLimitError),
        ("anthropic", 529, o.ProviderUnavailableError),
        ("openai", 500, o.ProviderUnavailableError),
        ("google", 503, o.ProviderUnavailableError),
    ],
)
def test_provider_failures_map_to_typed_errors(
    name: str, status: int, error: type[o.ProviderError], fake: FakeProviderServer
) -> None:
    fake.queue(Fault.status(status, retry_after=7), provider=name)
    with pytest.raises(error) as info:
        o.Provider(name, fake.api_key, max_retries=0).chat("hello")
    assert info.value.status_code == status
    assert info.value.retryable
    if status == 429:
        assert info.value.retry_after == pytest.approx(7.0)


BODIES = [
    (b"[]", "application/json"),
    (b"{}", "application/json"),
    (b'{"choices": 3, "content": "x", "candidates": "y"}', "application/json"),
    (b"<html><body>Sign in to the Wi-Fi</body></html>", "text/html"),
]


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize(("body", "content_type"), BODIES)
@pytest.mark.parametrize("use_async", [False, True])
def test_a_200_without_an_answer_is_malformed_never_an_empty_answer(
    name: str, body: bytes, content_type: str, use_async: bool, fake: FakeProviderServer
) -> None:
    """A wrong base URL or a captive portal answers 200 too: a typed error naming the provider
    and model, without the key, never an empty "answer" (google-genai reads any JSON object
    into an empty response; this was a silent success)."""
    fake.queue(Fault.malformed(body, content_type=content_type), provider=name)
    provider = o.Provider(name, fake.api_key, max_retries=0, smart_routing=False)
    call = provider.achat if use_async else provider.chat
    with pytest.raises(o.MalformedResponseError) as info:
        asyncio.run(call("hello")) if use_async else call("hello")
    error = info.value
    assert error.provider == name and error.model and f"{name}/{error.model}" in str(error)
    assert "200 OK without an answer" in str(error) and fake.api_key not in str(error)
    assert error.status_code == 200 and error.retryable


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_malformed_answer_is_retried(name: str, fake: FakeProviderServer) -> None:
    fake.queue(Fault.malformed(), provider=name)
    response = o.Provider(name, fake.api_key, max_retries=1, smart_routing=False).chat("hello")
    assert response.text and len(fake.requests) == 2


def test_a_malformed_answer_falls_back_to_another_model(fake: FakeProviderServer) -> None:
    provider = o.Provider("google", fake.api_key, max_retries=0, fallback="up-then-down")
    chosen = provider.route("What is the capital of Japan?").model
    fake.queue(Fault.malformed(), provider="google", model=chosen, times=5)
    response = provider.chat("What is the capital of Japan?")
    assert response.text and response.model != chosen
    first = response.attempts[0]
    assert (first.model, first.error) == (chosen, "MalformedResponseError")


@pytest.mark.parametrize("name", PROVIDERS)
def test_stream_cut_midway_keeps_the_partial_text(name: str, fake: FakeProviderServer) -> None:
    fake.queue(Fault.cut_stream(after_chunks=2), provider=name)
    stream = o.Provider(name, fake.api_key, max_retries=0).stream("Write a long poem about rivers")
    received: list[str] = []
    with pytest.raises(o.StreamInterruptedError) as info:
        for chunk in stream:
            received.append(chunk)
    assert received
    assert info.value.partial_text == "".join(received)
    assert stream.response is None


def test_anthropic_error_event_mid_stream(fake: FakeProviderServer) -> None:
    fake.queue(Fault.stream_error(after_chunks=1), provider="anthropic")
    stream = o.Provider("anthropic", fake.api_key, max_retries=0).stream("Write a poem")
    with pytest.raises(o.StreamInterruptedError, match="Overloaded") as info:
        list(stream)
    assert info.value.status_code == 529
    assert info.value.partial_text


@pytest.mark.parametrize("name", PROVIDERS)
def test_failure_before_the_first_chunk_is_the_plain_error(
    name: str, fake: FakeProviderServer
) -> None:
    fake.queue(Fault.status(500), provider=name)
    with pytest.raises(o.ProviderUnavailableError):
        list(o.Provider(name, fake.api_key, max_retries=0).stream_text("hello"))


def test_timeout_and_dropped_connection(fake: FakeProviderServer) -> None:
    fake.queue(Fault.delay(2.0), provider="openai")
    with pytest.raises(o.ProviderTimeoutError):
        o.Provider("openai", fake.api_key, max_retries=0, timeout=0.3).chat("hello")
    fake.queue(Fault.drop(), provider="openai")
    with pytest.raises(o.ProviderConnectionError):
        o.Provider("openai", fake.api_key, max_retries=0).chat("hello")


def test_import_orkestra_imports_no_sdk() -> None:
    code = (
        "import sys, orkestra\n"
        "heavy = [m for m in ('openai', 'anthropic', 'google.genai', 'genai_prices') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
