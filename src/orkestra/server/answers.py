"""The proxy's HTTP answers: JSON bodies, errors in each wire's shape (a client that went
away is not an error), the routing and cost headers of an answer, the headers an error gets
from the library error it came from, and the 500 a bug gets."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response as HTTPResponse
from starlette.types import Receive, Scope, Send

from orkestra import Response
from orkestra.errors import OrkestraError, StructuredOutputError
from orkestra.server.errors import ProxyError
from orkestra.server.messages_api import MESSAGES
from orkestra.server.response import cascade_steps_header, dumps
from orkestra.server.wire import CHAT, Wire

__all__ = [
    "JSON",
    "error_response",
    "internal_error",
    "invalid_answer",
    "json_response",
    "money",
    "routing_headers",
    "with_where",
]

logger = logging.getLogger("orkestra.server")


def money(value: float) -> str:
    return f"{value:.10f}"


JSON = "application/json"


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> HTTPResponse:
    return HTTPResponse(dumps(value), status, headers=dict(headers or {}), media_type=JSON)


class _ErrorResponse(HTTPResponse):
    """An error answer that may find the client gone (or the server already answering a
    malformed request itself): then there is no one to tell, and nothing to raise."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            logger.debug("could not send an error answer: %r", exc)


def error_response(
    error: ProxyError, request_id: str | None = None, wire: Wire = CHAT
) -> HTTPResponse:
    headers = dict(error.headers)
    if request_id is not None:
        headers["x-request-id"] = request_id
        if wire is MESSAGES:
            headers["request-id"] = request_id  # where the anthropic SDK looks for it
    body = wire.error_body(error)
    return _ErrorResponse(body, error.status, headers=headers, media_type=JSON)


def routing_headers(response: Response, request_id: str) -> dict[str, str]:
    headers = {
        "x-orkestra-provider": response.provider,
        "x-orkestra-model": response.model,
        "x-orkestra-tier": response.tier,
        "x-orkestra-cost-usd": money(response.total_cost),
        "x-orkestra-savings-usd": money(response.base_cost - response.total_cost),
        "x-request-id": request_id,
    }
    if response.cascade is not None:
        headers["x-orkestra-cascade-steps"] = cascade_steps_header(response.cascade)
    return headers


def invalid_answer(error: BaseException) -> Response | None:
    """The billed answer of a :class:`StructuredOutputError`, if the error carries it."""
    if isinstance(error, StructuredOutputError) and isinstance(error.response, Response):
        return error.response
    return None


def internal_error(request_id: str, wire: Wire = CHAT) -> HTTPResponse:
    """A bug: logged with its traceback (the caller is in an ``except``), never sent."""
    logger.exception("internal error serving %s", request_id)
    return error_response(
        ProxyError(
            500,
            f"The proxy had an internal error (request {request_id}); it is logged.",
            type="server_error",
            code="internal_error",
        ),
        request_id,
        wire,
    )


def with_where(error: ProxyError, source: OrkestraError, request_id: str) -> ProxyError:
    """The error with the provider and model it concerns, and what failed attempts cost (an
    answer that failed its ``response_format``: every routing header, as for a success)."""
    answer = invalid_answer(source)
    if answer is not None:
        for name, value in routing_headers(answer, request_id).items():
            error.headers.setdefault(name, value)
    provider = getattr(source, "provider", None)
    model = getattr(source, "model", None)
    if provider:
        error.headers.setdefault("x-orkestra-provider", provider)
    if model:
        error.headers.setdefault("x-orkestra-model", model)
    if source.attempts:
        error.headers.setdefault("x-orkestra-cost-usd", money(sum(a.cost for a in source.attempts)))
    return error
