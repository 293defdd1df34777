"""The decision logic of one resilient call, with no I/O: a small state machine.

A :class:`Flow` is given the ordered candidate models of a request (:class:`Target`) and answers
"what next?" with a step: :class:`Call` a target, :class:`Sleep` a while, or :class:`Stop` with
an error. The driver (sync, async or streaming, in :mod:`orkestra.resilience.drivers`) does the
step and reports the :class:`Outcome` back. Retries, the circuit breaker, fallbacks, the deadline
and budget reservations all live here, once, for every entry point::

    flow = Flow(targets, policy, breaker)
    while not isinstance(step := flow.next_step(), Stop):
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
        else:
            flow.record(call(step.target))     # Outcome(error=None) ends the flow
    raise step.error
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from orkestra._types import Attempt, RoutingDecision, Usage
from orkestra.catalog import ModelInfo
from orkestra.errors import (
    CircuitOpenError,
    ModelNotFoundError,
    OrkestraError,
    ProviderError,
    RoutingError,
    StreamInterruptedError,
)
from orkestra.resilience.breaker import BreakerKey, CircuitBreaker
from orkestra.resilience.budget import Budget, Reservation, reserve_all
from orkestra.resilience.retry import RetryPolicy

__all__ = ["Call", "Flow", "Outcome", "Sleep", "Stop", "Target", "falls_back", "trips_breaker"]

logger = logging.getLogger("orkestra.resilience")


@dataclass(frozen=True)
class Target:
    """One candidate model of a request, with what it is expected to cost and the most it can
    cost (``hold``: what an attempt reserves on ``budgets``; None: ``expected_cost``)."""

    decision: RoutingDecision
    model: ModelInfo
    expected_cost: float = 0.0
    budgets: tuple[Budget, ...] = ()
    base_model: ModelInfo | None = None
    """The model savings are measured against (its provider's premium model)."""
    hold: float | None = None

    @property
    def reservation(self) -> float:
        return self.expected_cost if self.hold is None else self.hold

    @property
    def key(self) -> BreakerKey:
        return (self.decision.provider, self.model.id)

    def __str__(self) -> str:
        return f"{self.decision.provider}/{self.model.id}"


@dataclass(frozen=True)
class Call:
    """Make one attempt on ``target`` (``number`` counts attempts in this request from 1)."""

    target: Target
    number: int
    first: bool
    """True for the request's very first attempt."""


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Stop:
    error: OrkestraError


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. ``usage``/``cost`` are what it billed (or the provider reported)."""

    error: OrkestraError | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    latency_ms: float = 0.0
    final: bool = False
    """No further attempt may follow (a stream already handed text to the caller)."""


def falls_back(error: OrkestraError) -> bool:
    """Whether another model may be tried after ``error``.

    Transient failures and a model the provider does not serve (404: retired, not on this API)
    move on; a rejected key, a rejected request (400) or a configuration error surface at once:
    another model would fail the same way, or hide a mistake.
    """
    if isinstance(error, StreamInterruptedError):
        return False
    return isinstance(error, ProviderError) and (
        error.retryable or isinstance(error, ModelNotFoundError)
    )


def trips_breaker(error: OrkestraError) -> bool:
    """Whether ``error`` counts as a failure of the model for its circuit breaker."""
    if isinstance(error, CircuitOpenError) or not isinstance(error, ProviderError):
        return False
    return error.retryable or isinstance(error, (ModelNotFoundError, StreamInterruptedError))


class Flow:
    """Retries → circuit breaker → fallback → budget, for one request. Not thread-safe itself
    (one per request); the breaker and budgets it uses are."""

    def __init__(
        self, targets: Sequence[Target], policy: RetryPolicy, breaker: CircuitBreaker
    ) -> None:
        if not targets:
            raise RoutingError("no model to call")
        self.targets = tuple(targets)
        self.policy = policy
        self.breaker = breaker
        self.blocking = any(b.blocking for t in self.targets for b in t.budgets)
        """Reserving or settling waits on I/O (a :class:`SharedBudget`): an async driver
        steps the flow in a worker thread."""
        self.started = policy.clock()
        self._index = 0
        self._tries = 0  # attempts on the current target
        self._pending: tuple[Call, list[Reservation]] | None = None
        self._sleep = 0.0
        self._attempts: list[Attempt] = []
        self._reason: OrkestraError | None = None  # why the latest candidate did not answer
        self._done = False
        self._circuit_skips: list[Target] = []
        self._stopped: OrkestraError | None = None

    # -- what the drivers read -----------------------------------------------------------

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return tuple(self._attempts)

    @property
    def retries(self) -> int:
        """Attempts that repeated the model of the attempt before them."""
        keys = [(a.provider, a.model) for a in self._attempts]
        return sum(1 for before, now in itertools.pairwise(keys) if before == now)

    @property
    def fallbacks(self) -> int:
        """Times the request moved to another model after an attempt failed."""
        keys = [(a.provider, a.model) for a in self._attempts]
        return sum(1 for before, now in itertools.pairwise(keys) if before != now)

    def elapsed(self) -> float:
        return self.policy.clock() - self.started

    def _remaining(self) -> float | None:
        if self.policy.deadline is None:
            return None
        return self.policy.deadline - self.elapsed()

    # -- the state machine ---------------------------------------------------------------

    def next_step(self) -> Call | Sleep | Stop:
        """The next thing to do. After a :class:`Call`, report its :meth:`record` first."""
        if self._pending is not None:
            raise RuntimeError("record() the outcome of the pending call first")
        if self._done:
            return Stop(self._give_up())
        if self._sleep > 0:
            seconds, self._sleep = self._sleep, 0.0
            return Sleep(seconds)
        while self._index < len(self.targets):
            remaining = self._remaining()
            if self._attempts and remaining is not None and remaining <= 0:
                return Stop(self._give_up(f"the {self.policy.deadline:g} s deadline passed"))
            target = self.targets[self._index]
            if not self.breaker.allow(target.key):
                self._circuit_skips.append(target)
                logger.info("skipping %s: its circuit is open", target)
                self._advance()
                continue
            try:
                reservations = reserve_all(target.budgets, target.reservation)
            except OrkestraError as error:  # BudgetExceededError
                self.breaker.release(target.key)
                self._reason = error
                self._advance()
                continue
            call = Call(target, len(self._attempts) + 1, not self._attempts)
            self._pending = (call, reservations)
            return call
        return Stop(self._give_up())

    def record(self, outcome: Outcome) -> None:
        """Report how the pending call ended."""
        if self._pending is None:
            raise RuntimeError("no call is pending")
        call, reservations = self._pending
        self._pending = None
        target = call.target
        for reservation in reservations:
            reservation.settle(outcome.cost)
        error = outcome.error
        self._attempts.append(
            Attempt(
                provider=target.decision.provider,
                model=target.model.id,
                tier=target.decision.tier,
                error=None if error is None else type(error).__name__,
                message=None if error is None else str(error),
                status_code=getattr(error, "status_code", None),
                usage=outcome.usage,
                cost=outcome.cost,
                latency_ms=outcome.latency_ms,
            )
        )
        if error is None:
            self.breaker.success(target.key)
            self._done = True
            self._reason = None
            return
        if trips_breaker(error):
            self.breaker.failure(target.key)
        else:
            self.breaker.release(target.key)
        self._reason = error
        self._tries += 1
        if outcome.final or not falls_back(error):
            self._done = True
            return
        delay = None
        if self._tries <= self.policy.max_retries:
            delay = self.policy.delay(error, self._tries)
        remaining = self._remaining()
        if delay is not None and (remaining is None or delay < remaining):
            logger.debug("retrying %s in %.3f s after %s", target, delay, error)
            self._sleep = delay
            return
        self._advance()
        if self._index < len(self.targets):
            logger.info("falling back from %s after %s", target, error)

    def abandon(self, outcome: Outcome | None = None) -> None:
        """The caller stopped (closed a stream, was interrupted): settle and release the call."""
        if self._pending is None:
            return
        call, reservations = self._pending
        self._pending = None
        cost = outcome.cost if outcome else 0.0
        for reservation in reservations:
            reservation.settle(cost)
        self.breaker.release(call.target.key)
        self._done = True

    def _advance(self) -> None:
        self._index += 1
        self._tries = 0

    # -- giving up -----------------------------------------------------------------------

    def _give_up(self, why: str | None = None) -> OrkestraError:
        self._done = True
        if self._stopped is not None:
            return self._stopped
        error = self._reason
        if error is None and self._circuit_skips:
            error = self._circuit_open()
        elif error is None:  # pragma: no cover - a flow with targets always has a reason
            error = RoutingError("no model could be called")
        elif len(self._attempts) > 1 or why or self._circuit_skips:
            error.args = (f"{error}{self._summary(why)}",)
        error.attempts = tuple(self._attempts)
        self._stopped = error
        return error

    def _circuit_open(self) -> CircuitOpenError:
        waits = [self.breaker.retry_in(t.key) for t in self._circuit_skips]
        names = ", ".join(str(t) for t in self._circuit_skips)
        first = self._circuit_skips[0]
        return CircuitOpenError(
            f"every candidate is cooling down after repeated failures ({names}); "
            f"the first may be probed again in {min(waits):.1f} s",
            provider=first.decision.provider,
            model=first.model.id,
            retry_after=min(waits),
        )

    def _summary(self, why: str | None) -> str:
        tried = Counter(f"{a.provider}/{a.model}" for a in self._attempts)
        parts = [f"{name} ×{n}" if n > 1 else name for name, n in tried.items()]
        notes = [f"tried {', '.join(parts)}"] if parts else []
        if self._circuit_skips:
            notes.append("skipped (circuit open): " + ", ".join(map(str, self._circuit_skips)))
        if why:
            notes.append(why)
        return " [" + "; ".join(notes) + "]"
