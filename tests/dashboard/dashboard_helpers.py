"""Helpers the dashboard tests share: plausible records, and a server-sent-event reader."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR
from orkestra.usage import UsageRecord

BUNDLED_KNOB = json.loads((DEFAULT_ROUTER_DIR / "manifest.json").read_text())["router"][
    "default_knob"
]
"""The bundled router's default knob: a record routed at it counts against its target share."""


def make_record(**fields: Any) -> UsageRecord:
    """A plausible record; any field can be given."""
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "tier": "budget",
        "input_tokens": 120,
        "output_tokens": 300,
        "cost": 0.000198,
        "base_model": "o3",
        "base_cost": 0.00264,
        "latency_ms": 412.0,
        "routing_ms": 0.4,
        "scores": {"budget": 0.71, "balanced": 0.77, "premium": 0.84},
        "knob": BUNDLED_KNOB,
    }
    values.update(fields)
    return UsageRecord(**values)


class EventStream:
    """Reads a server-sent-event stream on a thread: ``next()`` gives each event as a dict
    (``{"id":…, "event":…, "data":…}``, or ``{"comment": …}``); None once the stream ended."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.netloc, timeout=30)
        self._conn.request("GET", f"{parts.path}?{parts.query}", headers=headers or {})
        self._sock = self._conn.sock
        self._response = self._conn.getresponse()
        self.headers = self._response.headers
        self._events: queue.Queue[dict[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            for raw in self._response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if event:
                        self._events.put(event)
                    event = {}
                elif line.startswith(":"):
                    self._events.put({"comment": line[1:].strip()})
                else:
                    field, _, value = line.partition(":")
                    event[field] = value.removeprefix(" ")
        except Exception:  # closed under us: the stream is over either way
            pass
        self._events.put(None)

    def next(self, timeout: float = 5.0, *, skip_comments: bool = True) -> dict[str, str] | None:
        while True:
            event = self._events.get(timeout=timeout)
            if event is None or not (skip_comments and "comment" in event):
                return event

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # wakes the reader blocked on the socket
                self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._conn.close()
