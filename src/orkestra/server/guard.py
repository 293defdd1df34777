"""Keeping web pages out: the proxy serves programs, and the browser pages its config names.

A proxy without client keys spends the provider keys of whoever runs it for anyone who can send
it a request, so it listens on 127.0.0.1 only. That leaves the browser on the same machine:

- **DNS rebinding.** A page on ``evil.example`` has its name resolve to 127.0.0.1, and its
  script calls "its own" server, which is the proxy, and reads the answers (same origin, so no
  CORS). The ``Host`` header still says ``evil.example``: a request for a name the proxy is not
  is refused (**421** ``invalid_host``), as the dashboard does (:func:`orkestra._net.host_allowed`).
  Without client keys the proxy answers to this machine's names only; with keys, to any name
  (the key protects it) unless ``server.allowed_hosts`` says otherwise.
- **Cross-site requests (CSRF).** A page anywhere can make the browser POST to 127.0.0.1 without
  asking first (a "simple" request: ``text/plain``, no custom header), spending money even if
  it cannot read the answer. Browsers say where a request comes from (``Origin``,
  ``Sec-Fetch-Site``); a request from a page whose origin is not in ``server.allowed_origins``
  is refused (**403** ``origin_not_allowed``), its CORS preflight included; and a POST body
  must be ``application/json`` (**415**, see the app), which no page can send cross-site
  without a preflight.

Origins the config allows get CORS (Starlette's ``CORSMiddleware``): preflights are answered,
answers carry ``access-control-allow-origin`` and expose the ``x-orkestra-*`` headers.
Programs (the ``openai`` client, curl) send neither ``Origin`` nor ``Sec-Fetch-Site`` and are
not affected. Refusals are logged, at most one line a minute per kind.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from orkestra._net import ANY_HOST, host_allowed
from orkestra.server.errors import ProxyError, error_json
from orkestra.server.logs import Throttle

__all__ = ["EXPOSED_HEADERS", "BrowserGuard"]

logger = logging.getLogger("orkestra.server")

EXPOSED_HEADERS = (
    "x-request-id",
    "x-orkestra-provider",
    "x-orkestra-model",
    "x-orkestra-tier",
    "x-orkestra-cost-usd",
    "x-orkestra-savings-usd",
    "x-orkestra-ignored-params",
    "retry-after",
)
# What a browser says about where a request comes from, when it is not this site itself.
_FOREIGN_SITES = frozenset({"cross-site", "same-site"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class BrowserGuard:
    """The ASGI middleware in front of the proxy's routes: Host, Origin, then CORS."""

    def __init__(
        self, app: ASGIApp, *, hosts: Collection[str], origins: Collection[str] = ()
    ) -> None:
        self.hosts = frozenset(hosts)
        self.origins = frozenset(origins)
        self.any_origin = ANY_HOST in self.origins
        self.app: ASGIApp = app
        if self.origins:
            self.app = CORSMiddleware(
                app,
                allow_origins=sorted(self.origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],  # the openai JS client adds its x-stainless-* headers
                expose_headers=list(EXPOSED_HEADERS),
                max_age=600,
            )
        self._throttle = Throttle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"vary", b"Origin"),
                    *((k.encode(), v.encode()) for k, v in refusal.headers.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": error_json(refusal)})

    def _refusal(self, scope: Scope) -> ProxyError | None:
        host = _header(scope, b"host")
        if not host_allowed(host, self.hosts):
            shown = (host or "")[:100]
            self._throttle.log(
                logger,
                logging.WARNING,
                "host",
                "refused a request for host %r: this proxy answers to %s (server.allowed_hosts)",
                shown,
                ", ".join(sorted(self.hosts)),
            )
            return ProxyError(
                421,
                f"This orkestra proxy does not answer to the host name {shown!r}. If you reach it "
                "through that name on purpose, add it to server.allowed_hosts.",
                code="invalid_host",
            )
        origin = _header(scope, b"origin")
        site = _header(scope, b"sec-fetch-site")
        if origin is not None:
            allowed = self.any_origin or origin in self.origins
        else:
            allowed = site is None or site.strip().lower() not in _FOREIGN_SITES
        if allowed:
            return None
        shown = (origin or f"a {site} page")[:100]
        self._throttle.log(
            logger,
            logging.WARNING,
            "origin",
            "refused a request from the web page origin %r (server.allowed_origins)",
            shown,
        )
        return ProxyError(
            403,
            f"Requests from web pages ({shown}) are not accepted by this orkestra proxy: a page "
            "could spend its provider keys. To let a web app of yours call it, add its origin "
            "to server.allowed_origins.",
            code="origin_not_allowed",
        )
