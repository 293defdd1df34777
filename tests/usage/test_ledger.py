"""Budgets shared through the usage database (``orkestra.usage.ledger``), on both backends.

Two stores on one database stand for two processes (proxy replicas): each has its own
connections, and only the database's locks keep their reservations apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from orkestra.errors import BudgetExceededError, BudgetUnavailableError
from orkestra.resilience.budget import SharedBudget
from orkestra.usage import UsageRecord, parse_since
from orkestra.usage.base import SQLUsageLog
from orkestra.usage.ledger import PostgresSpendStore

OpenLog = Callable[..., SQLUsageLog]


def test_two_processes_never_hold_past_the_cap_together(open_log: OpenLog) -> None:
    stores = [open_log().spend_store(), open_log().spend_store()]
    budgets = [SharedBudget(1.0, store, "key-a", name="key:a") for store in stores]
    held: list[float] = []
    refused: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker(i: int) -> None:
        start.wait()
        for _ in range(5):
            try:
                reservation = budgets[i % 2].reserve(0.07)
            except BudgetExceededError:
                with lock:
                    refused.append(0.07)
                continue
            with lock:
                held.append(reservation.amount)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        # 80 reservations of $0.07 against $1: exactly 14 fit, whichever store asked.
        assert len(held) == 14 and len(refused) == 66
        assert budgets[0].reserved == pytest.approx(0.98)
        assert budgets[1].spent == 0.0
    finally:
        for store in stores:
            store.close()


def test_settling_turns_the_hold_into_what_was_billed(open_log: OpenLog) -> None:
    store = open_log().spend_store()
    budget = SharedBudget(1.0, store, "key-a")
    try:
        first = budget.reserve(0.6)
        with pytest.raises(BudgetExceededError) as info:
            budget.reserve(0.5)  # 0.6 held + 0.5 > 1
        assert info.value.spent == pytest.approx(0.6) and info.value.expected_cost == 0.5
        first.settle(0.25)
        first.settle(0.25)  # once only
        assert budget.spent == pytest.approx(0.25) and budget.reserved == 0.0
        budget.reserve(0.5).settle(0.5)
        assert budget.spent == pytest.approx(0.75)
        assert budget.remaining == pytest.approx(0.25)
        # Another process reading the same database sees the same account.
        other = SharedBudget(1.0, open_log().spend_store(), "key-a")
        assert other.spent == pytest.approx(0.75)
        with pytest.raises(BudgetExceededError):
            other.reserve(0.3)
        other.store.close()  # type: ignore[attr-defined]
    finally:
        store.close()


def test_a_crashed_process_holds_count_as_spent_once_they_expire(open_log: OpenLog) -> None:
    store = open_log().spend_store()
    crashed = SharedBudget(1.0, store, "key-a", hold_seconds=0.3)
    try:
        crashed.reserve(0.9)  # never settled: its process "died"
        survivor = SharedBudget(1.0, open_log().spend_store(), "key-a")
        with pytest.raises(BudgetExceededError):
            survivor.reserve(0.2)  # the dead hold still counts: never under-counted
        time.sleep(0.4)
        # Expired, it counts as spent at its worst case (the call may well have been billed):
        # the cap stays closed rather than reopening an hour after a crash.
        assert survivor.spent == pytest.approx(0.9) and survivor.reserved == 0.0
        with pytest.raises(BudgetExceededError):
            survivor.reserve(0.2)
        survivor.reserve(0.05).settle(0.05)
        assert survivor.spent == pytest.approx(0.95)
        survivor.store.close()  # type: ignore[attr-defined]
    finally:
        store.close()


def test_an_expired_hold_is_billed_once_whether_settled_or_folded_first(
    open_log: OpenLog,
) -> None:
    store = open_log().spend_store()
    slow = SharedBudget(10.0, store, "key-a", hold_seconds=0.2)
    try:
        # Settled after it expired, before anyone folded it: billed at what it cost.
        late = slow.reserve(0.9)
        time.sleep(0.3)
        assert slow.spent == pytest.approx(0.9)  # meanwhile: its worst case
        late.settle(0.3)
        assert slow.spent == pytest.approx(0.3) and slow.reserved == 0.0

        # Folded into the spend by another process's reservation, then settled: the worst
        # case already counted stays, the settlement adds nothing.
        folded = slow.reserve(0.9)
        time.sleep(0.3)
        other_store = open_log().spend_store()  # a fresh store folds at its first reservation
        other = SharedBudget(10.0, other_store, "key-a")
        other.reserve(0.1).settle(0.1)
        assert other.spent == pytest.approx(0.3 + 0.9 + 0.1) and other.reserved == 0.0
        folded.settle(0.3)
        assert other.spent == pytest.approx(0.3 + 0.9 + 0.1)
        other_store.close()
    finally:
        store.close()


def test_spend_already_in_the_log_is_counted_from_the_first_reservation(
    open_log: OpenLog,
) -> None:
    log = open_log()
    now = datetime.now(timezone.utc)
    log.record(
        UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.5, key_id="key-a", ts=now)
    )
    log.record(
        UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.3, key_id="key-a", ts=now)
    )
    old = now - timedelta(days=40)
    log.record(
        UsageRecord(provider="openai", model="gpt-4o-mini", cost=2.0, key_id="key-a", ts=old)
    )
    log.record(
        UsageRecord(provider="openai", model="gpt-4o-mini", cost=9.0, key_id="key-b", ts=now)
    )
    log.flush()
    store = log.spend_store()
    try:
        whole = SharedBudget(10.0, store, "key-a")
        month = SharedBudget(10.0, store, "key-a", since=lambda: parse_since("30d"))
        assert whole.spent == pytest.approx(2.8)
        assert month.spent == pytest.approx(0.8)
        month.reserve(0.1).settle(0.1)
        # Seeded once: later calls in the log are the ledger's to add, not read twice.
        log.record(
            UsageRecord(provider="openai", model="gpt-4o-mini", cost=0.1, key_id="key-a", ts=now)
        )
        log.flush()
        assert month.spent == pytest.approx(0.9)
    finally:
        store.close()


def test_spend_leaves_the_window_by_the_hour(open_log: OpenLog) -> None:
    store = open_log().spend_store()
    try:
        budget = SharedBudget(1.0, store, "key-a", since=lambda: parse_since("2h"))
        budget.reserve(0.4).settle(0.4)
        assert budget.spent == pytest.approx(0.4)
        later = SharedBudget(
            1.0, store, "key-a", since=lambda: datetime.now(timezone.utc) + timedelta(hours=2)
        )
        assert later.spent == 0.0  # two hours on, the hour it was spent in has left the window
    finally:
        store.close()


def test_an_unreachable_store_refuses_the_call() -> None:
    store = PostgresSpendStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    budget = SharedBudget(1.0, store, "key-a", name="key:a")
    with pytest.raises(BudgetUnavailableError, match="nothing was sent"):
        budget.reserve(0.1)
    store.close()
