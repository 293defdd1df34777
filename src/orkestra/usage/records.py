"""What the usage log stores: one :class:`UsageRecord` per call, and :class:`Totals` over many.

Secrets never reach the log: ``key_id`` is an opaque hash (:func:`key_id_for`), and error messages
(and the per-attempt details) go through :func:`scrub_secrets` before they are stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orkestra._types import Response, RoutingDecision

__all__ = [
    "COLUMNS",
    "GROUPINGS",
    "KnobCount",
    "SeriesPoint",
    "Totals",
    "UsageRecord",
    "key_id_for",
    "new_record_id",
    "scrub_secrets",
]

REDACTED = "[REDACTED]"

# Provider key shapes (OpenAI ``sk-``/``sk-proj-``, Anthropic ``sk-ant-``, Google ``AIza``), bearer
# tokens, key headers and ``?key=`` query parameters (Gemini puts the key in the URL).
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"), rf"\1{REDACTED}"),
    (
        re.compile(
            r"(?i)\b((?:x-api-key|x-goog-api-key|api[-_]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)([?&]key=)[^&\s\"']+"), rf"\1{REDACTED}"),
)


# Every pattern above matches only text holding one of these (lower-cased).
_SECRET_MARKERS = ("sk-", "aiza", "bearer", "key")


def scrub_secrets(text: str) -> str:
    """``text`` with anything shaped like an API key replaced by ``[REDACTED]``.

    >>> scrub_secrets("401: invalid key sk-proj-abcdefghijklmnop1234")
    '401: invalid key [REDACTED]'
    """
    lowered = text.lower()
    if not any(marker in lowered for marker in _SECRET_MARKERS):
        return text  # the common case, at a twentieth of the cost of the patterns
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _looks_secret(text: str) -> bool:
    return scrub_secrets(text) != text


def key_id_for(api_key: str) -> str:
    """The opaque id the log stores for a key: the first 12 hex digits of its sha256.

    >>> key_id_for("sk-test")
    'f3abf2a6cc4f'
    """
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def _utc(ts: datetime) -> datetime:
    # A naive datetime is taken to be UTC already (``datetime.utcnow()`` style).
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_record_id() -> str:
    """``uuid.uuid4().hex``, at a quarter of the cost (this runs on the call path)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """One call, as the usage log stores it.

    ``savings`` is derived (``base_cost - cost``). ``prompt`` is kept only by a log opened with
    ``store_prompts=True``. ``status`` is ``"ok"``, ``"error"`` or the error's class name.

    >>> rec = UsageRecord(provider="openai", model="gpt-4o-mini", tier="budget",
    ...                   cost=0.0001, base_cost=0.0011)
    >>> round(rec.savings, 6)
    0.001
    """

    provider: str
    model: str
    id: str = field(default_factory=new_record_id)
    ts: datetime = field(default_factory=_now)
    tier: str | None = None
    strategy: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    base_model: str | None = None
    base_cost: float = 0.0
    latency_ms: float = 0.0
    routing_ms: float = 0.0
    scores: Mapping[str, float] = field(default_factory=dict)
    knob: float | None = None
    attempts: int = 1
    attempts_detail: Sequence[Mapping[str, Any]] | None = None
    status: str = "ok"
    error: str | None = None
    key_id: str | None = None
    prompt: str | None = None
    source: str = "library"
    savings: float = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "ts", _utc(self.ts))
        set_(self, "savings", self.base_cost - self.cost)
        if self.error is not None:
            set_(self, "error", scrub_secrets(self.error))
        # A key passed where its id belongs is hashed rather than stored.
        if self.key_id is not None and _looks_secret(self.key_id):
            set_(self, "key_id", key_id_for(self.key_id))

    @classmethod
    def from_response(
        cls,
        response: Response,
        *,
        status: str = "ok",
        key_id: str | None = None,
        prompt: str | None = None,
        source: str = "library",
    ) -> UsageRecord:
        """The record of a finished call; its id is the Response's ``call_id``, so the same
        answer recorded twice (the library records every call itself) is one row.

        >>> rec = UsageRecord.from_response(response, key_id=key_id_for(api_key))  # doctest: +SKIP
        """
        usage = response.usage
        routing = response.routing
        attempts, detail = _attempts_of(getattr(response, "attempts", None))
        # What the request billed in all, failed attempts included, when the Response says.
        total_cost = getattr(response, "total_cost", None)
        cost = total_cost if isinstance(total_cost, (int, float)) else response.cost
        return cls(
            id=getattr(response, "call_id", None) or new_record_id(),
            provider=response.provider,
            model=response.model,
            tier=routing.tier,
            strategy=routing.strategy,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=float(cost),
            base_model=response.base_model,
            base_cost=response.base_cost,
            latency_ms=response.latency_ms,
            routing_ms=routing.latency_ms,
            scores={str(tier): float(score) for tier, score in routing.scores.items()},
            knob=routing.knob,
            attempts=attempts,
            attempts_detail=detail,
            status=status,
            key_id=key_id,
            prompt=prompt,
            source=source,
        )

    @classmethod
    def from_error(
        cls,
        error: BaseException,
        *,
        provider: str | None = None,
        model: str | None = None,
        routing: RoutingDecision | None = None,
        latency_ms: float = 0.0,
        key_id: str | None = None,
        prompt: str | None = None,
        source: str = "library",
    ) -> UsageRecord:
        """The record of a call that failed: ``status`` is the error's class name.

        Provider and model come from the arguments, else the error (a ``ProviderError`` carries
        them), else the routing decision. Tokens and cost are what the error's ``attempts``
        billed; the savings of a failed call are 0 (``base_cost`` is its cost).
        """
        raw = getattr(error, "attempts", None)
        attempts, detail = _attempts_of(raw)
        if isinstance(raw, (list, tuple)) and not raw:
            attempts = 0  # refused before any request was sent (circuit open, budget): a refusal
        tried = list(raw) if isinstance(raw, (list, tuple)) else []
        usages = [getattr(a, "usage", None) for a in tried]

        def billed(name: str) -> int:
            return sum(int(getattr(u, name, 0) or 0) for u in usages)

        cost = float(sum(float(getattr(a, "cost", 0.0) or 0.0) for a in tried))
        last = tried[-1] if tried else None
        provider = provider or getattr(error, "provider", None) or getattr(last, "provider", None)
        model = model or getattr(error, "model", None) or getattr(last, "model", None)
        return cls(
            provider=str(provider or (routing.provider if routing else "unknown")),
            model=str(model or (routing.model if routing else "unknown")),
            tier=routing.tier if routing else getattr(last, "tier", None),
            strategy=routing.strategy if routing else None,
            input_tokens=billed("input_tokens"),
            output_tokens=billed("output_tokens"),
            cache_read_tokens=billed("cache_read_tokens"),
            cache_write_tokens=billed("cache_write_tokens"),
            reasoning_tokens=billed("reasoning_tokens"),
            cost=cost,
            base_cost=cost,
            latency_ms=latency_ms,
            routing_ms=routing.latency_ms if routing else 0.0,
            scores={str(t): float(v) for t, v in routing.scores.items()} if routing else {},
            knob=routing.knob if routing else None,
            attempts=attempts,
            attempts_detail=detail,
            status=type(error).__name__,
            error=str(error) or type(error).__name__,
            key_id=key_id,
            prompt=prompt,
            source=source,
        )

    def as_dict(self) -> dict[str, Any]:
        """The record as plain values (``ts`` as ISO 8601), e.g. for JSON."""
        out = {name: getattr(self, name) for name in COLUMNS}
        out["ts"] = self.ts.isoformat()
        out["scores"] = dict(self.scores)
        out["attempts_detail"] = _plain(self.attempts_detail)
        return out


