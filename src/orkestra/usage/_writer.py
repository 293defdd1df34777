"""Writes off the call path: a bounded queue drained by one background thread in batches.

``put()`` appends to a deque under a lock and returns (a few microseconds). The writer thread
takes up to ``max_batch`` records at a time, waiting at most ``max_delay`` for a batch to fill,
and hands each batch to ``write_batch`` (one transaction). A failed write is retried with
exponential backoff and logged, never raised into the caller. ``flush()`` waits until everything
put so far is durable; ``close()`` flushes and stops the thread, and runs at interpreter exit.

A failure the backend calls transient (a lock, a lost connection) is retried until it succeeds;
any other (the database refuses a record) is retried record by record, and only the refused
record is dropped. Nothing is dropped silently: every loss is logged as an error and counted in
``dropped``. The three ways to lose a record: the database refuses it; the queue stays full for
``block_timeout`` (the database has been failing for a long time); ``close()`` times out.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from orkestra.errors import OrkestraError
from orkestra.usage.records import UsageRecord

__all__ = ["BatchWriter", "UsageLogClosedError"]

logger = logging.getLogger("orkestra.usage")

_writers: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


class UsageLogClosedError(OrkestraError):
    """A record was given to a usage log that has been closed."""


class BatchWriter:
    """One background thread writing the records ``put()`` to it, in batches."""

    def __init__(
        self,
        write_batch: Callable[[list[UsageRecord]], None],
        *,
        name: str = "orkestra-usage-writer",
        max_queue: int = 10_000,
        max_batch: int = 256,
        max_delay: float = 0.05,
        block_timeout: float = 1.0,
        max_backoff: float = 5.0,
        close_timeout: float = 10.0,
        is_transient: Callable[[Exception], bool] = lambda exc: True,
        on_fork: Callable[[], None] | None = None,
        on_written: Callable[[list[UsageRecord]], None] | None = None,
        on_lost: Callable[[list[UsageRecord]], None] | None = None,
        close_at_exit: bool = True,
    ) -> None:
        self._write_batch = write_batch
        self._on_written = on_written
        self._on_lost = on_lost
        self._name = name
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._block_timeout = block_timeout
        self._max_backoff = max_backoff
        self._close_timeout = close_timeout
        self._is_transient = is_transient
        self._on_fork = on_fork
        self.dropped = 0
        self.failed_writes = 0
        self._closed = False
        self._reset()
        _writers.add(self)
        if close_at_exit:
            atexit.register(self.close)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[UsageRecord] = deque()
        self._accepted = 0  # records put so far
        self._settled = 0  # records written, or lost and logged, so far
        self._flushing = 0  # threads waiting in flush()
        self._stopping = False
        self._give_up_at: float | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the caller's side ----------------------------------------------------------------

    def put(self, record: UsageRecord) -> bool:
        """Queue ``record`` for writing; returns at once unless the queue is full.

        False if it was dropped (the queue stayed full for ``block_timeout``; logged)."""
        with self._cond:
            if self._closed:
                raise UsageLogClosedError("the usage log is closed")
            if self._thread is None:
                self._start()
            if len(self._pending) >= self._max_queue and not self._wait_for_room():
                self.dropped += 1  # under the lock already
                logger.error(
                    "usage log: queue full for %.1fs (the database is not keeping up); "
                    "dropped record %s (%d dropped so far)",
                    self._block_timeout,
                    record.id,
                    self.dropped,
                )
                return False
            self._pending.append(record)
            self._accepted += 1
            # Wake the writer only when it is idle or a batch is full, not on every record.
            if len(self._pending) in (1, self._max_batch):
                self._cond.notify_all()
            return True

    def _wait_for_room(self) -> bool:
        deadline = time.monotonic() + self._block_timeout
        while len(self._pending) >= self._max_queue:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._cond.wait(remaining)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record put so far is written; False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._accepted
            self._flushing += 1
            self._cond.notify_all()  # cut the writer's wait for a fuller batch short
            try:
                while self._settled < target:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued (retrying until ``timeout``, default 10 s) and stop the thread.

        Returns False if the thread is still running (stuck in a database call).
        """
        timeout = self._close_timeout if timeout is None else timeout
        with self._cond:
            if self._closed:
                return self._thread is None or not self._thread.is_alive()
            self._closed = True
            self._stopping = True
            self._give_up_at = time.monotonic() + timeout
            thread = self._thread
            self._cond.notify_all()
        self._wake.set()
        atexit.unregister(self.close)
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout + 1.0)
        return not thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Records put but not yet written."""
        with self._cond:
            return self._accepted - self._settled

    # -- the writer thread ----------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _next_batch(self) -> list[UsageRecord] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if not self._pending:
                return None  # stopping, and nothing left
            deadline = time.monotonic() + self._max_delay
            while (
                len(self._pending) < self._max_batch
                and not self._stopping
                and not self._flushing
                and (remaining := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(remaining)
            count = min(len(self._pending), self._max_batch)
            batch = [self._pending.popleft() for _ in range(count)]
            self._cond.notify_all()  # room for a put() blocked on a full queue
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            lost = self._write_with_retry(batch)
            self._report(batch, lost)
            with self._cond:
                self._settled += len(batch)
                self._cond.notify_all()

    def _report(self, batch: list[UsageRecord], lost: list[UsageRecord]) -> None:
        try:
            if lost and self._on_lost is not None:
                self._on_lost(lost)
            if self._on_written is not None:
                lost_ids = {r.id for r in lost}
                self._on_written([r for r in batch if r.id not in lost_ids] if lost else batch)
        except Exception:  # bookkeeping must not stop the writer
            logger.exception("usage log: reporting a written batch failed")

    def _lose(self, records: list[UsageRecord]) -> list[UsageRecord]:
        with self._cond:
            self.dropped += len(records)
        return records

    def _write_with_retry(self, batch: list[UsageRecord]) -> list[UsageRecord]:
        """Write ``batch``; returns the records given up on (each logged)."""
        attempt = 0
        while True:
            try:
                self._write_batch(batch)
            except Exception as exc:
                self.failed_writes += 1
                attempt += 1
                if not self._is_transient(exc):
                    return self._reject(batch, exc)
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    logger.error(
                        "usage log: closing; %d records not written after %d attempts: %s",
                        len(batch),
                        attempt,
                        exc,
                    )
                    return self._lose(batch)
                delay = min(0.05 * 2 ** (attempt - 1), self._max_backoff)
                log = logger.warning if attempt == 1 or attempt % 10 == 0 else logger.debug
                log(
                    "usage log: writing %d records failed (attempt %d), retrying in %.2fs: %s",
                    len(batch),
                    attempt,
                    delay,
                    exc,
                )
                if give_up_at is not None:
                    delay = min(delay, max(give_up_at - time.monotonic(), 0.0))
                if self._wake.wait(delay):
                    self._wake.clear()  # woken once by close(); back off normally from here
            else:
                if attempt:
                    logger.warning(
                        "usage log: %d records written after %d retries", len(batch), attempt
                    )
                return []

    def _reject(self, batch: list[UsageRecord], exc: Exception) -> list[UsageRecord]:
        """A write failed for a reason retrying will not fix (a record the database refuses)."""
        if len(batch) > 1:
            # Write the records one by one, so that one bad record does not sink the others.
            return [lost for record in batch for lost in self._write_with_retry([record])]
        lost = self._lose(batch)
        logger.error(
            "usage log: the database refused record %s; not retried (%d lost so far): %r",
            batch[0].id,
            self.dropped,
            exc,
        )
        return lost

    def _after_fork_in_child(self) -> None:
        # The parent's thread did not survive the fork, its lock may have been held, its queued
        # records are the parent's to write, and its connections are the parent's to use: start
        # afresh, on new connections, when the child first records.
        self._reset()
        if self._on_fork is not None:
            self._on_fork()


def _reset_writers_in_child() -> None:
    for writer in list(_writers):
        writer._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_writers_in_child)
