"""UsageRecord, the secret scrubber, key ids and time windows: no database involved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

import orkestra as o
from orkestra._types import Response, RoutingDecision, Usage
from orkestra.testing import FakeProviderServer
from orkestra.usage import (
    UsageRecord,
    key_id_for,
    open_usage_log,
    parse_since,
    scrub_secrets,
)

# Made-up keys in the providers' formats, assembled so no key-shaped literal sits in the tree.
OPENAI_KEY = "sk-" + "proj-Abc123_def456-GHI789jklMNO012pqr"
ANTHROPIC_KEY = "sk-" + "ant-api03-Zyx987_wvu654-TSR321qpoNML0"
GOOGLE_KEY = "AI" + "zaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"


def _response(**overrides: object) -> Response:
    values: dict[str, object] = {
        "text": "Tokyo.",
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "usage": Usage(
            1200, 340, cache_read_tokens=1000, cache_write_tokens=100, reasoning_tokens=40
        ),
        "input_cost": 0.0012,
        "output_cost": 0.0017,
        "base_model": "claude-opus-4-6",
        "base_cost": 0.0145,
        "routing": RoutingDecision(
            provider="anthropic",
            model="claude-haiku-4-5",
            tier="budget",
            scores={"budget": 0.91, "balanced": 0.93, "premium": 0.95},
            knob=0.4,
            reason="budget is within 0.04 of the best tier",
            latency_ms=0.37,
            strategy="cheapest",
        ),
        "latency_ms": 812.5,
    }
    values.update(overrides)
    return Response(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Incorrect API key provided: {OPENAI_KEY}.", "Incorrect API key provided: [REDACTED]."),
        (f"invalid x-api-key {ANTHROPIC_KEY}", "invalid x-api-key [REDACTED]"),
        (f"API key not valid: {GOOGLE_KEY}", "API key not valid: [REDACTED]"),
        (
            f"GET /v1beta/models?key={GOOGLE_KEY}&alt=sse",
            "GET /v1beta/models?key=[REDACTED]&alt=sse",
        ),
        ("Authorization: Bearer abcdefghijklmnop.qrs", "Authorization: Bearer [REDACTED]"),
        ('{"x-api-key": "not-a-provider-shape-123"}', '{"x-api-key": "[REDACTED]"}'),
        ("HTTP 429: rate limited, retry in 2s", "HTTP 429: rate limited, retry in 2s"),
        ("task-management-system-v2 failed", "task-management-system-v2 failed"),
    ],
)
def test_scrub_secrets_removes_key_shapes(text: str, expected: str) -> None:
    assert scrub_secrets(text) == expected


def test_key_id_is_an_opaque_hash() -> None:
    key_id = key_id_for(OPENAI_KEY)
    assert len(key_id) == 12
    assert int(key_id, 16) >= 0
    assert key_id == key_id_for(OPENAI_KEY) != key_id_for(ANTHROPIC_KEY)
    assert key_id not in OPENAI_KEY


def test_a_key_given_as_key_id_is_hashed_and_errors_are_scrubbed() -> None:
    rec = UsageRecord(
        provider="openai", model="gpt-4o-mini", key_id=OPENAI_KEY, error=f"bad key {OPENAI_KEY}"
    )
    assert rec.key_id == key_id_for(OPENAI_KEY)
    assert rec.error == "bad key [REDACTED]"


def test_record_defaults_and_derived_fields() -> None:
    naive = datetime(2026, 11, 26, 9, 30)
    rec = UsageRecord(
        provider="google", model="gemini-2.5-flash-lite", ts=naive, cost=0.25, base_cost=1.0
    )
    assert rec.ts == datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    assert rec.savings == 0.75
    assert len(rec.id) == 32
    assert rec.id != UsageRecord(provider="google", model="x").id
    assert (rec.status, rec.attempts, rec.source, rec.prompt) == ("ok", 1, "library", None)
    other_zone = datetime(2026, 11, 26, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert UsageRecord(provider="google", model="x", ts=other_zone).ts == rec.ts


def test_from_response_reads_every_field() -> None:
    rec = UsageRecord.from_response(
        _response(), key_id="k-1", prompt="What is the capital of Japan?", source="proxy"
    )
    assert (rec.provider, rec.model, rec.tier, rec.strategy) == (
        "anthropic",
        "claude-haiku-4-5",
        "budget",
        "cheapest",
    )
    assert (rec.input_tokens, rec.output_tokens) == (1200, 340)
    assert (rec.cache_read_tokens, rec.cache_write_tokens, rec.reasoning_tokens) == (1000, 100, 40)
    assert rec.cost == pytest.approx(0.0029)
    assert (rec.base_model, rec.base_cost) == ("claude-opus-4-6", 0.0145)
    assert rec.savings == pytest.approx(0.0116)
    assert (rec.latency_ms, rec.routing_ms, rec.knob) == (812.5, 0.37, 0.4)
    assert rec.scores == {"budget": 0.91, "balanced": 0.93, "premium": 0.95}
    assert (rec.attempts, rec.attempts_detail, rec.status) == (1, None, "ok")
    assert (rec.key_id, rec.prompt, rec.source) == ("k-1", "What is the capital of Japan?", "proxy")


@dataclass(frozen=True)
class _Attempt:
    model: str
    error: str | None
    message: str | None
    cost: float
    latency_ms: float


@dataclass(frozen=True)
class _ResponseWithAttempts(Response):
    """A Response carrying the resilience layer's attempts (read with getattr, shape-tolerant)."""

    attempts: tuple[_Attempt, ...] = ()