def _plain(value: Any) -> Any:
    """A JSON-able copy of attempt details (dataclasses, mappings, sequences, scalars)."""
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN or infinity
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def _attempts_of(value: object) -> tuple[int, list[dict[str, Any]] | None]:
    """``Response.attempts``: one entry per call made (or a count); empty or absent means one."""
    if value is None:
        return 1, None
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 1), None
    if isinstance(value, (list, tuple)) and value:
        detail = [item if isinstance(item, dict) else {"detail": item} for item in _plain(value)]
        return max(len(detail), 1), detail
    return 1, None


def dumps_json(value: Any) -> str | None:
    """JSON text for a JSON column, scrubbed of anything key-shaped (``None`` stays ``None``)."""
    if value is None:
        return None
    return scrub_secrets(json.dumps(_plain(value), separators=(",", ":"), allow_nan=False))


# Column order in the ``calls`` table, in CSV exports and in ``UsageRecord.as_dict``.
COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "source",
    "provider",
    "model",
    "tier",
    "strategy",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "base_model",
    "base_cost",
    "savings",
    "latency_ms",
    "routing_ms",
    "scores",
    "knob",
    "attempts",
    "attempts_detail",
    "status",
    "error",
    "key_id",
    "prompt",
)

GROUPINGS: tuple[str, ...] = ("model", "provider", "tier", "key", "day")


@dataclass(frozen=True)
class Totals:
    """Calls, tokens, cost and savings of one group (``group`` is ``None`` for "no key").

    ``premium_share`` is the share of calls that went to the premium tier.
    """

    group: str | None
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost: float
    base_cost: float
    savings: float
    premium_share: float
    refused: int = 0
    """Of the ``errors``, the calls refused before any request was sent (``attempts == 0``:
    every candidate's circuit open, a budget that would be passed)."""

    @property
    def savings_percent(self) -> float:
        return 100.0 * self.savings / self.base_cost if self.base_cost > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["savings_percent"] = self.savings_percent
        return out


@dataclass(frozen=True)
class SeriesPoint:
    """The calls that started a time bucket: ``start`` (UTC), how many, cost and base cost."""

    start: datetime
    calls: int
    cost: float
    base_cost: float


@dataclass(frozen=True)
class KnobCount:
    """How many calls ran at one knob setting (``None``: no knob), and how many went premium."""

    knob: float | None
    calls: int
    premium: int
