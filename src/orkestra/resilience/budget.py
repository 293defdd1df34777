"""Spend caps: per process, per ``Provider`` / ``MultiProvider`` (and, later, per proxy key).

Before each attempt the layer *reserves* the attempt's expected cost on every budget that
applies; a reservation that would pass a cap raises :class:`BudgetExceededError` before anything
is sent. After the attempt the reservation is settled with what the provider actually billed
(cache reads/writes and reasoning tokens included), so concurrent calls cannot all slip under
the cap at once. Near the cap (``prefer_cheaper_at``, a share of the cap) routing moves to the
cheapest candidate.

>>> budget = Budget(5.00, name="nightly-batch")      # doctest: +SKIP
>>> provider = Provider("openai", budget=budget)     # doctest: +SKIP
>>> set_process_budget(50.00)                        # every call in this process  # doctest: +SKIP
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from orkestra.errors import BudgetExceededError, InvalidRequestError

__all__ = ["Budget", "Reservation", "as_budget", "process_budget", "set_process_budget"]

DEFAULT_PREFER_CHEAPER_AT = 0.8
_EPSILON = 1e-9  # a billionth of a dollar: float sums of many small costs must not trip the cap


def _check_cap(cap: float | None) -> float | None:
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not math.isfinite(cap):
        raise InvalidRequestError(f"a budget cap must be a number of dollars, not {cap!r}")
    if cap < 0:
        raise InvalidRequestError(f"a budget cap must be ≥ 0, not {cap!r}")
    return float(cap)


def _check_share(share: float) -> float:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise InvalidRequestError(f"prefer_cheaper_at must be a share in [0, 1], not {share!r}")
    return float(share)


class Budget:
    """A thread-safe spend cap in US dollars. ``cap=None`` only counts (no limit).

    Args:
        cap: the most this budget may spend.
        prefer_cheaper_at: once spent + reserved + the call's expected cost reaches this share
            of the cap, calls go to the cheapest candidate model.
        name: shown in errors.
    """

    def __init__(
        self,
        cap: float | None,
        *,
        prefer_cheaper_at: float = DEFAULT_PREFER_CHEAPER_AT,
        name: str = "budget",
    ) -> None:
        self._cap = _check_cap(cap)
        self._prefer = _check_share(prefer_cheaper_at)
        self.name = name
        self._lock = threading.Lock()
        self._spent = 0.0
        self._reserved = 0.0

    def __repr__(self) -> str:
        cap = "unlimited" if self._cap is None else f"${self._cap:.6f}"
        return f"Budget({self.name!r}, cap={cap}, spent=${self.spent:.6f})"

    @property
    def cap(self) -> float | None:
        return self._cap

    @property
    def prefer_cheaper_at(self) -> float:
        return self._prefer

    def configure(self, cap: float | None, *, prefer_cheaper_at: float | None = None) -> Budget:
        """Change the cap (and threshold), keeping what was spent."""
        new_cap = _check_cap(cap)
        share = self._prefer if prefer_cheaper_at is None else _check_share(prefer_cheaper_at)
        with self._lock:
            self._cap, self._prefer = new_cap, share
        return self

    @property
    def spent(self) -> float:
        """Dollars billed so far."""
        with self._lock:
            return self._spent

    @property
    def reserved(self) -> float:
        """Dollars held by calls in flight (their expected cost)."""
        with self._lock:
            return self._reserved

    @property
    def remaining(self) -> float | None:
        with self._lock:
            if self._cap is None:
                return None
            return max(0.0, self._cap - self._spent - self._reserved)

    def _error(self, expected: float) -> BudgetExceededError:
        assert self._cap is not None
        committed = self._spent + self._reserved
        return BudgetExceededError(
            f"budget {self.name!r}: ${committed:.6f} spent or reserved of a ${self._cap:.6f} cap; "
            f"this call's expected ${expected:.6f} would pass it, so nothing was sent",
            budget=self.name,
            cap=self._cap,
            spent=committed,
            expected_cost=expected,
        )

    def _over(self, expected: float) -> bool:
        return self._cap is not None and self._spent + self._reserved + expected > (
            self._cap + _EPSILON
        )

    def check(self, expected_cost: float) -> None:
        """Raise :class:`BudgetExceededError` if a call expected to cost this would pass the cap."""
        with self._lock:
            if self._over(expected_cost):
                raise self._error(expected_cost)

    def near_cap(self, expected_cost: float = 0.0) -> bool:
        """Whether spend (with this call) has reached the ``prefer_cheaper_at`` share of the cap."""
        with self._lock:
            if self._cap is None:
                return False
            return self._spent + self._reserved + expected_cost >= self._prefer * self._cap

    def reserve(self, expected_cost: float) -> Reservation:
        """Hold ``expected_cost`` for a call about to start (raises if it would pass the cap)."""
        expected = max(0.0, float(expected_cost))
        with self._lock:
            if self._over(expected):
                raise self._error(expected)
            self._reserved += expected
        return Reservation(self, expected)

    def charge(self, cost: float) -> None:
        """Count ``cost`` dollars as spent."""
        with self._lock:
            self._spent += max(0.0, float(cost))

    def _settle(self, held: float, cost: float) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - held)
            self._spent += max(0.0, float(cost))

    def reset(self) -> None:
        """Forget what was spent (a new billing period)."""
        with self._lock:
            self._spent = 0.0


class Reservation:
    """Money held on a :class:`Budget` for one call; settle it once with the billed cost."""

    def __init__(self, budget: Budget, amount: float) -> None:
        self.budget = budget
        self.amount = amount
        self._settled = False

    def settle(self, cost: float) -> None:
        if not self._settled:
            self._settled = True
            self.budget._settle(self.amount, cost)


def as_budget(value: Budget | float | None, *, name: str) -> Budget | None:
    """A ``budget=`` argument as a :class:`Budget`: a number of dollars becomes a new one."""
    if value is None or isinstance(value, Budget):
        return value
    return Budget(value, name=name)


def reserve_all(budgets: Sequence[Budget], expected_cost: float) -> list[Reservation]:
    """Reserve on every budget, or on none (raising the first budget's error)."""
    held: list[Reservation] = []
    try:
        for budget in budgets:
            held.append(budget.reserve(expected_cost))
    except BudgetExceededError:
        for reservation in held:
            reservation.settle(0.0)
        raise
    return held


_PROCESS = Budget(None, name="process")


def process_budget() -> Budget:
    """The budget every call in this process counts against (no cap unless one is set)."""
    return _PROCESS


def set_process_budget(
    cap: float | None, *, prefer_cheaper_at: float = DEFAULT_PREFER_CHEAPER_AT
) -> Budget:
    """Cap what every call in this process may spend together (None: no cap)."""
    return _PROCESS.configure(cap, prefer_cheaper_at=prefer_cheaper_at)
