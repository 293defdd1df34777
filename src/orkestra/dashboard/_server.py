"""Serving the dashboard with uvicorn: in the foreground (``orkestra dashboard``) or on a thread.

It listens on 127.0.0.1 unless told otherwise, and a non-loopback address (``0.0.0.0`` included)
needs ``allow_remote=True``: the page shows what every call cost and, when prompts are kept,
what was asked.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from orkestra._net import allowed_hosts_for, is_loopback, listen
from orkestra.dashboard._app import create_app
from orkestra.errors import ConfigurationError

__all__ = ["DEFAULT_PORT", "DashboardServer", "allowed_hosts_for", "is_loopback", "run_dashboard"]

DEFAULT_PORT = 8333


def _check_host(host: str, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise ConfigurationError(
            f"the dashboard listens on this machine only (127.0.0.1), not on {host!r}: it shows "
            "every call's cost and, when prompts are kept, the prompts. To serve it to other "
            "machines anyway, pass allow_remote=True (orkestra dashboard --allow-remote)"
        )


def _bind(host: str, port: int) -> socket.socket:
    sock = listen(
        host,
        port,
        backlog=128,
        in_use_hint=": is another dashboard running? Choose another port "
        "(port=..., orkestra dashboard --port ...)",
    )
    sock.setblocking(False)
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn, ending the dashboard's event streams first when it shuts down."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stopping.set()  # streams end within one poll, so connections close gracefully
        await super().shutdown(sockets=sockets)


class DashboardServer:
    """A dashboard app served by uvicorn on ``host:port`` (``port=0``: any free port).

    The address is taken when the server is made (an error there says so at once);
    :meth:`start` serves on a daemon thread, :meth:`serve` in the foreground.

    >>> with DashboardServer(create_app(log), port=0) as server:  # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(
        self,
        app: Starlette,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allow_remote: bool = False,
    ) -> None:
        _check_host(host, allow_remote)
        self.app = app
        self._sock = _bind(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"DashboardServer({self.url!r}, running={self.running})"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _make_server(self) -> _Uvicorn:
        stopping: threading.Event = self.app.state.stopping
        stopping.clear()
        config = uvicorn.Config(
            self.app,
            log_config=None,  # a library must not reconfigure its host's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = _Uvicorn(config, stopping)
        return self._server

    def start(self, timeout: float = 10.0) -> str:
        """Serve on a daemon thread; returns the URL once it answers."""
        if self.running:
            return self.url
        server = self._make_server()
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [self._sock]},
            name=f"orkestra-dashboard-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"the dashboard did not start on {self.url}")
            time.sleep(0.005)
        return self.url

    def serve(self) -> None:
        """Serve in the foreground until interrupted (Ctrl-C, SIGTERM)."""
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises it once it has stopped
            self._make_server().run(sockets=[self._sock])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (open event streams end first); the address is released."""
        self.app.state.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> DashboardServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _announce(url: str) -> None:
    print(f"orkestra dashboard: {url}  (Ctrl-C to stop)", file=sys.stderr, flush=True)


def run_dashboard(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    db_url: str | None = None,
    *,
    allow_remote: bool = False,
    open_browser: bool = False,
    on_ready: Callable[[str], None] | None = _announce,
) -> None:
    """Serve the dashboard over the usage log at ``db_url`` in the foreground, until Ctrl-C.

    ``db_url``: as :func:`orkestra.usage.open_usage_log` (default ``$ORKESTRA_DATABASE_URL``,
    else ``$ORKESTRA_HOME/usage.db``). ``on_ready`` is called with the URL once it listens.
    """
    from orkestra.usage import open_usage_log

    _check_host(host, allow_remote)
    log = open_usage_log(db_url)
    try:
        app = create_app(log, allowed_hosts=allowed_hosts_for(host, allow_remote))
        server = DashboardServer(app, host=host, port=port, allow_remote=allow_remote)
        if on_ready is not None:
            on_ready(server.url)
        if open_browser:
            webbrowser.open(server.url)
        server.serve()
    finally:
        log.close()
