"""Per-key budgets: the resilience layer's :class:`~orkestra.Budget`, one per capped key.

A key's budget is passed to the library with each of its calls, so every attempt reserves its
expected cost before it is sent and is settled with what the provider billed; a call that would
pass the cap is refused before anything is sent (:class:`~orkestra.BudgetExceededError`).

What was spent is the usage log's to say: at start and every ``budget_sync_seconds`` each
budget's spend is reset to the log's total for the key over its window
(:meth:`UsageLog.spend`). With PostgreSQL that total includes every replica's calls, so
replicas share one budget per key: a replica can overshoot a cap by at most what the others
spent since its last sync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from orkestra.resilience.budget import Budget
from orkestra.server.config import KeyConfig
from orkestra.server.errors import KEY_BUDGET_PREFIX
from orkestra.usage import UsageLog

__all__ = ["KeyBudgets"]

logger = logging.getLogger("orkestra.server")


class KeyBudgets:
    """The budgets of the keys that have a cap."""

    def __init__(self, keys: Sequence[KeyConfig]) -> None:
        self._keys = {k.key_id: k for k in keys if k.budget_usd is not None}
        self._budgets = {
            key_id: Budget(k.budget_usd, name=f"{KEY_BUDGET_PREFIX}{k.name}")
            for key_id, k in self._keys.items()
        }

    def __bool__(self) -> bool:
        return bool(self._budgets)

    def get(self, key_id: str | None) -> Budget | None:
        return None if key_id is None else self._budgets.get(key_id)

    def sync(self, log: UsageLog) -> None:
        """Set each budget's spend to the usage log's total for its key (blocking: a thread)."""
        for key_id, key in self._keys.items():
            spent = log.spend(key_id, since=key.budget_window)
            budget = self._budgets[key_id]
            # Budget keeps reservations of calls in flight apart from spend: only spend moves.
            budget.reset()
            budget.charge(spent)
            logger.debug("budget of key %s: $%.6f spent of $%.2f", key.name, spent, budget.cap)
