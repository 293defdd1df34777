"""Fault injection, seen through the three real SDKs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors

from orkestra.testing import FakeProviderServer, Fault

USER = [{"role": "user", "content": "Hello there, how are you doing today my friend?"}]
PROMPT = USER[0]["content"]
# What each SDK raises when the connection fails (anthropic and google-genai let httpx2's own
# errors escape while a stream is being read).
CONNECTION_ERRORS = {
    "openai": (openai.APIConnectionError,),
    "anthropic": (anthropic.APIConnectionError, httpx2.TransportError),
    "google": (httpx2.TransportError,),
}
PROVIDERS = ["openai", "anthropic", "google"]


CLIENT_FIXTURES = {"openai": "oai", "anthropic": "claude", "google": "gemini"}


@pytest.fixture
def stream_text(request: pytest.FixtureRequest) -> Callable[[str, list[str]], None]:
    """``stream_text(provider, into)``: stream a reply, appending each text delta to ``into``."""

    def deltas(provider: str) -> Iterator[str]:
        client = request.getfixturevalue(CLIENT_FIXTURES[provider])
        if provider == "openai":
            for chunk in client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            ):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        elif provider == "anthropic":
            for event in client.messages.create(
                model="claude-haiku-4-5", max_tokens=100, messages=USER, stream=True
            ):
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text
        else:
            for response in client.models.generate_content_stream(
                model="gemini-3.5-flash", contents=PROMPT
            ):
                yield response.text or ""

    def run(provider: str, into: list[str]) -> None:
        for delta in deltas(provider):
            into.append(delta)

    return run


@pytest.fixture
def complete(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``complete(provider)``: one non-streaming call, returning the reply text."""

    def run(provider: str) -> str:
        client = request.getfixturevalue(CLIENT_FIXTURES[provider])
        if provider == "openai":
            completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            return completion.choices[0].message.content or ""
        if provider == "anthropic":
            message = client.messages.create(
                model="claude-haiku-4-5", max_tokens=100, messages=USER
            )
            return str(message.content[0].text)
        return client.models.generate_content(model="gemini-3.5-flash", contents=PROMPT).text or ""

    return run


# ---------------------------------------------------------------- Fault.status


def test_openai_429_with_retry_headers(server: FakeProviderServer, oai: openai.OpenAI) -> None:
    server.queue(Fault.status(429, retry_after=2, retry_after_ms=1500))
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1500"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.body["type"] == "requests"  # type: ignore[index]


def test_openai_sdk_retries_instantly_by_default(server: FakeProviderServer) -> None:
    server.queue(Fault.status(503), provider="openai", times=2)
    started = time.monotonic()
    with openai.OpenAI(api_key=server.api_key, base_url=server.openai_base_url) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.choices[0].message.content
    assert len(server.requests) == 3
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]
    assert time.monotonic() - started < 1.0  # retry-after-ms: 1, not the 0.5 s backoff


def test_anthropic_529_overloaded(server: FakeProviderServer, claude: anthropic.Anthropic) -> None:
    server.queue(Fault.status(529), provider="anthropic")
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert caught.value.response.headers["retry-after-ms"] == "1"
    assert caught.value.response.headers["request-id"].startswith("req_")


def test_anthropic_429_carries_rate_limit_headers(
    server: FakeProviderServer, claude: anthropic.Anthropic
) -> None:
    server.queue(Fault.status(429, retry_after=0.01))
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "0.01"
    assert "retry-after-ms" not in headers
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_gemini_429_puts_the_delay_in_retry_info(
    server: FakeProviderServer, gemini: genai.Client
) -> None:
    server.queue(Fault.status(429, retry_after=41), provider="google")
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(model="gemini-3.5-flash", contents=PROMPT)
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    details = caught.value.details["error"]["details"]
    retry = [d for d in details if d["@type"].endswith("google.rpc.RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"}]
    assert caught.value.response is not None
    assert "retry-after" not in caught.value.response.headers


def test_gemini_503_unavailable(server: FakeProviderServer, gemini: genai.Client) -> None:
    server.queue(Fault.status(503))
    with pytest.raises(errors.ServerError) as caught:
        gemini.models.generate_content(model="gemini-3.5-flash", contents=PROMPT)
    assert caught.value.status == "UNAVAILABLE"
    assert caught.value.message == "The model is overloaded. Please try again later."


