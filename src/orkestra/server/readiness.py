"""``GET /readyz``: whether this replica can serve calls now (``/healthz`` only says it is up).

Two checks, each with a time limit:

- ``providers``: each configured provider's key variable is set, the catalog has current
  models for it with prices, and the router is loaded (what the app warms up at start);
- ``usage_log``: the database answers (SQLite: the file and its directory are writable and a
  query on its tables answers; PostgreSQL: ``SELECT 1``).

200 ``{"status": "ready", "checks": {...}}`` when both pass, else 503 with ``"status": "not
ready"``, ``"failed"`` naming the checks that failed and each one's ``error``. A load balancer
takes a replica whose database is unreachable out of rotation instead of sending it calls it
could neither log nor budget.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread

from orkestra.catalog import today
from orkestra.server.config import ServerConfig
from orkestra.server.dispatch import Dispatcher
from orkestra.usage import UsageLog, scrub_secrets

__all__ = ["Readiness"]

logger = logging.getLogger("orkestra.server")

CHECK_TIMEOUT = 5.0


class Readiness:
    """The checks of one app. Probes run in threads of their own (never the call threads'),
    at most one per check at a time, each abandoned after :data:`CHECK_TIMEOUT` seconds."""

    def __init__(
        self,
        config: ServerConfig,
        dispatcher: Dispatcher,
        log: UsageLog | None,
        environ: Mapping[str, str] | None,
        *,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.log = log
        self.environ = environ
        self.timeout = timeout
        self.warmed = False
        self._limiters: dict[str, anyio.CapacityLimiter] = {}

    async def check(self) -> tuple[int, dict[str, Any]]:
        """The status code and the JSON body of ``/readyz``."""
        checks = {
            "providers": await self._run("providers", self._providers),
            "usage_log": await self._run("usage_log", self._usage_log),
        }
        failed = [name for name, result in checks.items() if not result["ok"]]
        body: dict[str, Any] = {"status": "not ready" if failed else "ready", "checks": checks}
        if failed:
            body["failed"] = failed
        return (503 if failed else 200), body

    async def _run(self, name: str, probe: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        limiter = self._limiters.get(name)
        if limiter is None:  # made in the event loop
            limiter = self._limiters[name] = anyio.CapacityLimiter(1)
        try:
            with anyio.fail_after(self.timeout):
                # abandon_on_cancel: a probe stuck in a database call is left to finish alone;
                # the limiter keeps a second one from piling up behind it.
                return await anyio.to_thread.run_sync(
                    probe, limiter=limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self.timeout:g} s"}
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, _describe(exc))
            return {"ok": False, "error": _describe(exc)}

    def _providers(self) -> dict[str, Any]:
        env = os.environ if self.environ is None else self.environ
        catalog = self.dispatcher.catalog
        day = today()
        for provider in self.config.providers:
            provider.api_key(env)  # raises ConfigurationError naming the variable
            current = [m for m in catalog.provider_models(provider.name) if not m.retired_on(day)]
            if not current:
                raise RuntimeError(f"the catalog has no current model for {provider.name}")
        if not self.warmed:
            self.dispatcher.warm_up()  # router, prices, SDK clients; cached once it worked
            self.warmed = True
        return {"ok": True, "providers": list(self.config.provider_names)}

    def _usage_log(self) -> dict[str, Any]:
        if self.log is None:
            return {"ok": True, "enabled": False}
        ping = getattr(self.log, "ping", None)
        if ping is None:  # a log of the caller's own without a probe: nothing to ask
            return {"ok": True, "backend": type(self.log).__name__, "checked": False}
        ping()
        return {"ok": True, "backend": _backend(self.log)}


def _backend(log: object) -> str:
    name = type(log).__name__
    return {"SQLiteUsageLog": "sqlite", "PostgresUsageLog": "postgresql"}.get(name, name)


def _describe(exc: BaseException) -> str:
    """The error in one line, without anything shaped like a secret (a database URL's password
    is never in psycopg's messages, but a key in some driver's could be)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return scrub_secrets(f"{type(exc).__name__}: {text}")[:500]
