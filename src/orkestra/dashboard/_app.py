"""The dashboard as an ASGI app: the page, its static files, and a read-only JSON and SSE API.

``GET /``                the page (HTML; its script and styles are under ``/static/``)
``GET /api/summary``     totals, per model/tier/provider, cost series, premium share per knob
``GET /api/calls``       the latest calls, newest first (``before``: the next page), and the
                         cursor to follow the log from
``GET /api/events``      server-sent events: ``call`` for each call as it lands (any process)

Everything the page loads comes from this app; its Content-Security-Policy forbids anything
else. Requests whose ``Host`` is not the dashboard's own are refused, so a web page elsewhere
cannot read the log through DNS rebinding.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime, timezone
from importlib import resources

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orkestra._net import LOOPBACK_NAMES, host_allowed
from orkestra.dashboard._summary import (
    Cursor,
    bundled_knob_targets,
    call_row,
    event_text,
    recent_calls,
    summarize,
)
from orkestra.dashboard._tail import DEFAULT_LOOKBACK, CallTail
from orkestra.errors import ConfigurationError
from orkestra.usage import UsageLog, UsageLogClosedError, parse_since

__all__ = ["LOCAL_HOSTS", "create_app"]

logger = logging.getLogger("orkestra.dashboard")

LOCAL_HOSTS: frozenset[str] = LOOPBACK_NAMES
MAX_CALLS = 500

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class _Guard:
    """Refuses foreign ``Host`` headers; adds the security headers to every response."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(h.lower() for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host")
        if not host_allowed(None if host is None else host.decode("latin-1"), self.allowed):
            response = PlainTextResponse("unknown host", status_code=421)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _since(request: Request) -> datetime | None:
    value = request.query_params.get("since", "").strip()
    if value in ("", "all"):
        return None
    return parse_since(value)


def _bad_request(message: str, code: str) -> JSONResponse:
    """A 400 saying what was wrong, ``code`` naming the parameter (``invalid_since``)."""
    return JSONResponse({"error": message, "code": code}, status_code=400)


def _after(request: Request) -> Cursor | None:
    """Where an event stream starts: a reconnecting EventSource says where it was
    (``Last-Event-ID``), a new one where its table ends (``after``). Raises ValueError."""
    for name, text in (
        ("Last-Event-ID", request.headers.get("last-event-id")),
        ("after", request.query_params.get("after")),
    ):
        try:
            cursor = Cursor.parse(text)
        except ValueError as exc:
            raise _BadParameter(f"{name}: {exc}", name) from None
        if cursor is not None:
            return cursor
    return None


class _BadParameter(ValueError):
    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.code = "invalid_" + name.lower().replace("-", "_")


async def _log_closed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "the usage log is closed"}, status_code=503)


def create_app(
    log: UsageLog,
    *,
    poll_interval: float = 0.25,
    heartbeat: float = 10.0,
    lookback: float = DEFAULT_LOOKBACK,
    knob_targets: Mapping[float, float] | None = None,
    allowed_hosts: Collection[str] = LOCAL_HOSTS,
) -> Starlette:
    """The dashboard over ``log``.

    ``poll_interval``: how often the event stream reads the log for new calls (seconds);
    ``heartbeat``: how often an idle stream sends a comment to keep the connection open;
    ``knob_targets``: ``{knob: premium share}`` each knob was calibrated to (default: the bundled
    router's); ``allowed_hosts``: the ``Host`` names served (``"*"``: any).
    ``app.state.stopping`` (a ``threading.Event``) ends every open event stream when set.

    >>> app = create_app(open_usage_log())  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8333)  # doctest: +SKIP
    """
    targets = bundled_knob_targets() if knob_targets is None else dict(knob_targets)
    stopping = threading.Event()
    page = (resources.files("orkestra.dashboard") / "static" / "index.html").read_text("utf-8")

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def summary(request: Request) -> JSONResponse:
        try:
            since = _since(request)
        except ConfigurationError as exc:
            return _bad_request(f"since: {exc}", "invalid_since")
        data = await anyio.to_thread.run_sync(lambda: summarize(log, since, targets=targets))
        return JSONResponse(data)

    async def calls(request: Request) -> JSONResponse:
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return _bad_request("limit must be a whole number", "invalid_limit")
        limit = max(0, min(limit, MAX_CALLS))
        try:
            before = Cursor.parse(request.query_params.get("before"))
        except ValueError as exc:
            return _bad_request(f"before: {exc}", "invalid_before")
        records, cursor = await anyio.to_thread.run_sync(
            lambda: recent_calls(log, limit, before=before)
        )
        more = len(records) == limit > 0
        return JSONResponse(
            {
                "calls": [call_row(r) for r in records],
                "cursor": str(cursor),
                "next": str(Cursor.of(records[-1])) if more else None,
            }
        )

    async def events(request: Request) -> StreamingResponse | JSONResponse:
        try:
            after = _after(request)
        except _BadParameter as exc:
            return _bad_request(str(exc), exc.code)
        tail = CallTail(log, after=after, lookback=lookback)
        return StreamingResponse(
            stream_calls(tail),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def stream_calls(tail: CallTail) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"  # how soon a browser reconnects (milliseconds)
        quiet_since = time.monotonic()
        failing = False
        while not stopping.is_set():
            try:
                records = await anyio.to_thread.run_sync(tail.poll)
                failing = False
            except UsageLogClosedError:
                return
            except Exception as exc:  # a database hiccup: keep the stream, try again
                level = logging.DEBUG if failing else logging.WARNING
                logger.log(level, "dashboard: reading the usage log failed: %s", exc)
                failing, records = True, []
            if records:
                yield "".join(event_text(record) for record in records)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= heartbeat:
                yield f": keep-alive {datetime.now(timezone.utc).isoformat()}\n\n"
                quiet_since = time.monotonic()
            await anyio.sleep(poll_interval)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/summary", summary),
            Route("/api/calls", calls),
            Route("/api/events", events),
            Mount(
                "/static",
                StaticFiles(packages=[("orkestra.dashboard", "static")]),
                name="static",
            ),
        ],
        exception_handlers={UsageLogClosedError: _log_closed},
    )
    app.add_middleware(_Guard, allowed_hosts=frozenset(allowed_hosts))
    app.state.stopping = stopping
    return app
