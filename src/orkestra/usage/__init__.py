"""The usage log: every call, with its tokens, cost, savings, latency and routing scores.

>>> from orkestra.usage import UsageRecord, open_usage_log
>>> log = open_usage_log()  # doctest: +SKIP  ($ORKESTRA_DATABASE_URL, else $ORKESTRA_HOME/usage.db)
>>> log.record(UsageRecord.from_response(response))     # doctest: +SKIP
>>> for t in log.totals(since="7d", by="model"):         # doctest: +SKIP
...     print(t.group, t.calls, f"${t.cost:.4f}", f"saved ${t.savings:.4f}")

SQLite (the default, WAL mode) for one machine; PostgreSQL (``postgresql://…``) for several proxy
replicas sharing one log and one set of budgets. ``record()`` appends the record to a
write-ahead journal (so it survives ``kill -9``; the next opener writes it back) and queues it: a
background thread writes in batches, so the call path never waits for the database. The prompt
is stored only by a log opened with ``store_prompts=True``; keys never are (see
:func:`key_id_for`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from orkestra.errors import ConfigurationError
from orkestra.usage._writer import UsageLogClosedError
from orkestra.usage.base import SQLUsageLog, UsageLog
from orkestra.usage.migrations import MIGRATIONS
from orkestra.usage.postgres import PostgresUsageLog, redact_url
from orkestra.usage.query import Since, parse_since, write_totals_csv
from orkestra.usage.records import (
    GROUPINGS,
    KnobCount,
    SeriesPoint,
    Totals,
    UsageRecord,
    key_id_for,
    scrub_secrets,
)
from orkestra.usage.sessions import SQLSessionStore
from orkestra.usage.sink import UsageSink, UsageWriter
from orkestra.usage.sqlite import SQLiteUsageLog

__all__ = [
    "GROUPINGS",
    "MIGRATIONS",
    "DatabaseURLError",
    "KnobCount",
    "PostgresUsageLog",
    "SQLSessionStore",
    "SQLUsageLog",
    "SQLiteUsageLog",
    "SeriesPoint",
    "Since",
    "Totals",
    "UsageLog",
    "UsageLogClosedError",
    "UsageRecord",
    "UsageSink",
    "UsageWriter",
    "default_usage_log",
    "key_id_for",
    "open_usage_log",
    "parse_since",
    "scrub_secrets",
    "usage_db_path",
    "write_totals_csv",
]

DATABASE_URL_ENV = "ORKESTRA_DATABASE_URL"
logger = logging.getLogger("orkestra.usage")


class DatabaseURLError(ConfigurationError):
    """The usage database URL is not one orkestra can open."""


def usage_db_path() -> Path:
    """The default SQLite file: ``$ORKESTRA_HOME/usage.db`` (default ``~/.orkestra``)."""
    from orkestra.routing.artifacts import orkestra_home

    return orkestra_home() / "usage.db"


def open_usage_log(
    url: str | None = None,
    *,
    store_prompts: bool = False,
    journal: bool | str | os.PathLike[str] = True,
    fsync: bool | None = None,
) -> SQLUsageLog:
    """Open (creating and migrating it if needed) the usage log at ``url``.

    ``url``: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
    ``postgresql://user:password@host/dbname``; default ``$ORKESTRA_DATABASE_URL``, else the SQLite
    file :func:`usage_db_path`. ``store_prompts``: keep each record's prompt text (off by default).
    ``journal``: the write-ahead journal's directory (default: beside the SQLite file, or
    ``$ORKESTRA_HOME/journal/…`` for PostgreSQL; ``False``: none), whose records survive a
    crash of the process and are written by the next opener. ``fsync``: sync every journal
    write to disk, so records survive a power cut too (default ``$ORKESTRA_USAGE_FSYNC``, off).
    """
    if url is None:
        url = os.environ.get(DATABASE_URL_ENV) or None
    if fsync is None:
        fsync = _env_flag("ORKESTRA_USAGE_FSYNC", default=False)
    options: dict[str, Any] = {"store_prompts": store_prompts, "journal": journal, "fsync": fsync}
    if url is None:
        return SQLiteUsageLog(usage_db_path(), **options)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
        if not path or path.startswith(":memory:") or "?" in path:
            raise DatabaseURLError(
                f"cannot open usage database {url!r}: give a file, as in "
                "sqlite:///usage.db (relative) or sqlite:////var/lib/orkestra/usage.db (absolute)"
            )
        return SQLiteUsageLog(path, **options)
    if scheme in ("postgresql", "postgres"):
        return PostgresUsageLog(url, **options)
    raise DatabaseURLError(
        f"unsupported usage database URL {redact_url(url)!r}: use sqlite:///path/to/usage.db "
        "or postgresql://user:password@host/dbname"
    )


_default_lock = threading.Lock()
_default_log: SQLUsageLog | None = None


_default_failed = False


def default_usage_log() -> SQLUsageLog | None:
    """The process-wide log the library records every call in, opened on first use.

    ``None`` when turned off (``ORKESTRA_USAGE_LOG=off``) or when it cannot be opened: that is
    logged once as an error, and the calls go on unlogged rather than fail.
    ``ORKESTRA_STORE_PROMPTS=1`` keeps prompts.
    """
    global _default_log, _default_failed  # noqa: PLW0603 - one log per process, opened lazily
    if _env_flag("ORKESTRA_USAGE_LOG", default=True) is False:
        return None
    with _default_lock:
        if (_default_log is None or _default_log.closed) and not _default_failed:
            try:
                _default_log = open_usage_log(
                    store_prompts=_env_flag("ORKESTRA_STORE_PROMPTS", default=False)
                )
            except Exception as exc:
                _default_failed = True
                logger.error("usage log: cannot open it, calls will not be logged: %s", exc)
                return None
        return _default_log


def _env_flag(name: str, *, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    return default
