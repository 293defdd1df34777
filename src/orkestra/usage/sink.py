"""Where a call's usage goes: a :class:`UsageSink` writes each finished or failed call to a usage
log, labelled with the key, the source and (optionally) the record's id.

The library records every call through the sink of its ``Provider`` (``usage_sink=``; the
default writes to :func:`~orkestra.usage.default_usage_log`), or through the one passed to the
call itself, which is how the proxy labels each request with its client's key and request id::

    sink = UsageSink(open_usage_log(), source="proxy")
    provider.chat(prompt, usage_sink=sink.labelled(key_id=client_key_id, record_id=request_id))

Recording never raises into the call: a failure to record is logged once, as a warning.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Protocol

from orkestra.usage.records import UsageRecord

if TYPE_CHECKING:
    from orkestra._types import Response, RoutingDecision

__all__ = ["UsageSink", "UsageWriter"]

logger = logging.getLogger("orkestra.usage")


class UsageWriter(Protocol):
    """What a sink writes to: a :class:`~orkestra.usage.UsageLog`, or anything with ``record``."""

    store_prompts: bool

    def record(self, record: UsageRecord) -> None: ...


class _Warned:
    """Whether a failure to record was already logged as a warning (once per process)."""

    done = False


def _failed(what: str, exc: Exception) -> None:
    if _Warned.done:
        logger.debug("usage log: %s failed: %s", what, exc)
        return
    _Warned.done = True
    logger.warning(
        "usage log: %s failed, calls go on unrecorded (logged once): %s", what, exc, exc_info=exc
    )


_UNSET = "<unset>"


@dataclasses.dataclass(frozen=True)
class UsageSink:
    """Writes calls to ``log`` (None: the process's default usage log, looked up at each
    record, so ``ORKESTRA_USAGE_LOG=off`` turns it off), each record labelled.

    Args:
        log: the usage log (or any object with ``record(UsageRecord)`` and ``store_prompts``).
        source: the ``source`` column (``"library"``, ``"proxy"``...).
        key_id: the key the call is billed to (:func:`~orkestra.usage.key_id_for`); when not
            given, the provider's own key's.
        record_id: the record's id (default: a new one per record).
        prompt: the text to store as the prompt, when the log keeps prompts (default: the
            call's whole input).
    """

    log: UsageWriter | None = None
    source: str = "library"
    key_id: str | None = _UNSET
    record_id: str | None = None
    prompt: str | None = None

    def labelled(self, **labels: str | None) -> UsageSink:
        """This sink with some labels changed (``key_id``, ``record_id``, ``prompt``,
        ``source``)."""
        return dataclasses.replace(self, **labels)  # type: ignore[arg-type]

    def _writer(self) -> UsageWriter | None:
        if self.log is not None:
            return self.log
        from orkestra.usage import default_usage_log  # the package imports this module

        return default_usage_log()

    def _key(self, fallback: str | None) -> str | None:
        return fallback if self.key_id == _UNSET else self.key_id

    def _write(self, writer: UsageWriter, record: UsageRecord, error: str | None) -> None:
        changes: dict[str, Any] = {}
        if self.record_id is not None:
            changes["id"] = self.record_id
        if error is not None:
            changes["error"] = error
        writer.record(dataclasses.replace(record, **changes) if changes else record)

    def hold(
        self,
        amount: float,
        *,
        provider: str,
        model: str,
        tier: str | None = None,
        key_id: str | None = None,
    ) -> None:
        """Journal an attempt about to be sent and the most it can bill (``amount``), under
        this sink's ``record_id``, so that a crash before the call is recorded counts it
        (see :meth:`~orkestra.usage.UsageLog.hold`). A no-op without a ``record_id`` or for a
        writer that keeps no journal. Never raises."""
        if self.record_id is None:
            return
        try:
            writer = self._writer()
            hold = getattr(writer, "hold", None)
            if hold is None:
                return
            hold(
                self.record_id,
                amount,
                provider=provider,
                model=model,
                tier=tier,
                key_id=self._key(key_id),
                source=self.source,
            )
        except Exception as exc:
            _failed("journaling an attempt", exc)

    def record_response(
        self,
        response: Response,
        *,
        prompt: str | None = None,
        key_id: str | None = None,
        status: str = "ok",
        error: str | None = None,
    ) -> None:
        """Record a call that was answered (``status``/``error``: an answer that was made and
        billed but failed its ``response_format``). Never raises."""
        try:
            writer = self._writer()
            if writer is None:
                return
            record = UsageRecord.from_response(
                response,
                status=status,
                key_id=self._key(key_id),
                prompt=(self.prompt or prompt) if writer.store_prompts else None,
                source=self.source,
            )
            self._write(writer, record, error)
        except Exception as exc:
            _failed("recording a response", exc)

    def record_error(
        self,
        error: BaseException,
        *,
        provider: str | None = None,
        model: str | None = None,
        routing: RoutingDecision | None = None,
        latency_ms: float = 0.0,
        prompt: str | None = None,
        key_id: str | None = None,
    ) -> None:
        """Record a call that failed (``status`` is the error's class name). Never raises."""
        try:
            writer = self._writer()
            if writer is None:
                return
            record = UsageRecord.from_error(
                error,
                provider=provider,
                model=model,
                routing=routing,
                latency_ms=latency_ms,
                key_id=self._key(key_id),
                prompt=(self.prompt or prompt) if writer.store_prompts else None,
                source=self.source,
            )
            self._write(writer, record, None)
        except Exception as exc:
            _failed("recording an error", exc)
