"""The HTTP connection, guarded: a cap on open connections, and a deadline for a request's head.

uvicorn (0.55) waits for a request's head for as long as the client likes — its
``timeout_keep_alive`` only starts once a response has been sent — and takes every connection
the kernel hands it; its ``limit_concurrency`` only acts on a request whose head has arrived
(a slow client never gets there), answers in plain text and logs a warning each time. So
20,000 clients that each trickle out a header held 20,000 descriptors until the process ran
out, and every failed ``accept()`` then logged a traceback.

:class:`GuardedH11Protocol` is uvicorn's h11 protocol with two additions (:class:`Limits`):

- **a connection cap** (``server.max_connections``): a connection beyond it gets a ``503``
  (OpenAI-shaped, ``retry-after: 1``) and is closed at once, before anything is read, so the
  descriptors a process holds for clients stay bounded;
- **a head deadline** (``server.header_timeout``): from the moment a connection opens, or a
  new request's first byte arrives after a response, its whole head (request line and headers)
  must arrive within the deadline; otherwise the client gets a ``408`` and the connection is
  closed. An idle keep-alive connection is closed after ``timeout_keep_alive`` (uvicorn's own).

A request's body has its own deadline, in the app (``server.body_timeout``,
:func:`orkestra.server.body.read_body`). Heads are at most :data:`MAX_HEAD_BYTES` (h11's
incomplete-event limit; larger: 400). Refusals are logged at most once a minute per kind,
with a count.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from orkestra.server.logs import Throttle

__all__ = ["MAX_HEAD_BYTES", "GuardedH11Protocol", "Limits"]

logger = logging.getLogger("orkestra.server")

MAX_HEAD_BYTES = 16 * 1024
"""The most a request's line and headers may be (browsers send a few KB; nginx allows 8 KB per
header line by default)."""


@dataclass(frozen=True)
class Limits:
    """What a guarded connection enforces (``server.*`` in the config)."""

    max_connections: int = 1000
    header_timeout: float = 10.0


def _raw_answer(status: str, code: str, message: str, extra: str = "") -> bytes:
    body = json.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    ).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


_BUSY = _raw_answer(
    "503 Service Unavailable",
    "too_many_connections",
    "This orkestra proxy has as many connections open as it takes (server.max_connections); "
    "try again in a moment.",
    "retry-after: 1\r\n",
)
_SLOW = _raw_answer(
    "408 Request Timeout",
    "request_timeout",
    "The request's headers did not arrive in time (server.header_timeout).",
)
_throttle = Throttle()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a connection cap and a deadline for request heads. The
    limits come from the uvicorn config's ``orkestra_limits`` attribute (:class:`Limits`)."""

    def __init__(self, config: Any, server_state: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, server_state, *args, **kwargs)
        self.limits: Limits = getattr(config, "orkestra_limits", None) or Limits()
        self._refused = False
        self._head_deadline: asyncio.TimerHandle | None = None

    # -- the cap ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            _throttle.log(
                logger,
                logging.WARNING,
                "busy",
                "refused a connection: %d are open, the most this process takes "
                "(server.max_connections)",
                len(self.connections),
            )
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        self._watch_head()

    # -- the head deadline ------------------------------------------------------------------

    def _watch_head(self) -> None:
        """Arm the deadline while a head is arriving; disarm it once it is whole."""
        if self.transport.is_closing():
            self._disarm_head_deadline()
        elif self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            if self._head_deadline is None:
                self._arm_head_deadline()
        elif self.conn.their_state is not h11.IDLE:
            self._disarm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            self._arm_head_deadline()  # a pipelined request's head is on its way

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0] or self.cycle is None:
            _throttle.log(
                logger,
                logging.WARNING,
                "slow-head",
                "closed a connection whose request headers had not arrived after %g s "
                "(server.header_timeout)",
                self.limits.header_timeout,
            )
            self.transport.write(_SLOW)
        self.transport.close()


BACKLOG = 128
"""The listen queue, and how many connections asyncio accepts in one go. A connection the cap
refuses is closed a couple of event-loop turns after it was accepted, while the next batches
are being accepted: for a moment, up to about three batches beyond the cap are open."""
_IN_FLIGHT_BATCHES = 3
RESERVED_DESCRIPTORS = 64
"""For everything else a process opens: the listening socket, the usage database, log files,
the provider clients' pools beyond one connection per call, the worker threads' pipes."""


def fit_descriptors(
    limits: Limits, max_concurrency: int, *, raise_limit: bool = True
) -> tuple[Limits, str | None]:
    """``limits`` as this process's descriptor limit allows: each client connection is one
    descriptor, each provider call in flight another (``max_concurrency``), plus three accept
    batches (:data:`BACKLOG`) and :data:`RESERVED_DESCRIPTORS`. The soft limit is raised
    towards the hard one if that is what it takes (``raise_limit``); if even that is too low,
    the cap is lowered, and the second value says so."""
    import resource

    transient = _IN_FLIGHT_BATCHES * BACKLOG
    needed = limits.max_connections + max_concurrency + transient + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed and raise_limit:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return limits, None
    fitted = max(16, soft - max_concurrency - transient - RESERVED_DESCRIPTORS)
    return (
        Limits(fitted, limits.header_timeout),
        f"server.max_connections lowered from {limits.max_connections} to {fitted}: this "
        f"process may open {soft} descriptors (ulimit -n; hard limit {hard}), and needs "
        f"{needed} for {limits.max_connections} connections, {max_concurrency} provider calls "
        "and its own files",
    )
