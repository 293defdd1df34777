"""Circuit breaking per (provider, model): stop calling a model that keeps failing, for a while.

After ``failure_threshold`` consecutive failures a model's circuit *opens*: calls skip it (and
fall back) for ``cooldown`` seconds. Then it is *half-open*: exactly one call is let through as a
probe; its success closes the circuit, its failure opens it for another cooldown. The state is
per process (one registry, :func:`default_breaker`, shared by every ``Provider``) and
thread-safe. Only failures that say something about the model count (429, 5xx, 529, timeouts,
connection errors, 404, broken streams); a rejected key or request does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from orkestra.errors import InvalidRequestError

__all__ = ["BreakerKey", "CircuitBreaker", "default_breaker"]

BreakerKey = tuple[str, str]
"""(provider, model)."""

State = Literal["closed", "open", "half-open"]


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    """A thread-safe registry of circuits keyed by (provider, model).

    >>> breaker = CircuitBreaker(failure_threshold=3, cooldown=10.0)
    >>> breaker.allow(("openai", "gpt-4o-mini"))
    True
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int):
            raise InvalidRequestError("failure_threshold must be an integer ≥ 1")
        if failure_threshold < 1:
            raise InvalidRequestError("failure_threshold must be an integer ≥ 1")
        if not isinstance(cooldown, (int, float)) or cooldown < 0:
            raise InvalidRequestError("cooldown must be a number of seconds ≥ 0")
        self.failure_threshold = failure_threshold
        self.cooldown = float(cooldown)
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[BreakerKey, _Circuit] = {}

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failure_threshold={self.failure_threshold}, "
            f"cooldown={self.cooldown:g}, open={sorted(self.open_keys())})"
        )

    def _state(self, circuit: _Circuit, now: float) -> State:
        if circuit.opened_at is None:
            return "closed"
        return "open" if now < circuit.opened_at + self.cooldown else "half-open"

    def state(self, key: BreakerKey) -> State:
        with self._lock:
            circuit = self._circuits.get(key)
            return "closed" if circuit is None else self._state(circuit, self._clock())

    def open_keys(self) -> list[BreakerKey]:
        """The models being skipped right now."""
        with self._lock:
            now = self._clock()
            return [k for k, c in self._circuits.items() if self._state(c, now) == "open"]

    def allow(self, key: BreakerKey) -> bool:
        """Whether a call to ``key`` may go ahead now (in half-open state: the one probe).

        A True answer must be followed by :meth:`success`, :meth:`failure` or :meth:`release`.
        """
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None:
                return True
            state = self._state(circuit, self._clock())
            if state == "closed":
                return True
            if state == "open" or circuit.probing:
                return False
            circuit.probing = True
            return True

    def retry_in(self, key: BreakerKey) -> float:
        """Seconds until ``key`` may be probed (0 when it may be called now)."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.opened_at is None:
                return 0.0
            return max(0.0, circuit.opened_at + self.cooldown - self._clock())

    def success(self, key: BreakerKey) -> None:
        with self._lock:
            self._circuits.pop(key, None)

    def failure(self, key: BreakerKey) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            now = self._clock()
            if circuit.probing:  # the probe failed: another full cooldown
                circuit.probing = False
                circuit.opened_at = now
                return
            circuit.failures += 1
            if circuit.failures >= self.failure_threshold and circuit.opened_at is None:
                circuit.opened_at = now
            elif circuit.opened_at is not None and self._state(circuit, now) != "open":
                circuit.opened_at = now  # a call that started before the circuit opened

    def release(self, key: BreakerKey) -> None:
        """A granted call was not made, or its outcome says nothing about the model."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is not None:
                circuit.probing = False

    def reset(self) -> None:
        """Close every circuit (tests; after fixing a configuration)."""
        with self._lock:
            self._circuits.clear()


_DEFAULT = CircuitBreaker()


def default_breaker() -> CircuitBreaker:
    """The process-wide registry every ``Provider`` and ``MultiProvider`` uses by default."""
    return _DEFAULT