def test_from_response_records_attempts_scrubbed_and_their_cost() -> None:
    base = _response()
    attempts = (
        _Attempt("claude-haiku-4-5", "RateLimitError", f"429 for key {ANTHROPIC_KEY}", 0.0, 120.0),
        _Attempt("claude-haiku-4-5", None, None, 0.0029, 690.0),
    )
    response = _ResponseWithAttempts(**{**base.__dict__, "attempts": attempts})
    rec = UsageRecord.from_response(response)
    assert rec.attempts == 2
    assert rec.attempts_detail == [
        {
            "model": "claude-haiku-4-5",
            "error": "RateLimitError",
            "message": f"429 for key {ANTHROPIC_KEY}",  # scrubbed when stored, see test_usage_log
            "cost": 0.0,
            "latency_ms": 120.0,
        },
        {
            "model": "claude-haiku-4-5",
            "error": None,
            "message": None,
            "cost": 0.0029,
            "latency_ms": 690.0,
        },
    ]
    assert UsageRecord.from_response(_response()).attempts_detail is None


@dataclass(frozen=True)
class _FailedAttempt:
    provider: str
    model: str
    tier: str | None
    error: str | None
    message: str | None
    usage: Usage
    cost: float


def test_from_error_records_a_failed_call() -> None:
    error = o.RateLimitError(
        f"HTTP 429 for key {OPENAI_KEY}: slow down", provider="openai", model="gpt-4o-mini"
    )
    error.attempts = (  # type: ignore[misc]
        _FailedAttempt("openai", "gpt-4o-mini", "budget", "RateLimitError", "429", Usage(), 0.0),
        _FailedAttempt(
            "openai",
            "gpt-4.1-mini",
            "balanced",
            "StreamInterruptedError",
            "cut",
            Usage(300, 20),
            0.002,
        ),
    )
    routing = _response().routing
    rec = UsageRecord.from_error(error, routing=routing, latency_ms=950.0, key_id="k-9")
    assert (rec.provider, rec.model, rec.status) == ("openai", "gpt-4o-mini", "RateLimitError")
    assert rec.error == "HTTP 429 for key [REDACTED]: slow down"
    assert (rec.input_tokens, rec.output_tokens, rec.cost, rec.savings) == (300, 20, 0.002, 0.0)
    assert (rec.attempts, len(rec.attempts_detail or [])) == (2, 2)
    assert (rec.tier, rec.knob, rec.routing_ms, rec.latency_ms) == ("budget", 0.4, 0.37, 950.0)
    assert rec.key_id == "k-9"
    # An error with nothing attached: a record all the same.
    bare = UsageRecord.from_error(TimeoutError(), provider="google")
    assert (bare.provider, bare.model, bare.status, bare.error) == (
        "google",
        "unknown",
        "TimeoutError",
        "TimeoutError",
    )
    assert (bare.attempts, bare.cost) == (1, 0.0)


def test_parse_since() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert parse_since(None) is None
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("24h", now=now) == now - timedelta(hours=24)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    assert parse_since(timedelta(hours=1), now=now) == now - timedelta(hours=1)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_since("2026-11-01T08:00:00Z") == datetime(2026, 11, 1, 8, tzinfo=timezone.utc)
    assert parse_since(datetime(2026, 11, 1)) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    with pytest.raises(o.ConfigurationError, match="7d"):
        parse_since("last tuesday")


@pytest.mark.parametrize("text", ["999999999d", "9999999999999999999999999w", "800000d"])
def test_a_duration_past_the_calendar_is_a_configuration_error(text: str) -> None:
    # Not an OverflowError from deep inside datetime: the caller's words, and what to do.
    with pytest.raises(o.ConfigurationError, match="too long ago"):
        parse_since(text, now=datetime(2026, 11, 26, tzinfo=timezone.utc))


def test_a_real_call_round_trips_through_the_log(
    fake: FakeProviderServer, tmp_path: object
) -> None:
    """The official SDK against the fake server, its Response recorded and read back."""
    provider = o.Provider("openai")
    response = provider.chat("What is the capital of Japan?")
    log = open_usage_log(f"sqlite:///{tmp_path}/usage.db")
    try:
        rec = UsageRecord.from_response(response, key_id=key_id_for(fake.api_key))
        log.record(rec)
        assert log.query() == [rec]
        assert rec.input_tokens == response.input_tokens > 0
        assert rec.cost == response.cost > 0
        assert rec.tier == response.tier
        assert rec.scores == dict(response.routing.scores)
    finally:
        log.close()
