"""OpenTelemetry traces of the proxy's chat calls, following the GenAI semantic conventions.

Off unless configured, and then nothing of OpenTelemetry is imported (``import orkestra`` and the
server's start stay light). Configured means either

- ``[tracing] enabled = true`` in the config, or
- no ``[tracing] enabled`` and the standard variables name an exporter:
  ``OTEL_TRACES_EXPORTER`` (not ``none``), ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``;

and ``OTEL_SDK_DISABLED`` is not ``true``. It needs the ``otel`` extra
(``pip install 'orkestra-router[otel]'``): configured without it, the server refuses to start
and says what to install.

One span per chat request (kind CLIENT, named ``chat <model asked for>``), a child of the
caller's span when the request carries a W3C ``traceparent``. Attributes: ``gen_ai.operation.name``,
``gen_ai.system`` (and its newer name ``gen_ai.provider.name``), ``gen_ai.request.model``,
``gen_ai.request.max_tokens``, ``gen_ai.request.temperature``, ``gen_ai.response.model``,
``gen_ai.response.id``, ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``; orkestra's own: ``orkestra.tier``, ``orkestra.cost_usd``,
``orkestra.savings_usd``, ``orkestra.fallback``, ``orkestra.attempts``, ``orkestra.routed``,
``orkestra.strategy``, ``orkestra.request_id``, ``orkestra.key_id``; a failed request has status
ERROR and ``error.type``. Each attempt that failed is an ``orkestra.attempt`` event. No prompt or
answer text is recorded.

The spans go to the process's tracer provider when the application already set one up (say under
``opentelemetry-instrument``); otherwise the app makes its own: service name from
``[tracing] service_name``, else ``OTEL_SERVICE_NAME``, else ``orkestra``; exporter OTLP over
HTTP (``OTEL_EXPORTER_OTLP_*`` variables, or ``[tracing] endpoint``), or ``console``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orkestra import Response
from orkestra.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from orkestra.server.config import ServerConfig
    from orkestra.server.request import ChatParams

__all__ = ["CallSpan", "ProxyTracer", "tracing_configured"]

_EXPORTER_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# gen_ai.system's values for our providers (the GenAI conventions' well-known names).
_SYSTEMS = {"openai": "openai", "anthropic": "anthropic", "google": "gcp.gemini"}
_INSTALL = "pip install 'orkestra-router[otel]'"


def tracing_configured(config: ServerConfig, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the config or the environment asks for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if config.tracing is not None:
        return config.tracing
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return (bool(exporter) and exporter != "none") or any(env.get(v) for v in _EXPORTER_VARIABLES)


def _system(provider: str) -> str:
    return _SYSTEMS.get(provider, provider)


class ProxyTracer:
    """The tracer of one app, and the provider it owns (if it made one)."""

    def __init__(self, tracer: Tracer, owned: TracerProvider | None = None) -> None:
        self.tracer = tracer
        self.owned = owned

    @classmethod
    def create(
        cls,
        config: ServerConfig,
        environ: Mapping[str, str] | None = None,
        *,
        provider: TracerProvider | None = None,
    ) -> ProxyTracer | None:
        """The app's tracer: on ``provider`` if given, else None unless tracing is configured."""
        from orkestra._version import __version__

        if provider is None:
            if not tracing_configured(config, environ):
                return None
            provider, owned = _provider(config, environ)
        else:
            owned = None
        return cls(provider.get_tracer("orkestra.server", __version__), owned)

    def start(
        self,
        params: ChatParams,
        headers: Mapping[str, str],
        *,
        providers: Sequence[str],
        routed: bool,
        request_id: str,
        key_id: str | None,
    ) -> CallSpan:
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind

        system = _system(providers[0]) if len(providers) == 1 else "orkestra"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": params.model,
            "orkestra.routed": routed,
            "orkestra.stream": params.stream,
            "orkestra.request_id": request_id,
        }
        if params.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = params.max_tokens
        if params.temperature is not None:
            attributes["gen_ai.request.temperature"] = params.temperature
        if key_id is not None:
            attributes["orkestra.key_id"] = key_id
        span = self.tracer.start_span(
            f"chat {params.model}",
            context=propagate.extract(dict(headers)),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        return CallSpan(span)

    def close(self) -> None:
        """Send what is buffered and stop (a provider this app made)."""
        if self.owned is not None:
            shutdown = getattr(self.owned, "shutdown", None)
            if shutdown is not None:
                shutdown()


class CallSpan:
    """The span of one chat request, ended once with what came of it."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self._ended = False

    def end(self, response: Response | None, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        from opentelemetry.trace import Status, StatusCode

        span = self.span
        attempts = response.attempts if response is not None else getattr(error, "attempts", ())
        for attempt in attempts or ():
            if attempt.error is not None:
                span.add_event(
                    "orkestra.attempt",
                    {
                        "gen_ai.system": _system(attempt.provider),
                        "gen_ai.request.model": attempt.model,
                        "error.type": attempt.error,
                        "orkestra.cost_usd": attempt.cost,
                    },
                )
        models = {(a.provider, a.model) for a in attempts or ()}
        span.set_attribute("orkestra.attempts", len(attempts or ()))
        span.set_attribute("orkestra.fallback", len(models) > 1)
        if response is not None:
            system = _system(response.provider)
            span.set_attributes(
                {
                    "gen_ai.system": system,
                    "gen_ai.provider.name": system,
                    "gen_ai.response.model": response.model,
                    "gen_ai.usage.input_tokens": response.input_tokens,
                    "gen_ai.usage.output_tokens": response.output_tokens,
                    "orkestra.tier": response.tier,
                    "orkestra.cost_usd": response.total_cost,
                    "orkestra.savings_usd": response.savings,
                    "orkestra.base_model": response.base_model,
                }
            )
            if response.routing.strategy:
                span.set_attribute("orkestra.strategy", response.routing.strategy)
            if response.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
            if response.response_id:
                span.set_attribute("gen_ai.response.id", response.response_id)
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            if attempts:
                span.set_attribute("orkestra.cost_usd", sum(a.cost for a in attempts))
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def _provider(
    config: ServerConfig, environ: Mapping[str, str] | None
) -> tuple[TracerProvider, TracerProvider | None]:
    """The process's SDK tracer provider if the application set one, else one of our own."""
    env = os.environ if environ is None else environ
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        raise ConfigurationError(
            f"{config.source}: tracing is configured, but OpenTelemetry's SDK is not "
            f"installed: {_INSTALL}"
        ) from None
    current = trace.get_tracer_provider()
    if isinstance(current, SDKTracerProvider):
        return current, None
    name = config.tracing_service_name or env.get("OTEL_SERVICE_NAME") or "orkestra"
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    exporter: SpanExporter
    if config.tracing_exporter is not None:
        exporter_name = config.tracing_exporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name in ("otlp", "none"):  # "none" with [tracing] enabled = true: OTLP
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigurationError(
                f"{config.source}: tracing is configured, but the OTLP exporter is not "
                f"installed: {_INSTALL}"
            ) from None
        exporter = OTLPSpanExporter(endpoint=config.tracing_endpoint)
    else:
        raise ConfigurationError(
            f"{config.source}: tracing.exporter: {exporter_name!r} is not one of 'otlp', "
            "'console' (OTEL_TRACES_EXPORTER)"
        )
    provider = SDKTracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, provider
