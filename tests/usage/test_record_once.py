"""A call is one row in the usage log, however often its Response is recorded: the library
records every call itself, and docs/usage-log.md's sample used to record each call again (a
new id each time, so two rows, doubled spend and doubled budgets)."""

from __future__ import annotations

from collections.abc import Callable

import orkestra as o
from orkestra.testing import FakeProviderServer
from orkestra.usage import SQLUsageLog, UsageRecord, UsageSink, key_id_for


def test_recording_a_response_the_library_recorded_adds_no_row(
    fake: FakeProviderServer, open_log: Callable[..., SQLUsageLog]
) -> None:
    log = open_log()
    provider = o.Provider("openai", fake.api_key, usage_sink=UsageSink(log))
    response = provider.chat("What is the capital of Japan?")
    log.record(UsageRecord.from_response(response, key_id=key_id_for(fake.api_key)))
    log.record(UsageRecord.from_response(response))
    log.flush()
    (record,) = log.query()
    assert record.id == response.call_id
    assert record.cost == response.cost > 0
    assert log.spend(key_id_for(fake.api_key)) == response.cost


def test_every_call_has_its_own_row(
    fake: FakeProviderServer, open_log: Callable[..., SQLUsageLog]
) -> None:
    log = open_log()
    provider = o.Provider("anthropic", fake.api_key, usage_sink=UsageSink(log))
    first = provider.chat("What is the capital of Japan?")
    second = provider.chat("What is the capital of Japan?")
    log.flush()
    assert first.call_id != second.call_id
    assert sorted(r.id for r in log.query()) == sorted([first.call_id, second.call_id])
