"""The usage log's write-ahead journal: what a crash of the process must not lose.

Each process appends to its own segment file in the journal directory, one JSON line per entry,
*before* the call it records returns to its caller:

- ``{"b": id, "hold": dollars, ...}`` an attempt of call ``id`` is about to be sent, and the
  most it can bill (several per call: one per attempt);
- ``{"r": [the record's columns]}`` call ``id`` ended: its record, as the database stores it.

``write()`` on a file puts the line in the kernel's page cache: it outlives the process
(``kill -9``, a crash, an OOM kill), not the machine (unless ``fsync=True``). The background
writer still stores the records in the database in batches; once every record of a segment is
there, the segment is deleted. A process holds an exclusive ``flock`` on the segment it is
writing (released by the kernel however the process ends), so when a usage log is opened, the
segments nobody holds are those of processes that died: they are *replayed* (their records
inserted, ids making that idempotent) and deleted. A call with a ``b`` and no ``r`` was in
flight when its process died: it is replayed as a record with status ``Interrupted`` and the
sum of its holds as its cost, so that spend read after a crash is over, never under, what was
billed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, so no journal (logs say so)
    fcntl = None  # type: ignore[assignment]

__all__ = ["INTERRUPTED", "SUPPORTED", "Hold", "Journal", "replay"]

SUPPORTED = fcntl is not None
"""Whether this platform has the ``flock`` the journal needs (POSIX: yes; Windows: no)."""

logger = logging.getLogger("orkestra.usage")

INTERRUPTED = "Interrupted"
"""The status of a call whose process ended while it was in flight."""

_SEGMENT_BYTES = 4 * 1024 * 1024
_PREFIX, _SUFFIX = "segment-", ".jsonl"


@dataclass(frozen=True)
class Hold:
    """An attempt about to be sent: the most it can bill, and what to record if it is lost."""

    call_id: str
    amount: float
    provider: str
    model: str
    tier: str | None = None
    key_id: str | None = None
    source: str = "library"
    ts: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def line(self) -> bytes:
        return _line(
            {
                "b": self.call_id,
                "hold": self.amount,
                "provider": self.provider,
                "model": self.model,
                "tier": self.tier,
                "key_id": self.key_id,
                "source": self.source,
                "ts": self.ts,
            }
        )


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, separators=(",", ":"), allow_nan=False).encode() + b"\n"


class _Segment:
    def __init__(self, directory: Path, number: int) -> None:
        # Created and locked under a name replay ignores, then renamed into view: a replaying
        # process never sees a segment its (live) writer does not hold yet.
        name = f"{_PREFIX}{os.getpid()}-{number:06d}-{os.urandom(4).hex()}{_SUFFIX}"
        hidden = directory / f".{name}"
        self.fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.path = directory / name
        os.rename(hidden, self.path)
        self.size = 0
        self.unwritten = 0  # records appended, not yet in the database
        self.keep = False  # a record of it did not reach the database: leave it for replay

    def close(self, *, delete: bool) -> None:
        if delete:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)


class Journal:
    """This process's journal segments in ``directory`` (made ``0700``; files ``0600``)."""

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._current: _Segment | None = None
        self._numbered = 0
        self._segments: dict[int, _Segment] = {}  # unwritten record's token -> its segment
        self._old: list[_Segment] = []  # rotated out, waiting for their records
        self._open: dict[str, list[bytes]] = {}  # call id -> its hold lines, until recorded
        self._pid = os.getpid()

    # -- appending (the caller's thread) -----------------------------------------------------

    def hold(self, hold: Hold) -> None:
        """Journal an attempt about to be sent."""
        line = hold.line()
        with self._lock:
            self._append(line)
            self._open.setdefault(hold.call_id, []).append(line)

    def record(self, token: int, record_id: str, row: Sequence[Any]) -> None:
        """Journal a call's record (``row``: its columns as the database stores them, JSON-able).

        Must be followed by :meth:`written` or :meth:`lost` for ``token`` (unique among the
        records not yet settled: the same call may be recorded twice)."""
        line = _line({"r": list(row)})
        with self._lock:
            segment = self._append(line)
            segment.unwritten += 1
            self._segments[token] = segment
            self._open.pop(record_id, None)

    def _append(self, line: bytes) -> _Segment:
        if self._pid != os.getpid():  # a forked child: the segment is the parent's
            self._reset()
        segment = self._current
        if segment is None or segment.size >= _SEGMENT_BYTES:
            segment = self._rotate()
        os.write(segment.fd, line)
        if self.fsync:
            os.fdatasync(segment.fd)
        segment.size += len(line)
        return segment

    def _rotate(self) -> _Segment:
        old = self._current
        self._numbered += 1
        segment = self._current = _Segment(self.directory, self._numbered)
        # Calls in flight keep their holds in the segment that lives on.
        for lines in self._open.values():
            for line in lines:
                os.write(segment.fd, line)
                segment.size += len(line)
        if old is not None:
            self._old.append(old)
            self._retire()
        return segment

    def _retire(self) -> None:
        """Close the rotated-out segments whose records are all in the database (deleted) or
        were given up on (kept, for the next opener to replay)."""
        done = [s for s in self._old if s.unwritten == 0]
        for segment in done:
            self._old.remove(segment)
            segment.close(delete=not segment.keep)

    # -- settling (the writer thread) ----------------------------------------------------------

    def written(self, tokens: Iterable[int]) -> None:
        """These records are in the database."""
        self._settle(tokens, keep=False)

    def lost(self, tokens: Iterable[int]) -> None:
        """These records did not reach the database: keep their segment for replay."""
        self._settle(tokens, keep=True)

    def _settle(self, tokens: Iterable[int], *, keep: bool) -> None:
        with self._lock:
            for token in tokens:
                segment = self._segments.pop(token, None)
                if segment is not None:
                    segment.unwritten -= 1
                    segment.keep |= keep
            if self._old:
                self._retire()

    @property
    def in_flight(self) -> int:
        """Calls with a hold and no record yet."""
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        """Release the segments: those with every record in the database are deleted; the
        rest (records not written, calls never recorded) are left for the next opener."""
        with self._lock:
            if self._pid != os.getpid():
                self._reset()
                return
            for segment in self._old:
                segment.close(delete=segment.unwritten == 0 and not segment.keep)
            current = self._current
            if current is not None:
                # Holds of calls never recorded (an abandoned stream, a call still running)
                # stay with it, to be counted as interrupted.
                done = current.unwritten == 0 and not current.keep and not self._open
                current.close(delete=done)
            self._reset()


