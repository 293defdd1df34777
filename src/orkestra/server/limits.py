"""What each client key may do besides spending (budgets are :mod:`orkestra.server.budgets`).

- **Models** (``models``): the names a key may ask for, exact or with ``*``. A routed name is
  matched as asked (``orkestra/auto``, ``orkestra/openai``); a pass-through model as asked and
  as the model it resolves to, bare and with its provider (``gpt-4o-mini`` and
  ``openai/gpt-4o-mini``), so ``openai/*`` allows every OpenAI model by any of its names. Any
  other: **403** ``model_not_allowed``; ``GET /v1/models`` lists only what the key may use.
- **Requests a minute** (``rpm``): over the last 60 s; the next one gets **429**
  ``rate_limit_exceeded`` (type ``requests``) with ``retry-after`` (when the oldest leaves the
  window) and OpenAI's ``x-ratelimit-*-requests`` headers.
- **Tokens a minute** (``tpm``): prompt + completion tokens of the calls that ended in the
  last 60 s (billed by every attempt); while they are at or over ``tpm``, **429**
  ``rate_limit_exceeded`` (type ``tokens``). A call is let in while the minute is under the
  limit and counted when it ends, so the call that crosses the limit is not cut.
- **In flight** (``max_parallel``): requests being served at once, a stream until its end;
  the next gets **429** ``rate_limit_exceeded`` with ``retry-after: 1``.

These three are counted in each process: with ``--workers N`` each worker takes ``1/N`` of
them (rounded up), and each replica enforces them on its own. Requests refused here, like a
bad key, reach no provider and are not recorded as calls. ``expires`` is checked with the key
(:mod:`orkestra.server.auth`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from orkestra.server.errors import ProxyError
from orkestra.server.keys import KeyConfig

__all__ = ["KeyLimits", "Permit"]

WINDOW = 60.0


def model_allowed(patterns: Sequence[str] | None, names: Iterable[str]) -> bool:
    """Whether any of ``names`` matches any of ``patterns`` (None: everything is allowed)."""
    if patterns is None:
        return True
    return any(fnmatchcase(name, pattern) for name in names for pattern in patterns)


def not_allowed(model: str) -> ProxyError:
    return ProxyError(
        403,
        f"This orkestra key may not use the model `{model}`; ask the proxy's operator to add it "
        "to the key's models.",
        param="model",
        code="model_not_allowed",
    )


@dataclass
class _Usage:
    """One key's last minute and what it has in flight."""

    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_total: int = 0
    in_flight: int = 0

    def forget_before(self, horizon: float) -> None:
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.token_total -= self.tokens.popleft()[1]


def _seconds(value: float) -> dict[str, str]:
    value = max(value, 0.001)
    return {"retry-after": str(max(1, math.ceil(value))), "retry-after-ms": str(round(value * 1e3))}


class Permit:
    """A request let in: :meth:`release` it once when it ends, with the tokens it used."""

    def __init__(self, limits: KeyLimits | None, key_id: str | None) -> None:
        self._limits = limits
        self._key_id = key_id
        self._released = False

    def release(self, tokens: int = 0) -> None:
        if self._released:
            return
        self._released = True
        if self._limits is not None and self._key_id is not None:
            self._limits._release(self._key_id, tokens)


NO_LIMITS = Permit(None, None)


class KeyLimits:
    """The per-key model allow-lists and rate limits of one app."""

    def __init__(
        self, keys: Sequence[KeyConfig], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self._keys = {key.key_id: key for key in keys}
        self._usage: dict[str, _Usage] = {key.key_id: _Usage() for key in keys}
        self._lock = threading.Lock()

    def models_of(self, key_id: str | None) -> tuple[str, ...] | None:
        key = self._keys.get(key_id) if key_id is not None else None
        return None if key is None else key.models

    def check_model(self, key_id: str | None, requested: str, resolved: Iterable[str]) -> None:
        """403 unless the key may use ``requested`` (or one of the names it resolves to)."""
        if not model_allowed(self.models_of(key_id), [requested, *resolved]):
            raise not_allowed(requested)

    def admit(self, key_id: str | None) -> Permit:
        """Let a request in, or raise a 429 saying which limit and when to come back."""
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None or (key.rpm is None and key.tpm is None and key.max_parallel is None):
            return NO_LIMITS
        assert key_id is not None
        now = self.clock()
        with self._lock:
            usage = self._usage[key_id]
            usage.forget_before(now - WINDOW)
            if key.rpm is not None and len(usage.requests) >= key.rpm:
                wait = usage.requests[0] + WINDOW - now
                raise self._limited(
                    key, "requests", f"{key.rpm} requests a minute", wait, key.rpm, 0
                )
            if key.tpm is not None and usage.token_total >= key.tpm:
                wait = self._tokens_free_in(usage, key.tpm, now)
                raise self._limited(
                    key,
                    "tokens",
                    f"{key.tpm:,} tokens a minute ({usage.token_total:,} used)",
                    wait,
                    key.tpm,
                    0,
                )
            if key.max_parallel is not None and usage.in_flight >= key.max_parallel:
                raise self._limited(
                    key, "requests", f"{key.max_parallel} requests at once", 1.0, None, None
                )
            usage.requests.append(now)
            usage.in_flight += 1
        return Permit(self, key_id)

    def _release(self, key_id: str, tokens: int) -> None:
        now = self.clock()
        with self._lock:
            usage = self._usage[key_id]
            usage.in_flight = max(0, usage.in_flight - 1)
            if tokens > 0 and self._keys[key_id].tpm is not None:
                usage.tokens.append((now, tokens))
                usage.token_total += tokens

    @staticmethod
    def _tokens_free_in(usage: _Usage, tpm: int, now: float) -> float:
        """Seconds until enough of the minute's tokens leave it to be under ``tpm``."""
        total = usage.token_total
        for at, tokens in usage.tokens:
            total -= tokens
            if total < tpm:
                return at + WINDOW - now
        return WINDOW

    @staticmethod
    def _limited(
        key: KeyConfig,
        kind: str,
        limit: str,
        wait: float,
        ceiling: int | None,
        remaining: int | None,
    ) -> ProxyError:
        headers = _seconds(wait)
        if ceiling is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(ceiling)
            headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
            headers[f"x-ratelimit-reset-{kind}"] = f"{max(wait, 0.001):.3f}s"
        return ProxyError(
            429,
            f"Rate limit reached for this orkestra key ({key.name}): {limit}. Try again in "
            f"{max(wait, 0.001):.1f} s.",
            type=kind,
            code="rate_limit_exceeded",
            headers=headers,
        )
