"""The one boundary where SDK exceptions become orkestra errors.

Errors are mapped by HTTP status (and the body's error type), never by SDK class hierarchy: the
hierarchies differ between SDK versions (anthropic 1.x vs 2.x, see the wire-protocol notes §8).
Messages are scrubbed of the API key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orkestra.errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    ModelNotFoundError,
    OrkestraError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)

__all__ = ["is_transport_error", "malformed", "map_error", "scrub"]

_TRANSPORT_MODULES = ("httpx", "httpx2", "httpcore", "aiohttp", "h11", "ssl", "socket")
# What reading a body that is not JSON raises: the json module's error (the Stainless SDKs
# parse with it), google-genai's own.
_UNREADABLE = {"JSONDecodeError", "UnknownApiResponseError"}


def scrub(text: str, secret: str | None) -> str:
    """Remove the secret (and any long prefix of it) from ``text``."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
        if len(secret) > 8:
            text = text.replace(secret[: len(secret) // 2], "***")
    return text


def malformed(provider: str, model: str | None, what: str) -> MalformedResponseError:
    """The error for a ``200 OK`` whose body is not the provider's answer (``what`` it was)."""
    where = f"{provider}/{model}" if model else provider
    return MalformedResponseError(
        f"{where}: got 200 OK without an answer in it ({what}); does the base URL point at "
        f"the {provider} API?",
        provider=provider,
        model=model,
        status_code=200,
    )


def is_transport_error(exc: BaseException) -> bool:
    """A raw network-library error that escaped an SDK (openai 2.x lets some through)."""
    module = type(exc).__module__.split(".")[0]
    return module in _TRANSPORT_MODULES or isinstance(exc, (ConnectionError, TimeoutError))


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def _headers(exc: BaseException) -> Mapping[str, str]:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _retry_after(exc: BaseException, body: Any) -> float | None:
    headers = _headers(exc)
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000.0
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        pass
    # Gemini puts the delay in a google.rpc.RetryInfo detail instead of a header.
    for detail in _gemini_details(body):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and (m := re.fullmatch(r"([\d.]+)s", delay)):
            return float(m.group(1))
    return None


def _gemini_details(body: Any) -> list[dict[str, Any]]:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _body(exc: BaseException) -> Any:
    body = getattr(exc, "body", None)
    if body is None:
        body = getattr(exc, "details", None)  # google-genai keeps the JSON here
    return body


def _error_type(body: Any) -> str | None:
    """Anthropic's ``error.type`` (also how a mid-stream ``event: error`` says what it was)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def _message(exc: BaseException, body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(getattr(exc, "message", None) or exc)


_BY_ANTHROPIC_TYPE: dict[str, tuple[type[ProviderError], int]] = {
    "overloaded_error": (ProviderUnavailableError, 529),
    "api_error": (ProviderUnavailableError, 500),
    "rate_limit_error": (RateLimitError, 429),
    "timeout_error": (ProviderTimeoutError, 504),
    "authentication_error": (AuthenticationError, 401),
    "permission_error": (AuthenticationError, 403),
    "not_found_error": (ModelNotFoundError, 404),
    "invalid_request_error": (BadRequestError, 400),
}


# An OpenAI error event inside a stream has no HTTP status: the body's code/type says what it was.
_BY_OPENAI_CODE: dict[str, tuple[type[ProviderError], int]] = {
    "rate_limit_exceeded": (RateLimitError, 429),
    "insufficient_quota": (RateLimitError, 429),
    "invalid_api_key": (AuthenticationError, 401),
    "model_not_found": (ModelNotFoundError, 404),
    "context_length_exceeded": (BadRequestError, 400),
    "server_error": (ProviderUnavailableError, 500),
    "invalid_request_error": (BadRequestError, 400),
    "requests": (RateLimitError, 429),
    "tokens": (RateLimitError, 429),
}


def _openai_stream_error(body: Any) -> tuple[type[ProviderError], int] | None:
    if not isinstance(body, dict) or "message" not in body:
        return None
    for field in ("code", "type"):
        value = body.get(field)
        if isinstance(value, str) and value in _BY_OPENAI_CODE:
            return _BY_OPENAI_CODE[value]
    return None


def _class_for(status: int, body: Any) -> type[ProviderError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in _gemini_details(body)):
        return AuthenticationError  # Gemini answers a bad key with 400, not 401
    if status == 404:
        return ModelNotFoundError
    if status == 429:
        return RateLimitError
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError
    return BadRequestError


def map_error(
    exc: BaseException, *, provider: str, model: str | None, api_key: str | None
) -> OrkestraError:
    """The orkestra error for an exception raised by an SDK call (or its transport)."""
    if isinstance(exc, OrkestraError):
        return exc
    names = _names(exc)
    body = _body(exc)
    where = f"{provider}/{model}" if model else provider
    status = _status(exc)
    if status is None and (known := _openai_stream_error(body)) is not None:
        cls, code = known
        message = f"{where}: error in the stream: {scrub(_message(exc, body), api_key)}"
        return cls(message, provider=provider, model=model, status_code=code)
    if status is None and names & _UNREADABLE:  # a 200 whose body is not JSON
        return malformed(provider, model, f"not JSON: {scrub(str(exc)[:120], api_key)}")
    if any("Timeout" in n for n in names) and status in (None, 408, 504):
        return ProviderTimeoutError(
            f"{where}: the call timed out", provider=provider, model=model, status_code=status
        )
    if status is None or "APIConnectionError" in names or is_transport_error(exc):
        detail = scrub(str(exc) or type(exc).__name__, api_key)
        return ProviderConnectionError(
            f"{where}: connection failed: {detail}", provider=provider, model=model
        )
    error_type = _error_type(body)
    if status == 200 and error_type in _BY_ANTHROPIC_TYPE:  # an error event inside a stream
        cls, status = _BY_ANTHROPIC_TYPE[error_type]
    else:
        cls = _class_for(status, body)
    if cls is AuthenticationError:
        message = (
            f"{where}: the provider rejected the API key (HTTP {status}); "
            "check the key you passed or the provider's API key environment variable"
        )
    else:
        message = f"{where}: HTTP {status}: {scrub(_message(exc, body), api_key)}"
    return cls(
        message,
        provider=provider,
        model=model,
        status_code=status,
        retry_after=_retry_after(exc, body),
    )
