"""Per-key budgets: one resilience-layer budget per capped key, passed with each of its calls.

Every attempt reserves its worst case before it is sent (the prompt counted from above, the
whole ``max_tokens`` of output, at the model's prices) and is settled with what the provider
billed; a call whose worst case would pass the cap is refused before anything is sent
(:class:`~orkestra.BudgetExceededError`, a 429).

With a SQL usage log (SQLite or PostgreSQL) each key's budget is a
:class:`~orkestra.resilience.SharedBudget` over the log's ledger
(:mod:`orkestra.usage.ledger`): every reservation is one transaction in the database, so every
process on that database — replicas on one PostgreSQL — shares one cap per key, with the same
bound as within one process. A restart keeps the spend, and a process killed mid-call leaves its
holds counting: held for ``hold_seconds``, then spent at their worst case, so a crash never makes
a budget count less.

Without a usage log, budgets live in this process only; with a log of another kind (a
:class:`~orkestra.usage.UsageLog` that is not SQL), each budget's spend is reset to the log's
total for the key every ``budget_sync_seconds``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from orkestra import Budget, SharedBudget
from orkestra.server.config import KeyConfig
from orkestra.server.errors import KEY_BUDGET_PREFIX
from orkestra.usage import SQLUsageLog, UsageLog, parse_since
from orkestra.usage.ledger import SQLSpendStore

__all__ = ["KeyBudgets"]

logger = logging.getLogger("orkestra.server")


class KeyBudgets:
    """The budgets of the keys that have a cap."""

    def __init__(
        self, keys: Sequence[KeyConfig], log: UsageLog | None, *, hold_seconds: float = 3600.0
    ) -> None:
        self._keys = {k.key_id: k for k in keys if k.budget_usd is not None}
        self._store: SQLSpendStore | None = None
        if self._keys and isinstance(log, SQLUsageLog):
            self._store = log.spend_store()
        self._budgets: dict[str, Budget] = {}
        for key_id, key in self._keys.items():
            name = f"{KEY_BUDGET_PREFIX}{key.name}"
            if self._store is None:
                self._budgets[key_id] = Budget(key.budget_usd, name=name)
            else:
                self._budgets[key_id] = SharedBudget(
                    key.budget_usd,
                    self._store,
                    key_id,
                    since=functools.partial(parse_since, key.budget_window),
                    hold_seconds=hold_seconds,
                    name=name,
                )

    def __bool__(self) -> bool:
        return bool(self._budgets)

    @property
    def needs_sync(self) -> bool:
        """Whether the budgets live in this process and follow a usage log by syncing."""
        return bool(self._budgets) and self._store is None

    def get(self, key_id: str | None) -> Budget | None:
        return None if key_id is None else self._budgets.get(key_id)

    def sync(self, log: UsageLog) -> None:
        """Set each in-process budget's spend to the usage log's total for its key (blocking:
        a thread). Shared budgets keep theirs in the database and need none."""
        if self._store is not None:
            return
        for key_id, key in self._keys.items():
            spent = log.spend(key_id, since=key.budget_window)
            budget = self._budgets[key_id]
            # Budget keeps reservations of calls in flight apart from spend: only spend moves.
            budget.reset()
            budget.charge(spent)
            logger.debug("budget of key %s: $%.6f spent of $%.2f", key.name, spent, budget.cap)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
