"""Listening sockets for orkestra's own servers (the proxy and the dashboard), and the
``Host`` check both apply: a server on this machine answers only to this machine's names, so a
web page whose own name has been rebound to 127.0.0.1 (DNS rebinding) cannot read it."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection

from orkestra.errors import ConfigurationError

__all__ = [
    "ANY_HOST",
    "LOOPBACK_NAMES",
    "allowed_hosts_for",
    "host_allowed",
    "host_name",
    "is_loopback",
    "listen",
]

LOOPBACK_NAMES: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})
ANY_HOST = "*"


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower-cased: ``[::1]:8333`` -> ``::1``,
    ``Example.com:80`` -> ``example.com``, ``::1`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def host_allowed(header: str | None, allowed: Collection[str]) -> bool:
    """Whether a request with this ``Host`` header (None: none sent) is for a name in
    ``allowed`` (``"*"``: any name)."""
    if ANY_HOST in allowed:
        return True
    return header is not None and host_name(header) in allowed


def allowed_hosts_for(host: str, allow_remote: bool = False) -> frozenset[str]:
    """The ``Host`` names a server listening on ``host`` answers to: this machine's names
    (and ``host`` itself), or any name once it is served to other machines."""
    if allow_remote and not is_loopback(host):
        return frozenset({ANY_HOST})
    return LOOPBACK_NAMES | {host.strip("[]").lower()}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.1``, ``::1``, ``localhost``...)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int, *, backlog: int, in_use_hint: str) -> socket.socket:
    """A bound, listening TCP socket; a clear ConfigurationError when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host!r}: {exc}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}){in_use_hint}"
        ) from exc
    return sock
