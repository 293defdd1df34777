"""How often, how soon and for how long a failing call is tried again; per-call timeouts.

Our layer owns retries: the SDK clients are built with their own retries off, so nothing is
retried twice. A delay the provider asks for (``retry-after-ms``, ``retry-after``, Gemini's
``RetryInfo``; parsed into :attr:`ProviderError.retry_after`) is honoured up to
``retry_after_cap``; a longer ask is not slept on: the call fails over to the next candidate, or
raises with ``retry_after`` on the error so the caller can decide.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orkestra.errors import InvalidRequestError, OrkestraError, ProviderError

__all__ = ["RetryPolicy", "Timeouts"]

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_POOL_TIMEOUT = 30.0


def _non_negative(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidRequestError(f"{name} must be a finite number ≥ 0, not {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter, and a deadline for the whole call.

    >>> RetryPolicy(max_retries=4, deadline=30.0)  # doctest: +SKIP

    Args:
        max_retries: further tries of the same model after a retryable failure (429, 408, 409,
            5xx, Anthropic's 529, timeouts, connection errors). After them the call falls back.
        base_delay: the first backoff's upper bound, in seconds; it doubles each retry...
        max_delay: ...up to this bound. The actual sleep is uniform in [0, bound] ("full
            jitter"), so many clients retrying together spread out.
        retry_after_cap: the longest provider-requested delay we sleep for.
        deadline: seconds from the start of the call after which no new attempt starts and no
            backoff sleeps (None: no deadline). An attempt already running is bounded by the
            timeouts, not cut by the deadline, so a long answer is never thrown away.
        sleep, clock, random: injectable for tests (``time.sleep``, ``time.monotonic``,
            ``random.random``).
    """

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 20.0
    deadline: float | None = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise InvalidRequestError(
                f"max_retries must be an integer ≥ 0, not {self.max_retries!r}"
            )
        for name in ("base_delay", "max_delay", "retry_after_cap"):
            _non_negative(name, getattr(self, name))
        _non_negative("deadline", self.deadline, allow_none=True)

    def backoff(self, retry: int) -> float:
        """The sleep before retry number ``retry`` (1, 2, ...) when the provider named none."""
        bound = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry - 1))
        return bound * self.random()

    def delay(self, error: OrkestraError, retry: int) -> float | None:
        """How long to wait before retrying after ``error``; None: do not retry this model."""
        if not isinstance(error, ProviderError) or not error.retryable:
            return None
        if error.retry_after is not None and error.retry_after > 0:
            if error.retry_after > self.retry_after_cap:
                return None
            return float(error.retry_after)
        return self.backoff(retry)


@dataclass(frozen=True)
class Timeouts:
    """Per-attempt timeouts, in seconds.

    ``connect``: to open the connection. ``read``: the longest wait for the next bytes of the
    answer (a stream that keeps sending is never cut; a silent one is). ``pool``: with
    ``Provider(max_connections=N)``, the longest a call waits for one of the N connections
    before :class:`~orkestra.PoolTimeoutError` (nothing sent). ``Provider(timeout=30)`` is
    ``Timeouts(connect=5, read=30)``. google-genai takes one timeout for everything: Gemini
    calls use ``read`` for both.
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    pool: float = DEFAULT_POOL_TIMEOUT

    def __post_init__(self) -> None:
        _non_negative("connect timeout", self.connect)
        _non_negative("read timeout", self.read)
        _non_negative("pool timeout", self.pool)
        if self.connect == 0 or self.read == 0:
            raise InvalidRequestError("timeouts must be > 0")

    @classmethod
    def of(cls, value: float | Timeouts) -> Timeouts:
        """``Timeouts`` from a ``Provider(timeout=...)`` argument (seconds, or a ``Timeouts``)."""
        if isinstance(value, Timeouts):
            return value
        _non_negative("timeout", value)
        seconds = float(value)
        return cls(connect=min(DEFAULT_CONNECT_TIMEOUT, seconds), read=seconds)
