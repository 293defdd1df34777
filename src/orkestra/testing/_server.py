"""The HTTP side of the fake: a threaded HTTP/1.1 server, the script queue, the request log."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._anthropic import AnthropicProtocol
from ._common import (
    HttpReply,
    Incoming,
    PromptCache,
    ProtocolHandler,
    Route,
    StreamPlan,
    StreamReply,
    generate,
)
from ._google import GoogleProtocol
from ._models import ProviderName
from ._openai import COMPAT, OpenAIProtocol
from ._script import Fault, Reply

logger = logging.getLogger("orkestra.testing")

PROVIDERS: tuple[ProviderName, ...] = ("openai", "anthropic", "google")
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key"})
_GEMINI_CALL = re.compile(r"/(v1|v1beta)/models/([^/:]+):([A-Za-z]+)")
_MODELS = re.compile(r"/(v1|v1beta)/models(?:/([^/:]+))?")
_COMPAT_PREFIX = "/compat"
_COMPAT_MODELS = re.compile(r"/v1/models(?:/([^/]+))?")  # local ids have colons: llama3.2:3b


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request as the fake server received it. Its repr masks credentials."""

    provider: ProviderName
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    model: str | None
    stream: bool

    def __repr__(self) -> str:
        headers = {k: "***" if k in _SECRET_HEADERS else v for k, v in self.headers.items()}
        query = {k: "***" if k == "key" else v for k, v in self.query.items()}
        return (
            f"RecordedRequest(provider={self.provider!r}, method={self.method!r},"
            f" path={self.path!r}, query={query!r}, headers={headers!r}, body={self.body!r},"
            f" model={self.model!r}, stream={self.stream!r})"
        )


@dataclass
class _Scripted:
    item: Reply | Fault
    provider: ProviderName | None
    model: str | None
    remaining: int


def _guess_provider(path: str, headers: dict[str, str], query: dict[str, str]) -> ProviderName:
    if path.startswith("/v1beta/") or "x-goog-api-key" in headers or "key" in query:
        return "google"
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    return "openai"


def _compat_route(path: str, method: str, model: str | None, stream: bool) -> Route:
    """``/compat/v1/...``: the OpenAI protocol as a local compatible server (Ollama, vLLM)
    speaks it: any model id, any key or none (``api_version`` tells the handler)."""
    posted = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}
    if method == "POST" and path in posted:
        return Route("openai", posted[path], model, stream, api_version=COMPAT)
    listing = _COMPAT_MODELS.fullmatch(path)
    if listing and method == "GET":
        model_id = listing.group(1)
        return Route("openai", "model" if model_id else "models", model_id, api_version=COMPAT)
    return Route("openai", "unknown", api_version=COMPAT)


