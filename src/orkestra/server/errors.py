"""OpenAI-shaped errors: what the proxy answers when it cannot (or will not) answer the request.

Every error leaves the proxy as ``{"error": {"message", "type", "param", "code"}}`` with the
status an OpenAI client expects, so the official clients raise their usual exceptions::

    400 invalid_request_error   malformed JSON, wrong types, unsupported parameters (param set)
    401 invalid_api_key         missing or wrong orkestra key   → openai.AuthenticationError
    404 model_not_found         unknown model name              → openai.NotFoundError
    413 request_too_large       body above the configured cap
    429 insufficient_quota      a budget is used up (x-should-retry: false: retrying cannot help)
    503 budget_unavailable      a key's shared budget cannot be checked (the database is away)
    503 server_busy             the proxy is at its max_concurrency, or every one of a provider's
                                max_connections stayed busy, for queue_timeout (retry-after)
    429 rate_limit_exceeded     the provider rate-limited every candidate (retry-after passed on)
    502 upstream_*              the provider refused our key, dropped the connection, or answered
                                200 without an answer in it (upstream_malformed)
    503 upstream_unavailable    the provider is down or every candidate's circuit is open
    504 upstream_timeout        the provider did not answer in time
    500 internal_error          a bug: logged with its traceback, never sent

Library errors are mapped once, here (:func:`from_library_error`); their messages go through
:func:`~orkestra.usage.scrub_secrets` on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from orkestra.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    BudgetUnavailableError,
    ConfigurationError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelNotFoundError,
    OrkestraError,
    PoolTimeoutError,
    PricingError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    UnknownModelError,
)
from orkestra.usage import scrub_secrets

__all__ = ["ProxyError", "error_json", "from_library_error", "server_busy"]

KEY_BUDGET_PREFIX = "key:"
RETRY_AFTER_BUSY = 1
"""What a 503 ``server_busy`` asks the client to wait before trying again, in seconds."""


class ProxyError(Exception):
    """An error the proxy answers with: HTTP status and OpenAI's error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": scrub_secrets(self.message),
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def error_json(error: ProxyError) -> bytes:
    return json.dumps(error.body(), ensure_ascii=False, separators=(",", ":")).encode()


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ProxyError:
    return ProxyError(400, message, param=param, code=code)


def unsupported(param: str, what: str | None = None) -> ProxyError:
    """A parameter the proxy cannot honour yet: refused, never dropped."""
    what = what or f"`{param}`"
    return ProxyError(
        400,
        f"orkestra does not support {what} yet; the request was not sent. Remove `{param}` "
        "(or set it to its default) to have orkestra route the request.",
        param=param,
        code="unsupported_parameter",
    )


def model_not_found(model: str, why: str = "") -> ProxyError:
    detail = f" {why}" if why else ""
    return ProxyError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.{detail}",
        param="model",
        code="model_not_found",
    )


def _retry_headers(seconds: float | None) -> dict[str, str]:
    if seconds is None or seconds < 0:
        return {}
    return {"retry-after": str(max(1, round(seconds))), "retry-after-ms": str(round(seconds * 1e3))}


def server_busy(message: str) -> ProxyError:
    """The answer when the proxy, or its pool of connections to a provider, is full: nothing
    was sent, and a retry shortly may well be served (OpenAI clients retry a 503)."""
    return ProxyError(
        503,
        message,
        type="server_error",
        code="server_busy",
        headers={"retry-after": str(RETRY_AFTER_BUSY)},
    )


def _not_sent(error: BudgetExceededError | BudgetUnavailableError | PoolTimeoutError) -> ProxyError:
    """A call refused before anything was sent: a budget, or no connection free in time."""
    if isinstance(error, PoolTimeoutError):  # the proxy is full, not the provider down
        return server_busy(
            f"Every one of this proxy's connections to {error.provider} stayed busy for "
            f"{error.waited:.1f} s; nothing was sent, try again shortly."
        )
    return budget_error(error)


def budget_error(error: BudgetExceededError | BudgetUnavailableError) -> ProxyError:
    if isinstance(error, BudgetUnavailableError):
        return ProxyError(
            503,
            "The budget of this key could not be checked (the usage database is unreachable); "
            "nothing was sent.",
            type="server_error",
            code="budget_unavailable",
            headers={"retry-after": "5"},
        )
    if error.budget.startswith(KEY_BUDGET_PREFIX):
        message = (
            f"This orkestra key's budget is used up: ${error.spent:.6f} of its "
            f"${error.cap:.2f} spent or held by requests in flight, and this request could "
            f"cost up to ${error.expected_cost:.6f} (its prompt and all of its max_tokens), "
            "which would pass it. Nothing was sent; a lower max_tokens lowers what a request "
            "may cost."
        )
    else:
        message = (
            f"The proxy's budget {error.budget!r} is used up; nothing was sent. "
            "Ask the proxy's operator to raise it."
        )
    return ProxyError(
        429,
        message,
        type="insufficient_quota",
        code="insufficient_quota",
        headers={"x-should-retry": "false"},
    )


def from_library_error(error: OrkestraError) -> ProxyError:
    """The OpenAI-shaped answer for an error the library raised."""
    message = str(error) or type(error).__name__
    if isinstance(error, (BudgetExceededError, BudgetUnavailableError, PoolTimeoutError)):
        return _not_sent(error)
    if isinstance(error, UnknownModelError):
        return ProxyError(404, message, param="model", code="model_not_found")
    if isinstance(error, (MissingAPIKeyError, PricingError)):
        return ProxyError(500, message, type="server_error", code="proxy_misconfigured")
    if isinstance(error, ConfigurationError):
        return ProxyError(400, message, code="invalid_request")
    if isinstance(error, ProviderError):
        return _provider_error(error, message)
    return ProxyError(503, message, type="server_error", code="routing_failed")


# The answer to each provider failure: status, OpenAI type and code, whether a retry may help.
_PROVIDER_ERRORS: tuple[tuple[type[ProviderError], int, str, str, bool], ...] = (
    # The provider refused the proxy's own key: not the client's fault, so never a 401.
    (AuthenticationError, 502, "server_error", "upstream_authentication", False),
    (BadRequestError, 400, "invalid_request_error", "upstream_bad_request", False),
    (ModelNotFoundError, 404, "invalid_request_error", "model_not_found", False),
    (RateLimitError, 429, "requests", "rate_limit_exceeded", True),
    (ProviderTimeoutError, 504, "server_error", "upstream_timeout", False),
    (ProviderUnavailableError, 503, "server_error", "upstream_unavailable", True),
    (ProviderConnectionError, 502, "server_error", "upstream_connection", False),
    (MalformedResponseError, 502, "server_error", "upstream_malformed", False),
    (ProviderError, 502, "server_error", "upstream_error", False),
)


def _provider_error(error: ProviderError, message: str) -> ProxyError:
    where = f"{error.provider}" + (f"/{error.model}" if error.model else "")
    status, kind, code, retry = next(
        (status, kind, code, retry)
        for cls, status, kind, code, retry in _PROVIDER_ERRORS
        if isinstance(error, cls)
    )
    return ProxyError(
        status,
        f"upstream {where}: {message}",
        type=kind,
        param="model" if code == "model_not_found" else None,
        code=code,
        headers=_retry_headers(error.retry_after) if retry else None,
    )
