"""Spend caps: per process, per ``Provider`` / ``MultiProvider``, per proxy key.

Before each attempt the layer *reserves* the attempt's worst case on every budget that applies
(:func:`worst_case_cost`: the prompt's tokens counted from above, the whole ``max_tokens`` of
output, at the model's prices); a reservation that would pass a cap raises
:class:`BudgetExceededError` before anything is sent. After the attempt the reservation is
settled with what the provider actually billed (cache reads/writes and reasoning tokens
included). Since no attempt can bill more than it reserved, concurrent calls cannot take a
budget past its cap: what is spent stays within the cap, except by what an attempt billed over
its reservation (the prompt's images and the providers' own framing are bounded by constants
that a provider could, in rare cases, exceed). Near the cap (``prefer_cheaper_at``, a share of
the cap) routing moves to the cheapest candidate.

A :class:`Budget` lives in this process. A :class:`SharedBudget` keeps its spend and its holds in
a :class:`SpendStore` (the usage log's database: :meth:`orkestra.usage.SQLUsageLog.spend_store`),
reserving and settling in one transaction each, so that several processes (proxy replicas)
share one cap with the same guarantee.

>>> budget = Budget(5.00, name="nightly-batch")      # doctest: +SKIP
>>> provider = Provider("openai", budget=budget)     # doctest: +SKIP
>>> set_process_budget(50.00)                        # every call in this process  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from orkestra.errors import BudgetExceededError, BudgetUnavailableError, InvalidRequestError

if TYPE_CHECKING:
    from orkestra.catalog import ModelInfo

__all__ = [
    "Budget",
    "Reservation",
    "SharedBudget",
    "SpendStore",
    "as_budget",
    "input_token_bound",
    "process_budget",
    "set_process_budget",
    "worst_case_cost",
]

logger = logging.getLogger("orkestra.resilience")

DEFAULT_PREFER_CHEAPER_AT = 0.8
EPSILON = 1e-9  # a billionth of a dollar: float sums of many small costs must not trip the cap
_EPSILON = EPSILON

# -- the worst case of one attempt -----------------------------------------------------------

MESSAGE_FRAMING_TOKENS = 8
"""Tokens a provider may add around each message (role markers, separators): OpenAI's chat
format adds 3-4, Anthropic's and Gemini's fewer."""
REQUEST_FRAMING_TOKENS = 16
"""Tokens added once per request (the reply's priming, a system wrapper)."""
TOOL_FRAMING_TOKENS = 1_024
"""Tokens a provider may add when tools are declared (Anthropic's tool-use system prompt is
~350; OpenAI's and Gemini's are smaller), beyond the declarations' own text."""
IMAGE_TOKEN_BOUND = 2_500
"""Tokens one image is counted as: OpenAI's high-detail images cost at most ~1,100 tokens
(gpt-4o) to ~2,500 (gpt-4.1-mini's patches), Anthropic's ~1,600, Gemini 3's at most 1,120;
Gemini 2.5 tiles a very large image at 258 tokens per tile and may exceed it."""
LONG_CONTEXT_TOKENS = 128_000
"""Above this many input tokens a model may have a dearer long-context price: the worst case
is then priced by genai-prices' own tiers (slower) rather than the base price."""


def input_token_bound(
    text: str, *, messages: int = 1, images: int = 0, tools: bool = False, extra: str = ""
) -> int:
    """At least as many tokens as any provider bills for a prompt with this text.

    Every token of a byte-level BPE (OpenAI, Anthropic) and of SentencePiece with byte fallback
    (Gemini) stands for at least one UTF-8 byte, so a text is never more tokens than bytes;
    to that come each message's framing, the images and the tool declarations (``extra``: the
    JSON of the tools and of a ``response_format`` schema, which are billed as prompt).

    >>> input_token_bound("What is the capital of Japan?")
    53
    """
    size = len(text.encode("utf-8", "surrogatepass")) + len(extra.encode("utf-8", "surrogatepass"))
    framing = REQUEST_FRAMING_TOKENS + MESSAGE_FRAMING_TOKENS * max(1, messages)
    return size + framing + IMAGE_TOKEN_BOUND * images + (TOOL_FRAMING_TOKENS if tools else 0)


def worst_case_cost(model: ModelInfo, input_tokens: int, max_tokens: int) -> float:
    """The most one attempt on ``model`` can bill: ``input_tokens`` (a bound, e.g.
    :func:`input_token_bound`; at most the model's context window) all written to the
    provider's prompt cache if that is dearer, and ``max_tokens`` of output (at most the
    model's output limit; reasoning tokens are part of it)."""
    from orkestra._types import Usage
    from orkestra.catalog import cost_of, price_of

    tokens_in = max(0, min(input_tokens, model.context_window))
    tokens_out = max(0, min(max_tokens, model.max_output_tokens))
    price = price_of(model)
    if tokens_in <= LONG_CONTEXT_TOKENS or model.price is not None:
        per_input = max(price.input, price.cache_write or 0.0)
        return (tokens_in * per_input + tokens_out * price.output) / 1e6
    plain = cost_of(model, Usage(input_tokens=tokens_in, output_tokens=tokens_out)).total
    cached = cost_of(
        model,
        Usage(input_tokens=tokens_in, cache_write_tokens=tokens_in, output_tokens=tokens_out),
    ).total
    return max(plain, cached)


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
    """A thread-safe spend cap in US dollars, in this process. ``cap=None`` only counts.

    Args:
        cap: the most this budget may spend.
        prefer_cheaper_at: once spent + reserved + the call's expected cost reaches this share
            of the cap, calls go to the cheapest candidate model.
        name: shown in errors.
    """

    blocking = False
    """Whether reserving and settling wait on I/O (a database transaction): async calls then
    make them in a worker thread, never on the event loop."""

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
        return f"{type(self).__name__}({self.name!r}, cap={cap}, spent=${self.spent:.6f})"

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
        """Dollars held by calls in flight (their worst case)."""
        with self._lock:
            return self._reserved

    @property
    def remaining(self) -> float | None:
        with self._lock:
            if self._cap is None:
                return None
            return max(0.0, self._cap - self._spent - self._reserved)

    def _error(self, expected: float, committed: float) -> BudgetExceededError:
        assert self._cap is not None
        return BudgetExceededError(
            f"budget {self.name!r}: ${committed:.6f} spent or reserved of a ${self._cap:.6f} cap; "
            f"this call could cost up to ${expected:.6f}, which would pass it, so nothing was "
            "sent (a lower max_tokens lowers what a call may cost)",
            budget=self.name,
            cap=self._cap,
            spent=committed,
            expected_cost=expected,
        )

    def _over(self, expected: float) -> bool:
        return self._cap is not None and self._spent + self._reserved + expected > (
            self._cap + EPSILON
        )

    def check(self, expected_cost: float) -> None:
        """Raise :class:`BudgetExceededError` if a call that may cost this would pass the cap."""
        with self._lock:
            if self._over(expected_cost):
                raise self._error(expected_cost, self._spent + self._reserved)

    def near_cap(self, expected_cost: float = 0.0) -> bool:
        """Whether spend (with this call) has reached the ``prefer_cheaper_at`` share of the cap."""
        with self._lock:
            if self._cap is None:
                return False
            return self._spent + self._reserved + expected_cost >= self._prefer * self._cap

    def reserve(self, expected_cost: float) -> Reservation:
        """Hold ``expected_cost`` (a call's worst case) for a call about to start; raises
        :class:`BudgetExceededError` if it would pass the cap."""
        expected = max(0.0, float(expected_cost))
        with self._lock:
            if self._over(expected):
                raise self._error(expected, self._spent + self._reserved)
            self._reserved += expected
        return Reservation(self, expected)

    def charge(self, cost: float) -> None:
        """Count ``cost`` dollars as spent."""
        with self._lock:
            self._spent += max(0.0, float(cost))

    def _release(self, reservation: Reservation, cost: float) -> None:
        """End ``reservation``: its hold goes, ``cost`` is spent."""
        with self._lock:
            self._reserved = max(0.0, self._reserved - reservation.amount)
            self._spent += max(0.0, float(cost))

    def reset(self) -> None:
        """Forget what was spent (a new billing period)."""
        with self._lock:
            self._spent = 0.0


class Reservation:
    """Money held on a :class:`Budget` for one call; settle it once with the billed cost."""

    def __init__(self, budget: Budget, amount: float, hold_id: str | None = None) -> None:
        self.budget = budget
        self.amount = amount
        self.hold_id = hold_id
        """The hold's id in a :class:`SpendStore` (a :class:`SharedBudget`'s)."""
        self._settled = False

    def settle(self, cost: float) -> None:
        if not self._settled:
            self._settled = True
            self.budget._release(self, cost)


# -- budgets shared by several processes ------------------------------------------------------


class SpendStore(Protocol):
    """Where a :class:`SharedBudget` keeps its account's spend and holds, shared by processes.

    Each method is one transaction; :meth:`hold` is atomic against every other process's
    holds and settlements of the same account. ``orkestra.usage``'s SQL logs provide one
    (:meth:`orkestra.usage.SQLUsageLog.spend_store`).
    """

    def hold(
        self,
        account: str,
        amount: float,
        cap: float,
        since: datetime | None,
        hold_seconds: float,
    ) -> tuple[str | None, float, float]:
        """Hold ``amount`` if the account's spend since ``since``, its live holds and
        ``amount`` stay within ``cap``; the hold expires after ``hold_seconds``. Returns the
        hold's id (None: nothing was held, the cap would be passed), and the account's spend
        and live holds before this one."""

    def settle(self, account: str, hold_id: str | None, cost: float) -> None:
        """Drop the hold (if any, and still there) and add ``cost`` to the account's spend."""

    def totals(self, account: str, since: datetime | None) -> tuple[float, float]:
        """The account's spend since ``since`` and its live holds."""


class SharedBudget(Budget):
    """A spend cap kept in a :class:`SpendStore`: every process that shares the store and the
    ``account`` shares the cap (proxy replicas on one PostgreSQL usage log).

    A reservation is one transaction that sums the account's spend over ``window`` and its live
    holds, and adds a hold only if the cap is not passed; settling is one transaction that drops
    the hold and adds what was billed. A hold that is never settled (its process was killed)
    counts as held for ``hold_seconds``, then as spent at its worst case (the attempt may have
    been billed; it cannot have been billed more), so a crash can only make the budget count
    too much, never too little. A call still running when its hold expires is billed at that
    worst case; set ``hold_seconds`` above the longest call. ``since``: called at each reservation
    for the start of the window whose spend counts (e.g. 30 days ago); None: all spend.

    If the store cannot be reached, reserving raises :class:`BudgetUnavailableError` (nothing is
    sent); a settlement that fails is retried with the next reservation. Async calls
    (``achat``/``astream``) reserve and settle in a worker thread, off the event loop.
    """

    blocking = True

    def __init__(
        self,
        cap: float | None,
        store: SpendStore,
        account: str,
        *,
        since: Callable[[], datetime | None] | None = None,
        hold_seconds: float = 3600.0,
        prefer_cheaper_at: float = DEFAULT_PREFER_CHEAPER_AT,
        name: str = "budget",
    ) -> None:
        super().__init__(cap, prefer_cheaper_at=prefer_cheaper_at, name=name)
        self.store = store
        self.account = account
        self.hold_seconds = hold_seconds
        self._window_start = since
        self._unsettled: list[tuple[str | None, float]] = []

    def _since(self) -> datetime | None:
        return None if self._window_start is None else self._window_start()

    def _unavailable(self, exc: Exception) -> BudgetUnavailableError:
        return BudgetUnavailableError(
            f"budget {self.name!r}: its store could not be reached ({type(exc).__name__}), "
            "so nothing was sent"
        )

    def _totals(self) -> tuple[float, float]:
        try:
            spent, held = self.store.totals(self.account, self._since())
        except Exception as exc:
            raise self._unavailable(exc) from exc
        with self._lock:
            self._spent, self._reserved = spent, held
        return spent, held

    @property
    def spent(self) -> float:
        """Dollars billed within the window, by every process sharing the store."""
        return self._totals()[0]

    @property
    def reserved(self) -> float:
        """Dollars held by calls in flight, in every process sharing the store."""
        return self._totals()[1]

    @property
    def remaining(self) -> float | None:
        spent, held = self._totals()
        return None if self._cap is None else max(0.0, self._cap - spent - held)

    def check(self, expected_cost: float) -> None:
        spent, held = self._totals()
        if self._cap is not None and spent + held + expected_cost > self._cap + EPSILON:
            raise self._error(expected_cost, spent + held)

    def near_cap(self, expected_cost: float = 0.0) -> bool:
        """As :meth:`Budget.near_cap`, from the totals seen at the last reservation (reading
        the store for every routing decision would cost a round trip each)."""
        return super().near_cap(expected_cost)

    def reserve(self, expected_cost: float) -> Reservation:
        expected = max(0.0, float(expected_cost))
        self._retry_settlements()
        cap = math.inf if self._cap is None else self._cap + EPSILON
        try:
            hold_id, spent, held = self.store.hold(
                self.account, expected, cap, self._since(), self.hold_seconds
            )
        except Exception as exc:
            raise self._unavailable(exc) from exc
        with self._lock:
            self._spent, self._reserved = spent, held + (expected if hold_id else 0.0)
        if hold_id is None:
            raise self._error(expected, spent + held)
        return Reservation(self, expected, hold_id)

    def charge(self, cost: float) -> None:
        self._settle_in_store(None, cost)

    def _release(self, reservation: Reservation, cost: float) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - reservation.amount)
            self._spent += max(0.0, float(cost))
        self._settle_in_store(reservation.hold_id, cost)

    def _settle_in_store(self, hold_id: str | None, cost: float) -> None:
        cost = max(0.0, float(cost))
        try:
            self.store.settle(self.account, hold_id, cost)
        except Exception as exc:
            logger.warning(
                "budget %r: settling $%.6f failed (%s); retrying with the next call",
                self.name,
                cost,
                exc,
            )
            with self._lock:
                self._unsettled.append((hold_id, cost))

    def _retry_settlements(self) -> None:
        with self._lock:
            pending, self._unsettled = self._unsettled, []
        for hold_id, cost in pending:
            self._settle_in_store(hold_id, cost)

    def reset(self) -> None:
        raise InvalidRequestError(
            f"budget {self.name!r} is shared through its store: its spend is the store's "
            "(give it a window instead of resetting it)"
        )


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
    except Exception:
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