def route_request(incoming: Incoming) -> Route:
    """Decide which provider and endpoint a request is for."""
    path, method, body = incoming.path, incoming.method, incoming.body
    fields = body if isinstance(body, dict) else {}
    model = fields.get("model") if isinstance(fields.get("model"), str) else None
    stream = fields.get("stream") is True
    if path.startswith(_COMPAT_PREFIX + "/"):
        return _compat_route(path.removeprefix(_COMPAT_PREFIX), method, model, stream)
    posted: dict[str, tuple[ProviderName, str]] = {
        "/v1/chat/completions": ("openai", "chat"),
        "/v1/responses": ("openai", "responses"),
        "/v1/messages": ("anthropic", "messages"),
        "/v1/messages/count_tokens": ("anthropic", "count_tokens"),
    }
    if method == "POST" and path in posted:
        provider, endpoint = posted[path]
        return Route(provider, endpoint, model, stream)
    gemini = _GEMINI_CALL.fullmatch(path)
    if gemini and method == "POST":
        version, model_id, call = gemini.groups()
        endpoint = {
            "generateContent": "generate",
            "streamGenerateContent": "generate",
            "countTokens": "count_tokens",
        }.get(call, "unsupported")
        is_stream = call == "streamGenerateContent"
        alt = incoming.query.get("alt") == "sse"
        return Route("google", endpoint, model_id, is_stream, version, call, sse=alt)
    listing = _MODELS.fullmatch(path)
    provider = _guess_provider(path, incoming.headers, incoming.query)
    if listing and method == "GET":
        version, model_id = listing.groups()
        endpoint = "model" if model_id else "models"
        return Route(provider, endpoint, model_id, api_version=version)
    return Route(provider, "unknown")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 drops bursts of concurrent connects

    def __init__(self, port: int, fake: FakeProviderServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.accepted = 0  # TCP connections accepted since the server started
        self.streams_left = 0  # streams whose client went away before their end
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer's getfqdn(): a reverse DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
            self.accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer
    _started = False

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------ reading

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _incoming(self) -> Incoming:
        raw = self._read_body()
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body: Any = None
        body_error = False
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                body_error = True
        return Incoming(
            method=self.command,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            raw_body=raw,
            body=body,
            body_error=body_error,
        )

    # ------------------------------------------------------------ serving

    def _serve(self) -> None:
        self._started = False
        try:
            incoming = self._incoming()
        except (OSError, ValueError):
            self.close_connection = True
            return
        try:
            self._dispatch(incoming)
        except OSError:  # the client went away
            self.close_connection = True
        except Exception as error:
            logger.exception("orkestra.testing: internal error serving %s", incoming.path)
            if self._started:
                self._abort()
            else:
                message = f"orkestra.testing fake server error: {error!r}"
                body = {"error": {"message": message, "type": "fake_server_error"}}
                self._send(HttpReply(500, json.dumps(body).encode()))

    def _dispatch(self, incoming: Incoming) -> None:
        fake = self.server.fake
        route = route_request(incoming)
        fake._record(incoming, route)
        handler = fake._protocols[route.provider]
        problem = handler.check(incoming, route)
        if problem is not None:
            self._send(problem)
            return
        if not route.generates:
            self._send(handler.other(incoming, route))
            return
        body: dict[str, Any] = incoming.body
        item = fake._take(route.provider, route.model)
        fault = item if isinstance(item, Fault) else None
        if fault is not None and self._fault_ends_it(handler, route, fault):
            return
        reply = item if isinstance(item, Reply) else None
        if reply is not None and reply.delay and fake._stopping.wait(reply.delay):
            self._abort()
            return
        prompt = handler.prompt(route, body)
        cache = fake.prompt_cache.lookup(route.provider, route.model or "", prompt)
        gen = generate(route.model or "", prompt, reply, cache)
        if route.stream and route.sse:
            pace = reply.chunk_delay if reply is not None else 0.0
            self._send_stream(handler.stream(route, body, gen, StreamPlan.from_fault(fault)), pace)
        elif fault is not None and fault.kind == "stream_error":
            self._send(handler.error(route, fault))
        elif fault is not None and fault.kind == "cut_stream":
            self._send(handler.complete(route, body, gen), cut=True)
        else:
            self._send(handler.complete(route, body, gen))

    def _fault_ends_it(self, handler: ProtocolHandler, route: Route, fault: Fault) -> bool:
        """Act on a fault that comes before any answer; True when that ends the request."""
        if fault.kind == "drop":
            self._abort()
        elif fault.kind == "status":
            self._send(handler.error(route, fault))
        elif fault.kind == "malformed":
            self._send(HttpReply(200, fault.body, content_type=fault.content_type))
        elif fault.kind == "delay" and self.server.fake._stopping.wait(fault.seconds):
            self._abort()  # the server is stopping
        else:
            return False
        return True

    # ------------------------------------------------------------ writing

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Site Overloaded" if status == 529 else "Error"
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {self.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, reply: HttpReply, *, cut: bool = False) -> None:
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            *reply.headers,
        ]
        body = reply.body[: len(reply.body) // 2] if cut else reply.body
        self._started = True
        self.wfile.write(self._head(reply.status, headers) + body)
        if cut:
            self._abort()

    def _send_stream(self, reply: StreamReply, pace: float = 0.0) -> None:
        headers = [
            ("Content-Type", reply.content_type),
            ("Transfer-Encoding", "chunked"),
            ("Cache-Control", "no-cache"),
            *reply.headers,
        ]
        self._started = True
        self.wfile.write(self._head(reply.status, headers))
        try:
            for i, frame in enumerate(reply.frames):
                if i and pace and self.server.fake._stopping.wait(pace):
                    self._abort()
                    return
                self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                self.wfile.flush()
        except OSError:
            with self.server.connections_lock:
                self.server.streams_left += 1
            raise
        if reply.complete:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._abort()

    def _abort(self) -> None:
        """Close the connection now, mid-response if need be."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class FakeProviderServer:
    """OpenAI, Anthropic and Gemini wire protocols on 127.0.0.1, for the real SDKs to talk to.

    >>> with FakeProviderServer() as server:  # doctest: +SKIP
    ...     client = openai.OpenAI(api_key=server.api_key, base_url=server.openai_base_url)
    ...     server.queue(Fault.status(429), provider="openai")

    Every provider accepts ``api_key`` (and rejects other keys as the real APIs do), unless
    ``any_key=True``: then any non-empty key is accepted, so code and docs samples written with
    placeholder keys (``"YOUR_GEMINI_API_KEY"``) run unchanged. It serves every model its own
    table knows and every model orkestra's catalog can resolve to, until the model's retirement
    date by :func:`orkestra.catalog.today` (``ORKESTRA_TODAY``).
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        any_key: bool = False,
        port: int = 0,
        cache_min_tokens: int = 1024,
    ) -> None:
        self._api_key = api_key
        self.any_key = any_key
        accepted = None if any_key else api_key
        self.prompt_cache = PromptCache(cache_min_tokens)
        """Prompts seen per model: a repeated prefix of at least ``cache_min_tokens`` tokens is
        reported as cached (Anthropic: only up to its ``cache_control`` breakpoints)."""
        self._port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._script: list[_Scripted] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._protocols: dict[ProviderName, ProtocolHandler] = {
            "openai": OpenAIProtocol(accepted),
            "anthropic": AnthropicProtocol(accepted),
            "google": GoogleProtocol(accepted),
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeProviderServer:
        """Bind 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeProviderServer is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer(self._port, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"orkestra-fake-providers:{self._httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (safe to call twice)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"FakeProviderServer({where})"

    # ------------------------------------------------------------ addresses

    @property
    def api_key(self) -> str:
        """The key every provider accepts (with ``any_key``, one of many)."""
        return self._api_key

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeProviderServer is not running; call start() first")
        return f"http://127.0.0.1:{self._httpd.server_port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def compat_base_url(self) -> str:
        """An OpenAI-compatible local server (like Ollama's or vLLM's ``/v1``): the OpenAI
        protocol, any model id, any API key or none. Requests are recorded as ``openai``."""
        return f"{self.url}/compat/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def google_base_url(self) -> str:
        return self.url

    def env(self) -> dict[str, str]:
        """Environment variables that point all three SDKs at this server."""
        return {
            "OPENAI_BASE_URL": self.openai_base_url,
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "GOOGLE_GEMINI_BASE_URL": self.google_base_url,
            "GOOGLE_GENAI_API_VERSION": "v1beta",
            "NO_PROXY": "127.0.0.1,localhost",
            "OPENAI_API_KEY": self._api_key,
            "ANTHROPIC_API_KEY": self._api_key,
            "GOOGLE_API_KEY": self._api_key,
        }

    # ------------------------------------------------------------ script and log

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since the server started (or :meth:`clear`): a client
        that reuses its connections opens one per concurrent request, not one per request."""
        httpd = self._httpd
        if httpd is None:
            return 0
        with httpd.connections_lock:
            return httpd.accepted

    @property
    def streams_left(self) -> int:
        """Streams whose client closed the connection before the stream's end (seen when the
        next frame could not be written)."""
        httpd = self._httpd
        if httpd is None:
            return 0
        with httpd.connections_lock:
            return httpd.streams_left

    def clear(self) -> None:
        """Forget the recorded requests, any scripted items not yet used, and the counts of
        connections accepted and streams left."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
        self.prompt_cache.clear()
        httpd = self._httpd
        if httpd is not None:
            with httpd.connections_lock:
                httpd.accepted = httpd.streams_left = 0

    def queue(
        self,
        item: Reply | Fault,
        *,
        provider: ProviderName | None = None,
        model: str | None = None,
        times: int = 1,
    ) -> None:
        """Script the next ``times`` generation requests matching ``provider`` and ``model``.

        Each request takes the first pending item that matches; requests that match none get
        the default reply. Invalid requests (bad key, unknown model, ...) get their error and
        take nothing. Only generation endpoints (chat completions, responses, messages,
        generateContent/streamGenerateContent) take items.
        """
        if not isinstance(item, (Reply, Fault)):
            raise TypeError("queue() takes a Reply or a Fault")
        if provider is not None and provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._script.append(_Scripted(item, provider, model, times))

    def _take(self, provider: ProviderName, model: str | None) -> Reply | Fault | None:
        with self._lock:
            for entry in self._script:
                if entry.provider not in (None, provider) or entry.model not in (None, model):
                    continue
                entry.remaining -= 1
                if entry.remaining == 0:
                    self._script.remove(entry)
                return entry.item
        return None

    def _record(self, incoming: Incoming, route: Route) -> None:
        model = route.model
        body = incoming.body
        if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
        recorded = RecordedRequest(
            provider=route.provider,
            method=incoming.method,
            path=incoming.path,
            query=dict(incoming.query),
            headers=dict(incoming.headers),
            body=body,
            model=model,
            stream=route.stream,
        )
        with self._lock:
            self._requests.append(recorded)
