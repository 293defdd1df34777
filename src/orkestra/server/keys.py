"""Client keys in the config: ``[[keys]]`` entries, and what each key may do.

A key is stored as the sha256 of the key (``sha256 = "…"``, or ``key_env`` naming the variable
that holds the key itself); what it may do, per key (as LiteLLM's virtual keys)::

    [[keys]]
    name = "team-a"
    sha256 = "3e8d89f76b0f…"
    budget_usd = 10                # dollars, over budget_window (default: all time)
    budget_window = "30d"
    models = ["gpt-4o-mini", "orkestra/*", "anthropic/*"]   # default: any model
    rpm = 60                       # requests a minute
    tpm = 100000                   # tokens (prompt + completion) a minute
    max_parallel = 4               # requests in flight at once
    expires = "2027-01-31"         # from then on: 401 key_expired (a date, a date-time)

The limits are enforced by :mod:`orkestra.server.limits` (``models``, ``rpm``, ``tpm``,
``max_parallel``) and :mod:`orkestra.server.auth` (``expires``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from orkestra.errors import ConfigurationError
from orkestra.server.config_schema import KeyEntry, validate_section
from orkestra.usage import parse_since

__all__ = ["MIN_KEY_LENGTH", "KeyConfig", "check_keys", "hash_key", "key_from_entry", "new_key"]

MIN_KEY_LENGTH = 24
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def hash_key(key: str) -> str:
    """The sha256 (hex) a config stores for a client key.

    >>> hash_key("orkestra-example-key")[:12]
    '3e8d89f76b0f'
    """
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random client key (256 bits), to hand to a client; store :func:`hash_key` of it."""
    return "ok-" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyConfig:
    """A client key: its name (shown in logs), the sha256 of the key, and what it may do: a
    budget (dollars, over ``budget_window`` such as ``"30d"``, else the key's whole history),
    the model names it may ask for (``models``; patterns with ``*``; None: any), requests and
    tokens a minute (``rpm``, ``tpm``), requests in flight at once (``max_parallel``), and the
    moment it stops working (``expires``, timezone-aware)."""

    name: str
    sha256: str = field(repr=False)
    budget_usd: float | None = None
    budget_window: str | None = None
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    expires: dt.datetime | None = None

    @property
    def key_id(self) -> str:
        """The id the usage log stores (``orkestra.usage.key_id_for`` of the key)."""
        return self.sha256[:12]


def _fail(source: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{source}: {message}")


def parse_expiry(value: object, where: str) -> dt.datetime | None:
    """``expires`` as a UTC-aware date-time: a date means its midnight UTC, a date-time
    without a zone is UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"{where}: {value!r} is not a date or date-time (2027-01-31, 2027-01-31T18:00:00Z)"
            ) from None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    raise ConfigurationError(f"{where}: must be a date or date-time, not {value!r}")


def check_keys(source: str, keys: tuple[KeyConfig, ...]) -> None:
    """Distinct names and keys, and every field by the file's rules."""
    names: set[str] = set()
    hashes: set[str] = set()
    for i, key in enumerate(keys):
        where = f"{source}: keys[{i}]"
        if not key.name or key.name in names:
            raise ConfigurationError(f"{where}.name: give each key a distinct name")
        if not _SHA256_HEX.fullmatch(key.sha256):
            raise ConfigurationError(f"{where}.sha256: expected 64 lower-case hex digits")
        if key.sha256 in hashes:
            raise ConfigurationError(f"{where}: the same key is configured twice")
        names.add(key.name)
        hashes.add(key.sha256)
        validate_section(
            source,
            f"keys[{i}]",
            {
                "name": key.name,
                "sha256": key.sha256,
                "budget_usd": key.budget_usd,
                "budget_window": key.budget_window,
                "models": None if key.models is None else list(key.models),
                "rpm": key.rpm,
                "tpm": key.tpm,
                "max_parallel": key.max_parallel,
            },
        )
        if key.budget_window is not None:
            try:
                parse_since(key.budget_window)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}.budget_window: {exc}") from None
        if key.expires is not None and key.expires.tzinfo is None:
            raise ConfigurationError(f"{where}.expires: give a timezone-aware date-time")


def key_from_entry(index: int, entry: KeyEntry, source: str, env: Mapping[str, str]) -> KeyConfig:
    """The :class:`KeyConfig` of the file's ``keys[index]``."""
    where = f"keys[{index}]"
    digest, key_env = entry.sha256, entry.key_env
    if (digest is None) == (key_env is None):
        raise _fail(
            source, f"{where}.sha256: give the key's sha256 or key_env (the variable holding it)"
        )
    if key_env is not None:
        key = env.get(key_env)
        if not key:
            raise _fail(source, f"{where}.key_env: the environment variable {key_env} is not set")
        if len(key) < MIN_KEY_LENGTH:
            raise _fail(
                source,
                f"{where}.key_env: the key in {key_env} is too short to be safe (under "
                f"{MIN_KEY_LENGTH} characters); make one with: python -m orkestra.server --new-key",
            )
        digest = hash_key(key)
    assert digest is not None
    digest = digest.strip().lower().removeprefix("sha256:")
    try:
        expires = parse_expiry(entry.expires, f"{where}.expires")
    except ConfigurationError as exc:
        raise _fail(source, str(exc)) from None
    return KeyConfig(
        entry.name,
        digest,
        entry.budget_usd,
        entry.budget_window,
        models=None if entry.models is None else tuple(entry.models),
        rpm=entry.rpm,
        tpm=entry.tpm,
        max_parallel=entry.max_parallel,
        expires=expires,
    )