def test_status_with_custom_message(server: FakeProviderServer, oai: openai.OpenAI) -> None:
    server.queue(Fault.status(400, message="context too long, say"))
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.body["message"] == "context too long, say"  # type: ignore[index]


# ---------------------------------------------------------------- cut_stream and stream_error


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cut_stream_is_a_connection_error(
    server: FakeProviderServer, stream_text: Callable[[str, list[str]], None], provider: str
) -> None:
    server.queue(Fault.cut_stream(after_chunks=2))
    received: list[str] = []
    with pytest.raises(CONNECTION_ERRORS[provider]):
        stream_text(provider, received)
    assert len(received) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cut_non_streaming_body(
    server: FakeProviderServer, complete: Callable[[str], str], provider: str
) -> None:
    server.queue(Fault.cut_stream())
    with pytest.raises(CONNECTION_ERRORS[provider]):
        complete(provider)
    assert complete(provider)  # the connection pool recovers


def test_cut_non_streaming_body_is_retried_and_billed_twice(server: FakeProviderServer) -> None:
    server.queue(Fault.cut_stream())
    with anthropic.Anthropic(api_key=server.api_key, base_url=server.anthropic_base_url) as client:
        message = client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER)
    assert message.content
    assert len(server.requests) == 2


def test_anthropic_stream_error_event(
    server: FakeProviderServer, stream_text: Callable[[str, list[str]], None]
) -> None:
    server.queue(Fault.stream_error(after_chunks=1))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        stream_text("anthropic", received)
    assert len(received) == 1
    assert caught.value.status_code == 200
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_openai_stream_error_chunk(
    server: FakeProviderServer, stream_text: Callable[[str, list[str]], None]
) -> None:
    server.queue(Fault.stream_error(after_chunks=2, error_type="api_error", message="Boom"))
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        stream_text("openai", received)
    assert len(received) == 2
    assert caught.value.message == "Boom"
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]


def test_openai_responses_stream_error_event(
    server: FakeProviderServer, oai: openai.OpenAI
) -> None:
    server.queue(Fault.stream_error(after_chunks=1))
    events = list(oai.responses.create(model="gpt-4o", input="Hello there", stream=True))
    assert events[-1].type == "error"
    assert events[-1].message == "Overloaded"
    assert [e.type for e in events].count("response.output_text.delta") == 1


def test_gemini_stream_error_object(
    server: FakeProviderServer, stream_text: Callable[[str, list[str]], None]
) -> None:
    server.queue(Fault.stream_error(after_chunks=1, error_type="rate_limit_error"))
    received: list[str] = []
    with pytest.raises(errors.ClientError) as caught:
        stream_text("google", received)
    assert len(received) == 1
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


def test_stream_error_on_a_non_streaming_request(
    server: FakeProviderServer, claude: anthropic.Anthropic
) -> None:
    server.queue(Fault.stream_error())
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=USER)
    assert caught.value.status_code == 529


# ---------------------------------------------------------------- delay and drop


def test_delay_and_client_timeouts(
    server: FakeProviderServer,
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
    make_gemini: Callable[..., genai.Client],
) -> None:
    server.queue(Fault.delay(1.0), times=3)
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.1).chat.completions.create(model="gpt-4o-mini", messages=USER)
    with pytest.raises(anthropic.APITimeoutError):
        claude.with_options(timeout=0.1).messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=USER
        )
    impatient = make_gemini(timeout=100)  # milliseconds
    with pytest.raises(httpx2.TimeoutException):
        impatient.models.generate_content(model="gemini-3.5-flash", contents=PROMPT)


def test_short_delay_then_normal_answer(
    server: FakeProviderServer, complete: Callable[[str], str]
) -> None:
    server.queue(Fault.delay(0.05))
    started = time.monotonic()
    assert complete("openai").startswith("[gpt-4o-mini]")
    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize("provider", PROVIDERS)
def test_drop_is_a_connection_error(
    server: FakeProviderServer, complete: Callable[[str], str], provider: str
) -> None:
    server.queue(Fault.drop())
    with pytest.raises(CONNECTION_ERRORS[provider]):
        complete(provider)
    assert len(server.requests) == 1


def test_fault_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="400-599"):
        Fault.status(200)
    with pytest.raises(ValueError):
        Fault.delay(-1)
    with pytest.raises(ValueError):
        Fault.cut_stream(after_chunks=-1)
    with pytest.raises(ValueError):
        Fault.status(429, retry_after=-1)
