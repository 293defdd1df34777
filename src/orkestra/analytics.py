"""Analytics: every call in the usage log, and a live dashboard of them.

>>> import orkestra as o
>>> o.set_analytics(True)  # doctest: +SKIP
'http://127.0.0.1:8333'

The library calls :func:`record_response` after each call it completes and :func:`record_error`
after each that fails; both write one record to the process's usage log
(:func:`orkestra.usage.default_usage_log`: ``ORKESTRA_USAGE_LOG=off`` turns recording off) and
never raise into the call: a failure to record is logged once, as a warning.

:func:`set_analytics` serves the dashboard (:mod:`orkestra.dashboard`) from this process, on a
daemon thread, over the same log. ``orkestra dashboard`` serves it from its own process.
"""

from __future__ import annotations

import atexit
import logging
import threading
import webbrowser
from typing import TYPE_CHECKING

from orkestra.errors import ConfigurationError
from orkestra.usage import UsageRecord, default_usage_log

if TYPE_CHECKING:
    from orkestra._types import Response, RoutingDecision
    from orkestra.dashboard import DashboardServer

__all__ = ["analytics_enabled", "record_error", "record_response", "set_analytics"]

logger = logging.getLogger("orkestra.analytics")

_lock = threading.Lock()
_server: DashboardServer | None = None
_address: tuple[str, int] | None = None  # the (host, port) the running server was asked for
_warned = False


def _failed(what: str, exc: Exception) -> None:
    global _warned  # noqa: PLW0603 - warn once per process, not once per call
    if _warned:
        logger.debug("analytics: %s failed: %s", what, exc)
        return
    _warned = True
    logger.warning(
        "analytics: %s failed, calls go on unrecorded (logged once): %s", what, exc, exc_info=exc
    )


def record_response(
    response: Response,
    *,
    prompt: str | None = None,
    status: str = "ok",
    source: str = "library",
    key_id: str | None = None,
) -> None:
    """Record a completed call in the usage log. Never raises.

    ``prompt`` is kept only when the log keeps prompts (``set_analytics(store_prompts=True)``
    or ``ORKESTRA_STORE_PROMPTS=1``); ``key_id`` is :func:`orkestra.usage.key_id_for` of the key.
    """
    try:
        log = default_usage_log()
        if log is None:
            return
        log.record(
            UsageRecord.from_response(
                response,
                status=status,
                key_id=key_id,
                prompt=prompt if log.store_prompts else None,
                source=source,
            )
        )
    except Exception as exc:
        _failed("recording a response", exc)


def record_error(
    provider: str | None,
    model: str | None,
    error: BaseException,
    *,
    prompt: str | None = None,
    routing: RoutingDecision | None = None,
    latency_ms: float = 0.0,
    source: str = "library",
    key_id: str | None = None,
) -> None:
    """Record a failed call (``status`` is the error's class name). Never raises."""
    try:
        log = default_usage_log()
        if log is None:
            return
        log.record(
            UsageRecord.from_error(
                error,
                provider=provider,
                model=model,
                routing=routing,
                latency_ms=latency_ms,
                key_id=key_id,
                prompt=prompt if log.store_prompts else None,
                source=source,
            )
        )
    except Exception as exc:
        _failed("recording an error", exc)


def set_analytics(
    enabled: bool = True,
    *,
    port: int = 8333,
    host: str = "127.0.0.1",
    store_prompts: bool = False,
    open_browser: bool = False,
    allow_remote: bool = False,
) -> str | None:
    """Serve the live dashboard from this process (or stop it); returns its URL.

    Calls are recorded in the usage log whether or not the dashboard runs; the page shows the
    log's history and every call as it lands. ``store_prompts=True`` keeps each call's prompt in
    the log from now on and shows its first 80 characters (off unless asked, here or with
    ``ORKESTRA_STORE_PROMPTS=1``). ``host`` must be a loopback address unless
    ``allow_remote=True``; ``port=0`` takes any free port. Calling it again with the same
    address returns the running dashboard's URL. ``set_analytics(False)`` stops it (and returns
    None); recording goes on.

    Raises :class:`~orkestra.ConfigurationError` when the usage log is off or cannot be opened,
    or the address cannot be listened on.
    """
    global _server, _address
    with _lock:
        if not enabled:
            _stop()
            return None
        log = default_usage_log()
        if log is None:
            raise ConfigurationError(
                "the dashboard shows the usage log, which is off (ORKESTRA_USAGE_LOG=off) or "
                "could not be opened (see the error logged on 'orkestra.usage')"
            )
        if store_prompts:
            log.store_prompts = True
        if _server is not None and _server.running and _address == (host, port):
            return _server.url
        _stop()
        from orkestra.dashboard import DashboardServer, create_app
        from orkestra.dashboard._server import allowed_hosts_for

        app = create_app(log, allowed_hosts=allowed_hosts_for(host, allow_remote))
        server = DashboardServer(app, host=host, port=port, allow_remote=allow_remote)
        url = server.start()
        _server, _address = server, (host, port)
        # Stop it before the usage log closes at exit (atexit runs the last registered first,
        # and the log registered when it opened), so no stream reads a closed log.
        atexit.unregister(_stop_at_exit)
        atexit.register(_stop_at_exit)
    if open_browser:
        webbrowser.open(url)
    return url


def analytics_enabled() -> bool:
    """Whether this process is serving the dashboard (:func:`set_analytics`)."""
    server = _server
    return server is not None and server.running


def _stop() -> None:
    global _server, _address  # noqa: PLW0603 - one dashboard per process
    if _server is not None:
        _server.stop()
    _server = _address = None


def _stop_at_exit() -> None:
    with _lock:
        _stop()