# -- replay ------------------------------------------------------------------------------------


def _segments(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.name.startswith(_PREFIX))
    except FileNotFoundError:
        return []


def _read(path: Path) -> tuple[list[list[Any]], dict[str, list[dict[str, Any]]]]:
    rows: list[list[Any]] = []
    holds: dict[str, list[dict[str, Any]]] = {}
    recorded: set[str] = set()
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                logger.warning("usage journal %s: line %d was cut short; skipped", path, number)
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                logger.error("usage journal %s: line %d is not JSON; skipped", path, number)
                continue
            if "r" in entry:
                rows.append(entry["r"])
                recorded.add(entry["r"][0])
            elif "b" in entry:
                holds.setdefault(entry["b"], []).append(entry)
    return rows, {k: v for k, v in holds.items() if k not in recorded}


def replay(
    directory: str | os.PathLike[str],
    write_rows: Callable[[list[list[Any]], dict[str, list[dict[str, Any]]]], None],
) -> int:
    """Write the records of every segment no live process holds, and delete it.

    ``write_rows(rows, interrupted)`` gets the journaled rows and, per call id left in flight,
    its holds; it must make them durable (idempotently) or raise, in which case the segment
    stays for a later try. Returns the number of segments replayed.
    """
    replayed = 0
    for path in _segments(Path(directory)):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # replayed by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process is writing it
            if not path.exists():
                continue
            rows, interrupted = _read(path)
            if rows or interrupted:
                try:
                    write_rows(rows, interrupted)
                except Exception as exc:  # the database is away: the next opener tries again
                    logger.error("usage journal: replaying %s failed, kept: %s", path.name, exc)
                    continue
                logger.warning(
                    "usage journal: wrote the %d records and %d calls in flight of %s "
                    "(left by a process that ended without writing them)",
                    len(rows),
                    len(interrupted),
                    path.name,
                )
            os.unlink(path)
            replayed += 1
        finally:
            os.close(fd)
    return replayed
