"""OpenTelemetry spans of chat calls (GenAI semantic conventions), read back from the SDK's
in-memory exporter; and no OpenTelemetry at all unless tracing is configured."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from proxy_helpers import CLIENT_KEY, chat_body, client_key, make_config
from starlette.testclient import TestClient

from orkestra import ConfigurationError
from orkestra.server import ServerConfig, create_app
from orkestra.server.tracing import tracing_configured
from orkestra.testing import FakeProviderServer, Fault, Reply
from orkestra.usage import SQLiteUsageLog, key_id_for

CHAT = "/v1/chat/completions"


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def traced(
    spans: tuple[TracerProvider, InMemorySpanExporter], log: SQLiteUsageLog, **config: Any
) -> TestClient:
    app = create_app(make_config(**config), usage_log=log, tracer_provider=spans[0])
    return TestClient(app, base_url="http://127.0.0.1:8000")


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def test_a_chat_call_is_one_genai_client_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
) -> None:
    fake.queue(Reply("Tokyo.", input_tokens=120, output_tokens=30))
    with traced(spans, usage_log, keys=(client_key(),)) as client:
        body = chat_body(model="gpt-4o-mini", max_tokens=64, temperature=0.5)
        response = client.post(CHAT, json=body, headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 200
    span = only_span(spans[1])
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.system"] == attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == response.headers["x-orkestra-model"]
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.usage.input_tokens"] == 120
    assert attributes["gen_ai.usage.output_tokens"] == 30
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["orkestra.tier"] == response.headers["x-orkestra-tier"]
    assert attributes["orkestra.cost_usd"] == pytest.approx(
        float(response.headers["x-orkestra-cost-usd"]), rel=1e-6
    )
    assert attributes["orkestra.savings_usd"] == pytest.approx(
        float(response.headers["x-orkestra-savings-usd"]), rel=1e-6
    )
    assert attributes["orkestra.fallback"] is False and attributes["orkestra.attempts"] == 1
    assert attributes["orkestra.routed"] is False
    assert attributes["orkestra.request_id"] == response.headers["x-request-id"]
    assert attributes["orkestra.key_id"] == key_id_for(CLIENT_KEY)
    assert CLIENT_KEY not in str(attributes) and "Japan" not in str(attributes)  # no prompt


def test_the_span_joins_the_callers_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with traced(spans, usage_log) as client:
        headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
        assert client.post(CHAT, json=chat_body(), headers=headers).status_code == 200
    span = only_span(spans[1])
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == int(trace_id, 16)
    assert span.parent.span_id == int(parent_id, 16)
    attributes = dict(span.attributes or {})
    assert attributes["orkestra.routed"] is True and attributes["orkestra.strategy"] == "cheapest"
    assert span.name == "chat orkestra/auto"


def test_a_fallback_is_marked_and_the_failed_attempt_is_an_event(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
) -> None:
    fake.queue(Fault.status(503), provider="openai")
    with traced(spans, usage_log, max_retries=0, fallback="up-then-down") as client:
        response = client.post(CHAT, json=chat_body(model="orkestra/openai"))
    assert response.status_code == 200
    span = only_span(spans[1])
    attributes = dict(span.attributes or {})
    assert attributes["orkestra.fallback"] is True and attributes["orkestra.attempts"] == 2
    (event,) = span.events
    assert event.name == "orkestra.attempt"
    assert dict(event.attributes or {})["error.type"] == "ProviderUnavailableError"
    assert dict(event.attributes or {})["gen_ai.request.model"] == fake.requests[0].model


def test_a_failed_call_is_an_error_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
) -> None:
    fake.queue(Fault.status(503), times=10)
    with traced(spans, usage_log, max_retries=0, fallback="none") as client:
        response = client.post(CHAT, json=chat_body(model="gpt-4o-mini"))
    assert response.status_code == 503
    span = only_span(spans[1])
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ProviderUnavailableError"


def test_a_stream_span_ends_with_the_stream(
    spans: tuple[TracerProvider, InMemorySpanExporter],
    fake: FakeProviderServer,
    usage_log: SQLiteUsageLog,
) -> None:
    fake.queue(Reply("One two three.", input_tokens=12, output_tokens=4))
    with traced(spans, usage_log) as client:
        response = client.post(CHAT, json=chat_body(model="gpt-4o-mini", stream=True))
        assert response.status_code == 200
    span = only_span(spans[1])
    attributes = dict(span.attributes or {})
    assert attributes["orkestra.stream"] is True
    assert attributes["gen_ai.usage.output_tokens"] == 4


# -- when tracing is on ----------------------------------------------------------------------


def config(**fields: Any) -> ServerConfig:
    return make_config(**fields)


@pytest.mark.parametrize(
    ("fields", "environ", "expected"),
    [
        ({}, {}, False),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({}, {"OTEL_TRACES_EXPORTER": "console"}, True),
        ({}, {"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"tracing": True}, {}, True),
        ({"tracing": False}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"tracing": True}, {"OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_when_the_config_or_the_otel_variables_say_so(
    fake: FakeProviderServer, fields: dict[str, Any], environ: dict[str, str], expected: bool
) -> None:
    assert tracing_configured(config(**fields), environ) is expected


def test_an_unknown_exporter_is_a_configuration_error(fake: FakeProviderServer) -> None:
    with pytest.raises(ConfigurationError, match=r"tracing\.exporter: 'jaeger' is not one of"):
        config(tracing=True, tracing_exporter="jaeger")


SERVE = """
import os, sys
from orkestra.server import ServerConfig, ProviderConfig, create_app
app = create_app(ServerConfig(providers=(ProviderConfig("openai"),), usage_log=False))
print(app.state.proxy.tracer is not None)
print(sorted({m.split(".")[1] for m in sys.modules if m.startswith("opentelemetry.")}))
app.state.proxy.close()
"""


def run_app(extra_env: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    env = {"OPENAI_API_KEY": "sk-test", "PATH": "/usr/bin:/bin", "ORKESTRA_USAGE_LOG": "off"}
    return subprocess.run(
        [sys.executable, "-c", prelude + SERVE],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_tracing_configured_opentelemetry_is_never_imported() -> None:
    result = run_app({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["False", "[]"]


def test_configured_by_the_environment_the_app_makes_its_own_exporting_provider() -> None:
    result = run_app({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "edge"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "True" and "sdk" in lines[1]


def test_configured_without_the_otel_extra_the_app_says_what_to_install() -> None:
    # As if the SDK were not installed: its import fails.
    prelude = "import sys\nsys.modules['opentelemetry.sdk'] = None\n"
    result = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, prelude)
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr
    assert "pip install 'orkestra-router[otel]'" in result.stderr
