"""Client keys: ``Authorization: Bearer <key>``, checked against the sha256 hashes in the config.

The proxy never holds a client key: it hashes what the client presents and looks the hash up.
A key past its ``expires`` is refused (401 ``key_expired``).
The key's id in the usage log is the first 12 hex digits of that hash
(:func:`orkestra.usage.key_id_for`). With no keys configured every request is served; the
server then binds to 127.0.0.1 only (:func:`orkestra.server.run_server` refuses anything else).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orkestra.server.errors import ProxyError
from orkestra.server.keys import KeyConfig

__all__ = ["Client", "KeyStore"]

_MISSING = (
    "You didn't provide an API key. Pass your orkestra key in an Authorization header using "
    "Bearer auth (Authorization: Bearer YOUR_KEY); with the openai client: api_key=YOUR_KEY."
)
_WRONG = "Incorrect API key provided. Use a key this orkestra proxy was configured with."


@dataclass(frozen=True)
class Client:
    """Who is calling: the key's config name and its usage-log id (both None without keys)."""

    name: str | None = None
    key_id: str | None = None


ANONYMOUS = Client()


def _unauthorized(message: str, code: str = "invalid_api_key") -> ProxyError:
    return ProxyError(
        401,
        message,
        code=code,
        headers={"www-authenticate": 'Bearer realm="orkestra"'},
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class KeyStore:
    """The configured keys, by hash. ``now``: the clock expiries are read against."""

    def __init__(
        self, keys: Sequence[KeyConfig], now: Callable[[], dt.datetime] = _utc_now
    ) -> None:
        self._by_hash = {key.sha256: Client(key.name, key.key_id) for key in keys}
        self._expires = {key.sha256: key.expires for key in keys if key.expires is not None}
        self.now = now

    @property
    def required(self) -> bool:
        """Whether requests must present a key (any key is configured)."""
        return bool(self._by_hash)

    def authenticate(self, authorization: str | None) -> Client:
        """The client presenting ``authorization`` (the header's value), or a 401."""
        if not self._by_hash:
            return ANONYMOUS
        if not authorization:
            raise _unauthorized(_MISSING)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(_MISSING)
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        client = self._by_hash.get(digest)
        if client is None:
            raise _unauthorized(_WRONG)
        expires = self._expires.get(digest)
        if expires is not None and self.now() >= expires:
            raise _unauthorized(
                f"This orkestra key expired on {expires.isoformat()}; ask the proxy's operator "
                "for a new one.",
                "key_expired",
            )
        return client
