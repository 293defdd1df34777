"""A chat request's body: read within the size cap on the event loop, then decoded and checked
in a worker thread (:func:`parse_body`), so a big or tricky body never stalls other requests.

Every refusal is a :class:`~orkestra.server.errors.ProxyError`: 415 for a body that does not
say it is JSON (``Content-Type``: what a web page can send cross-site without a preflight;
see :mod:`orkestra.server.guard`), 413 over ``server.max_body_bytes``, 400 for invalid UTF-8,
invalid JSON, ``NaN``/``Infinity``, lone surrogates, nesting too deep to parse, and whatever
:func:`~orkestra.server.request.parse_chat_request` refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
from starlette.requests import Request

from orkestra._unicode import find_lone_surrogate
from orkestra.server.errors import ProxyError, bad_request
from orkestra.server.request import ChatParams, parse_chat_request

__all__ = ["parse_body", "parse_json", "read_body"]

JSON = "application/json"
# A body over the cap is read and thrown away up to this much, so that the client (still
# sending) gets its 413 instead of a reset connection; past it the connection is dropped.
DRAIN_LIMIT = 64 * 1024 * 1024


def check_json_content_type(header: str | None) -> None:
    """A POST body must say it is JSON: ``text/plain`` (or nothing) is what a web page can
    send cross-site without the browser asking the server first."""
    media_type = (header or "").partition(";")[0].strip().lower()
    if media_type != JSON:
        shown = f"'{header[:100]}'" if header else "none"
        raise ProxyError(
            415,
            f"Send the request body as JSON with the header Content-Type: application/json "
            f"(this request's content type: {shown}).",
            code="unsupported_media_type",
        )


def too_large(cap: int) -> ProxyError:
    return ProxyError(
        413,
        f"The request body is larger than this proxy accepts ({cap} bytes).",
        code="request_too_large",
    )


INLINE_PARSE_BYTES = 4096
"""The largest body parsed on the event loop itself (when it carries no JSON Schema)."""

# Keys under which a request carries a JSON Schema (response_format's and text.format's
# ``schema``, Messages' ``input_schema``, a function tool's ``parameters``), and the escape
# that could spell one of them differently.
_SCHEMA_MARKS = (b"schema", b"parameters", b"\\u")


def parses_quickly(raw: bytes) -> bool:
    """Whether parsing ``raw`` is cheaper than handing it to a worker thread (~0.08 ms of CPU
    and two thread switches per request): a body of at most :data:`INLINE_PARSE_BYTES` with
    no JSON Schema in it takes well under a millisecond to parse and check (a few hundred
    short messages at most, ~16 us each). A schema check can take seconds of pure Python and
    stays off the event loop, as does any bigger body."""
    return len(raw) <= INLINE_PARSE_BYTES and not any(mark in raw for mark in _SCHEMA_MARKS)


async def read_body(request: Request, cap: int, timeout: float = 60.0) -> bytes:
    """The body's bytes, once it has all arrived (at most ``cap`` of them, within ``timeout``
    seconds: a body that trickles in holds a connection and a task; then 408)."""
    check_json_content_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > DRAIN_LIMIT):
        raise too_large(cap)
    parts: list[bytes] = []
    size = 0
    with anyio.move_on_after(timeout) as deadline:
        async for part in request.stream():
            size += len(part)
            if size > DRAIN_LIMIT:
                raise too_large(cap)
            if size <= cap:
                parts.append(part)
    if deadline.cancelled_caught:
        raise ProxyError(
            408,
            f"The request body did not arrive within {timeout:g} s (server.body_timeout).",
            code="request_timeout",
            headers={"connection": "close"},
        )
    if size > cap:
        raise too_large(cap)
    return b"".join(parts)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes) -> object:
    """The JSON value of a body (blocking: run it in a worker thread)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("The request body is not valid UTF-8.", None, "invalid_body") from None
    if not text.strip():
        raise bad_request("The request body is empty: send a JSON object.", None, "invalid_body")
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise bad_request(
            "We could not parse the JSON body of your request: it is not valid JSON.",
            None,
            "invalid_json",
        ) from None
    # JSON's "\ud800" escapes decode to lone surrogates, which no provider can be sent:
    # refuse them anywhere in the body (tool schemas included), naming the place.
    bad = find_lone_surrogate(body)
    if bad is not None:
        where = f"'{bad.path}'" if bad.path else "the body"
        if bad.in_key:
            where = f"a key of {where}"
        raise bad_request(
            f"Invalid value for {where}: the text is not valid Unicode (a lone surrogate, "
            f"U+{bad.codepoint:04X}, at character {bad.index}).",
            bad.path or None,
            "invalid_value",
        )
    return body


def parse_body(raw: bytes) -> ChatParams:
    """A ``/v1/chat/completions`` body, decoded and checked (blocking: a worker thread)."""
    return parse_json(raw, parse_chat_request)


def parse_json(raw: bytes, parse: Callable[[object], ChatParams]) -> ChatParams:
    """A body decoded and checked by ``parse`` (blocking: a worker thread).

    A body nested too deeply for some check to walk it (Python's recursion limit) is a 400,
    never a 500: nesting is the client's to fix.
    """
    try:
        return parse(decode_json(raw))
    except RecursionError:
        raise bad_request(
            "The request nests too deeply to be read; flatten it.", None, "invalid_body"
        ) from None
