"""``orkestra serve``: load the config, check where it may listen, and serve with uvicorn.

With no client keys configured the proxy answers anyone who can reach it, so it listens on this
machine only (127.0.0.1, ::1, localhost) and says so; any other address is refused until keys
are configured.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from orkestra._net import is_loopback, listen
from orkestra.errors import ConfigurationError
from orkestra.server.app import create_app
from orkestra.server.config import ServerConfig, load_config

__all__ = ["check_host", "is_loopback", "run_server"]

logger = logging.getLogger("orkestra.server")


def check_host(config: ServerConfig, host: str) -> None:
    """Refuse a non-loopback address when no client key is configured."""
    if not config.keys and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to listen on {host}: no client keys are configured, so anyone who can "
            "reach the proxy could spend your provider keys. Listen on 127.0.0.1, or add "
            "[[keys]] (name and sha256) to the config"
        )


def _bind(host: str, port: int) -> socket.socket:
    sock = listen(host, port, backlog=2048, in_use_hint="; choose another --port")
    sock.set_inheritable(True)
    return sock


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus one line per call from ``orkestra.server`` (this is a process
    entry point: configuring logging is its job)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["orkestra"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_server(
    config_path: str | os.PathLike[str] | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    announce: Callable[[str], None] = _announce,
) -> None:
    """Serve the proxy in the foreground until Ctrl-C or SIGTERM.

    ``config_path``: a TOML or YAML file (default: serve every provider whose key variable is
    set). ``host``/``port``: override the config's ``[server]`` values (``port=0``: any free
    port). Raises :class:`~orkestra.ConfigurationError`, before listening, on an invalid config,
    a missing key variable or an address it must not or cannot listen on.
    """
    config = load_config(config_path)
    host = config.host if host is None else host
    port = config.port if port is None else port
    check_host(config, host)
    app = create_app(config)
    try:
        sock = _bind(host, port)
    except BaseException:
        app.state.proxy.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    providers = ", ".join(config.provider_names)
    announce(
        f"orkestra serve: http://{shown}:{bound}/v1 (providers: {providers}; from {config.source})"
    )
    if not config.keys:
        announce(
            "orkestra serve: no client keys configured: any local client is served, and only "
            "on this machine (127.0.0.1)"
        )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            access_log=False,  # the proxy logs each call itself, without keys
            server_header=False,
            timeout_graceful_shutdown=10,
            log_level="info",
            log_config=_log_config(),
        )
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
