"""``orkestra serve``: load the config, check where it may listen, and serve with uvicorn.

With no client keys configured the proxy answers anyone who can reach it, so it listens on this
machine only (127.0.0.1, ::1, localhost) and says so; any other address is refused until keys
are configured.

``--workers N`` (N > 1): the parent checks the config, opens the usage log once (so its
migrations run once), binds the socket and hands it to N worker processes (uvicorn's
supervisor: spawned, each building its own app, restarted if one dies). What each worker keeps
to itself and what they share is in ``docs/deploy.md``: the usage log and key budgets are
shared through the database, metrics through prometheus-client's multiprocess directory (a
fresh one per run), while circuit breakers and sticky-session pins are per worker, and a
provider's ``budget_usd`` is split evenly between the workers.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE

from orkestra._net import is_loopback, listen
from orkestra.errors import ConfigurationError, OrkestraError
from orkestra.server.app import create_app
from orkestra.server.config import ServerConfig, load_config
from orkestra.server.metrics import MULTIPROC_ENV
from orkestra.server.protocol import (
    BACKLOG,
    MAX_HEAD_BYTES,
    GuardedH11Protocol,
    Limits,
    fit_descriptors,
)

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
    sock = listen(host, port, backlog=BACKLOG, in_use_hint="; choose another --port")
    sock.set_inheritable(True)
    return sock


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus one line per call from ``orkestra.server`` (this is a process
    entry point: configuring logging is its job). Warnings and errors, uvicorn's and asyncio's
    included, are throttled: a flood of bad requests logs a line a minute per kind, with a
    count, not a line per request (:class:`~orkestra.server.logs.ThrottleFilter`)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"throttle": {"()": "orkestra.server.logs.ThrottleFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["throttle"]
    config["loggers"]["orkestra"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["asyncio"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _uvicorn_config(
    app: Any, config: ServerConfig, limits: Limits, **options: Any
) -> uvicorn.Config:
    """uvicorn with the proxy's connection limits (:mod:`orkestra.server.protocol`).

    uvicorn's ``limit_concurrency`` is not used: it counts the same open connections, but only
    acts on a request whose head has arrived (a slow client never gets there), answers in plain
    text and logs a warning per refusal; the connection cap acts when a connection opens."""
    settings = uvicorn.Config(
        app,
        lifespan="on",
        access_log=False,  # the proxy logs each call itself, without keys
        server_header=False,
        timeout_graceful_shutdown=10,
        log_level="info",
        log_config=_log_config(),
        http=GuardedH11Protocol,
        backlog=BACKLOG,
        timeout_keep_alive=config.keep_alive_timeout,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        **options,
    )
    settings.orkestra_limits = limits  # type: ignore[attr-defined]  # read by the protocol
    return settings


@dataclasses.dataclass(frozen=True)
class WorkerApp:
    """What each worker process runs to build its app (pickled to it: the config the parent
    checked, not a second reading of the file)."""

    config: ServerConfig

    def __call__(self) -> Starlette:
        try:
            return create_app(self.config)
        except OrkestraError as exc:
            # uvicorn's supervisor stops, rather than restarting a worker that cannot start.
            logger.error("orkestra serve: a worker could not start: %s", exc)
            sys.exit(STARTUP_FAILURE)


def per_worker(config: ServerConfig, workers: int) -> ServerConfig:
    """The config each of ``workers`` processes serves: a cap kept in each process's memory (a
    provider's; a key's when there is no usage log to share it through) split evenly, so that
    together they never spend more than it; a key's rpm, tpm and max_parallel (counted in each
    process) split too, rounded up."""
    providers = tuple(
        p if p.budget_usd is None else dataclasses.replace(p, budget_usd=p.budget_usd / workers)
        for p in config.providers
    )

    def share(value: int | None) -> int | None:
        return None if value is None else -(-value // workers)

    keys = tuple(
        dataclasses.replace(
            k,
            budget_usd=k.budget_usd
            if config.usage_log or k.budget_usd is None
            else k.budget_usd / workers,
            rpm=share(k.rpm),
            tpm=share(k.tpm),
            max_parallel=share(k.max_parallel),
        )
        for k in config.keys
    )
    return dataclasses.replace(config, providers=providers, keys=keys, workers=workers)


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """prometheus-client's multiprocess directory for this run: the operator's
    ``PROMETHEUS_MULTIPROC_DIR`` if set, else a fresh temporary one, removed at the end (stale
    files of an earlier run would add its counts to this one's)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="orkestra-metrics-") as path:
        os.environ[MULTIPROC_ENV] = path
        try:
            yield path
        finally:
            os.environ.pop(MULTIPROC_ENV, None)


def run_server(
    config_path: str | os.PathLike[str] | None = None,
    host: str | None = None,
    port: int | None = None,
    *,
    workers: int | None = None,
    announce: Callable[[str], None] = _announce,
) -> None:
    """Serve the proxy in the foreground until Ctrl-C or SIGTERM.

    ``config_path``: a TOML or YAML file (default: serve every provider whose key variable is
    set). ``host``/``port``/``workers``: override the config's ``[server]`` values (``port=0``:
    any free port; ``workers``: processes sharing the port). Raises
    :class:`~orkestra.ConfigurationError`, before listening, on an invalid config, a missing key
    variable or an address it must not or cannot listen on.
    """
    config = load_config(config_path)
    host = config.host if host is None else host
    port = config.port if port is None else port
    workers = config.workers if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise ConfigurationError(f"--workers: must be an integer in [1, 1024], not {workers!r}")
    check_host(config, host)
    # The app answers to the names of the address it really listens on (--host included).
    config = dataclasses.replace(config, host=host, port=port)
    # Built here even with workers: every error the workers would meet is raised now, before
    # listening, and the usage log's migrations run once.
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
    limits, lowered = fit_descriptors(
        Limits(config.max_connections, config.header_timeout), config.max_concurrency
    )
    if lowered:
        announce(f"orkestra serve: {lowered}")
    if workers == 1:
        server = uvicorn.Server(_uvicorn_config(app, config, limits))
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
        return
    app.state.proxy.close()  # each worker builds its own
    _serve_workers(per_worker(config, workers), sock, workers, limits, announce)


def _serve_workers(
    config: ServerConfig,
    sock: socket.socket,
    workers: int,
    limits: Limits,
    announce: Callable[[str], None],
) -> None:
    from uvicorn.supervisors import Multiprocess

    split = [p.name for p in config.providers if p.budget_usd is not None]
    if not config.usage_log:
        split += [f"key {k.name}" for k in config.keys if k.budget_usd is not None]
    announce(
        f"orkestra serve: {workers} worker processes"
        + (f"; each may spend 1/{workers} of the budget_usd of {', '.join(split)}" if split else "")
    )
    with metrics_directory():
        supervisor = Multiprocess(
            _uvicorn_config(WorkerApp(config), config, limits, workers=workers, factory=True),
            sockets=[sock],
        )
        with contextlib.suppress(KeyboardInterrupt):
            supervisor.run()
