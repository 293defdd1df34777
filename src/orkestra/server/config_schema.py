"""The proxy's config file as one typed schema (pydantic): what it validates, and the JSON
Schema editors read (``orkestra serve --print-config-schema``, committed as
``docs/orkestra-config.schema.json``).

Every field of the file is declared once here, with its type, range and description. Reading a
file validates it against these models (unknown fields, wrong types and out-of-range values are
refused); :class:`~orkestra.server.config.ServerConfig` validates its own settings through the
same models, so a config built in Python is held to the same rules. What needs more than the
file — an environment variable that must be set, a provider the catalog must know, a key's
hash — is checked by :mod:`orkestra.server.config` after this.

A validation failure is a :class:`~orkestra.ConfigurationError` naming the file and the field in
the words the proxy always used (``orkestra.toml: server.port: must be an integer in
[0, 65535], not 70000``), never pydantic's own report, and never echoing a secret written where
it does not belong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from orkestra import FALLBACK_ORDERS
from orkestra.errors import ConfigurationError
from orkestra.strategies import STRATEGIES

__all__ = [
    "SECRET_FIELDS",
    "FileConfig",
    "KeyEntry",
    "ProviderEntry",
    "config_json_schema",
    "config_schema_text",
    "validate_file",
    "validate_section",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SHA256 = r"^\s*([Ss][Hh][Aa]256:)?[0-9A-Fa-f]{64}\s*$"
SECRET_FIELDS = frozenset({"api_key", "key", "password", "secret", "token"})
_SECRETS_MESSAGE = (
    "secrets do not belong in the config file: name the environment variable that holds it "
    '(api_key_env = "…"; client keys: sha256 = "…" or key_env = "…")'
)


def _names(names: Mapping[str, object]) -> str:
    return ", ".join(repr(n) for n in names)


def _one_of(allowed: Mapping[str, object]) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise PydanticCustomError(
                "orkestra", "{message}", {"message": f"{value!r} is not one of {_names(allowed)}"}
            )
        return value

    return AfterValidator(check)


class _Section(BaseModel):
    """A table of the file: only its own fields, strictly typed (an integer field takes no
    ``"8000"``, no ``true``); a field set to null (YAML ``~``) takes its default."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, use_attribute_docstrings=True
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        # Python callers' None is a value to check (ServerConfig(host=None) is wrong).
        if isinstance(data, Mapping) and not (info.context or {}).get("python"):
            return {k: v for k, v in data.items() if v is not None}
        return data


class ServerSection(_Section):
    """[server]: where and how the proxy listens."""

    host: Annotated[str, Field(min_length=1)] = DEFAULT_HOST
    """Address to listen on (--host). Not loopback: only with client keys configured."""
    port: Annotated[int, Field(ge=0, le=65_535)] = DEFAULT_PORT
    """Port to listen on (--port); 0: any free port."""
    max_body_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = DEFAULT_MAX_BODY_BYTES
    """Larger request bodies are answered 413."""
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 256
    """Chat requests in flight at once in one process; more wait for a slot (queue_timeout)."""
    queue_timeout: Annotated[float, Field(gt=0.0, le=3_600.0)] = 30.0
    """Seconds a request waits for a slot (max_concurrency) or an upstream connection
    (providers.*.max_connections) before a 503 with Retry-After."""
    workers: Annotated[int, Field(ge=1, le=1024)] = 1
    """Server processes sharing the port (--workers)."""
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    """Client connections one process keeps open at once; more get a 503 and are closed."""
    header_timeout: Annotated[float, Field(gt=0.0, le=3600.0)] = 10.0
    """Seconds a request's headers may take to arrive; then 408 and the connection closes."""
    body_timeout: Annotated[float, Field(gt=0.0, le=86_400.0)] = 60.0
    """Seconds a request's body may take to arrive; then 408."""
    keep_alive_timeout: Annotated[int, Field(ge=1, le=3600)] = 5
    """Seconds an idle keep-alive connection stays open."""
    allowed_hosts: list[str] | None = None
    """The Host names the proxy answers to ("*": any). Default: without client keys, this
    machine's names and host; with keys, any."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Web origins (https://app.example.com) whose pages may call the proxy (CORS); "*" needs
    client keys."""
    strict_params: bool = False
    """Refuse (400) an optional parameter (stop, top_p, seed...) that a model the request may
    go to cannot take, instead of dropping it and naming it in x-orkestra-ignored-params. A
    request's x-orkestra-strict-params header overrides it."""


class RoutingSection(_Section):
    """[routing]: how orkestra/... names are routed, retried and fallen back."""

    strategy: Annotated[
        str,
        _one_of(STRATEGIES),
        Field(json_schema_extra={"enum": list(STRATEGIES)}),
    ] = "cheapest"
    """orkestra/auto's strategy."""
    mode: Annotated[
        str,
        _one_of({"route": None, "cascade": None}),
        Field(json_schema_extra={"enum": ["route", "cascade"]}),
    ] = "route"
    """cascade: every routed name (orkestra/auto, a strategy, a provider) runs a cascade —
    the cheapest adequate model first, its answer checked, the next tier up only when the check
    fails; orkestra/cascade always does."""
    quality: Annotated[float | None, Field(ge=0.0, le=1.0)] = None
    """The router's cost/quality knob, 0..1 (default: the router's calibrated value)."""
    fallback: Annotated[
        str | None,
        _one_of(FALLBACK_ORDERS),
        Field(json_schema_extra={"enum": [*FALLBACK_ORDERS, None]}),
    ] = None
    """Where a failing model's requests go next (default: the library's)."""
    max_retries: Annotated[int, Field(ge=0, le=100)] = 2
    """Retries of one model before falling back."""
    timeout: Annotated[float, Field(gt=0.0, le=86_400.0)] = 600.0
    """Read timeout of one attempt, in seconds."""


class UsageSection(_Section):
    """[usage]: the usage log every call is recorded in (and key budgets are kept in)."""

    enabled: bool = True
    """Record calls (off: key budgets live in each process and start from zero)."""
    database_url: str | None = None
    """sqlite:///path.db or postgresql://… (default: $ORKESTRA_DATABASE_URL, else
    $ORKESTRA_HOME/usage.db)."""
    database_url_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    """The environment variable holding the database URL (it must be set)."""
    store_prompts: bool = False
    """Keep each call's prompt text in the log."""
    budget_sync_seconds: Annotated[float, Field(ge=0.05, le=86_400.0)] = 5.0
    """How often a usage log that is not SQL is re-read for key budgets."""


class SessionsSection(_Section):
    """[sessions]: sticky sessions (a conversation's prompt_cache_key keeps it on one model)."""

    shared: bool = True
    """Keep them in the usage database, shared by every worker and replica on it (off, or no
    SQL usage log: in each process's memory)."""
    ttl_seconds: Annotated[float, Field(ge=1.0, le=366 * 86_400.0)] = 86_400.0
    """Seconds a session lives after its last answered turn."""


class MetricsSection(_Section):
    """[metrics]: GET /metrics, Prometheus' text format."""

    enabled: bool = True
    """Serve /metrics."""
    public: bool = False
    """Answer /metrics without a client key even when keys are configured."""


class TracingSection(_Section):
    """[tracing]: OpenTelemetry traces of chat calls (needs the otel extra)."""

    enabled: bool | None = None
    """On, off, or (unset) on when the OTEL_* variables name an exporter."""
    exporter: Annotated[
        str | None,
        _one_of({"otlp": 1, "console": 1}),
        Field(json_schema_extra={"enum": ["otlp", "console", None]}),
    ] = None
    """otlp (HTTP/protobuf) or console (default: OTEL_TRACES_EXPORTER, else otlp)."""
    endpoint: str | None = None
    """The OTLP/HTTP traces URL (default: the OTEL_EXPORTER_OTLP_* variables)."""
    service_name: str | None = None
    """The spans' service.name (default: OTEL_SERVICE_NAME, else orkestra)."""


class ProviderEntry(_Section):
    """[providers.<name>]: one provider to serve (an empty table: its defaults)."""

    api_key_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    """The variable holding its API key (default: the provider's usual ones)."""
    base_url: str | None = None
    """Where to reach it (default: the SDK's base-URL variable, else the provider)."""
    base_url_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    """The variable holding its base URL (it must be set)."""
    budget_usd: Annotated[float | None, Field(ge=0.0, le=1e12)] = None
    """The most this process may spend on it, in dollars."""
    max_connections: Annotated[int | None, Field(ge=1, le=100_000)] = None
    """Upstream connections to it one process keeps open at most, each reused (a stream
    holds one until it ends); calls beyond wait (server.queue_timeout), then 503. Default:
    server.max_concurrency. (server.max_connections is about client connections.)"""


class KeyEntry(_Section):
    """[[keys]]: a client key (its sha256, or the variable holding the key itself)."""

    name: Annotated[str, Field(min_length=1)]
    """Shown in logs and metrics; distinct per key."""
    sha256: Annotated[str | None, Field(pattern=SHA256)] = None
    """The key's sha256, 64 hex digits (python -m orkestra.server --hash-key)."""
    key_env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    """Or: the variable holding the key itself (at least 24 characters)."""
    budget_usd: Annotated[float | None, Field(ge=0.0, le=1e12)] = None
    """The most this key's requests may spend, in dollars."""
    budget_window: str | None = None
    """The window the budget counts over ("30d", "24h", an ISO date; default: all time)."""
    models: list[Annotated[str, Field(min_length=1)]] | None = None
    """Model names this key may ask for: exact ("gpt-4o-mini", "orkestra/auto") or with *
    ("openai/*", "orkestra/*"); default: any."""
    rpm: Annotated[int | None, Field(ge=1)] = None
    """Requests a minute (per process); more: 429 with retry-after."""
    tpm: Annotated[int | None, Field(ge=1)] = None
    """Tokens (prompt + completion) a minute (per process); more: 429 with retry-after."""
    max_parallel: Annotated[int | None, Field(ge=1)] = None
    """Requests in flight at once (per process); more: 429."""
    expires: datetime | date | str | None = None
    """When the key stops working (then 401 key_expired): a date (its midnight UTC) or a
    date-time."""


class FileConfig(_Section):
    """An orkestra serve config file (TOML or YAML). Every field is optional."""

    model_config = ConfigDict(title="orkestra serve configuration")

    server: ServerSection = ServerSection()
    routing: RoutingSection = RoutingSection()
    usage: UsageSection = UsageSection()
    sessions: SessionsSection = SessionsSection()
    metrics: MetricsSection = MetricsSection()
    tracing: TracingSection = TracingSection()
    providers: dict[str, ProviderEntry] | None = None
    """The providers to serve (none: every provider whose usual key variable is set)."""
    keys: list[KeyEntry] = Field(default_factory=list)
    """Client keys; none: every local request is served, on loopback only."""


# -- errors in the proxy's words -------------------------------------------------------------

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}

# A value of the right type out of its range: the message for each field (``*``: any one
# name or index).
_RANGE_MESSAGES: dict[str, str] = {
    "server.host": "must be a host name or address",
    "server.port": "must be an integer in [0, 65535], not {input!r}",
    "server.max_body_bytes": "must be an integer in [1024, 2**30]",
    "server.max_concurrency": "must be an integer ≥ 1",
    "server.queue_timeout": "must be a number of seconds in (0, 3600]",
    "server.workers": "must be an integer in [1, 1024], not {input!r}",
    "routing.quality": "must be a number in [0, 1], not {input!r}",
    "routing.max_retries": "must be an integer in [0, 100]",
    "routing.timeout": "must be a number of seconds in (0, 86400]",
    "usage.budget_sync_seconds": "must be a number of seconds ≥ 0.05",
    "sessions.ttl_seconds": "must be a number of seconds in [1, 31622400]",
    "usage.database_url_env": "{input!r} is not an environment variable name",
    "providers.*.api_key_env": "{input!r} is not an environment variable name",
    "providers.*.base_url_env": "{input!r} is not an environment variable name",
    "keys[*].key_env": "{input!r} is not an environment variable name",
    "providers.*.budget_usd": "must be a number of dollars ≥ 0, not {input!r}",
    "providers.*.max_connections": "must be an integer ≥ 1, not {input!r}",
    "keys[*].budget_usd": "must be a number of dollars ≥ 0, not {input!r}",
    "keys[*].sha256": "expected 64 hex digits (python -m orkestra.server --hash-key)",
    "keys[*].name": "missing: give each key a name (it is shown in logs)",
}
_WHOLE_VALUE = {
    "providers.*": "must be a table (an empty one serves it with defaults)",
    "keys[*]": "must be a table with name and sha256 (or key_env)",
    "keys[*].name": "missing: give each key a name (it is shown in logs)",
}


def _path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _matches(pattern: str, path: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.\[\]]*"), path) is not None


def _lookup(table: Mapping[str, str], path: str) -> str | None:
    for pattern, message in table.items():
        if _matches(pattern, path):
            return message
    return None


def _message(error: ErrorDetails) -> tuple[str, str]:
    """The field and what is wrong with it, as the proxy says it."""
    path = _path(error["loc"])
    kind = error["type"]
    value = error.get("input")
    name = path.rsplit(".", 1)[-1]
    if kind == "extra_forbidden":
        message = _SECRETS_MESSAGE if name.lower() in SECRET_FIELDS else "unknown field"
    elif kind == "orkestra":
        message = str((error.get("ctx") or {}).get("message", error["msg"]))
    elif kind in ("missing", "model_type", "dict_type") and _lookup(_WHOLE_VALUE, path):
        message = str(_lookup(_WHOLE_VALUE, path))
    elif kind in _TYPE_NAMES:
        message = f"must be {_TYPE_NAMES[kind]}, not {value!r}"
    elif kind == "finite_number":
        message = f"must be a finite number, not {value!r}"
    else:
        template = _lookup(_RANGE_MESSAGES, path)
        # A rule without words of its own keeps pydantic's sentence.
        message = str(error["msg"]) if template is None else template.format(input=value)
    return path, message


def _loc(where: str) -> tuple[int | str, ...]:
    """``"keys[0]"`` → ``("keys", 0)``; ``"providers.openai"`` → ``("providers", "openai")``."""
    parts: list[int | str] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", where):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _raise(exc: ValidationError, source: str, prefix: str = "") -> ConfigurationError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path, message = _message({**first, "loc": (*_loc(prefix), *first["loc"])})
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigurationError(f"{source}: {path}: {message}{more}")


def validate_file(data: object, source: str) -> FileConfig:
    """The file's tables, checked; a :class:`ConfigurationError` naming the field if not."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source}: the top level must be a table of sections")
    try:
        return FileConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise _raise(exc, source) from None


_SECTIONS: dict[str, type[_Section]] = {
    "server": ServerSection,
    "routing": RoutingSection,
    "usage": UsageSection,
    "sessions": SessionsSection,
    "metrics": MetricsSection,
    "tracing": TracingSection,
    "providers.*": ProviderEntry,
    "keys[*]": KeyEntry,
}


def validate_section(source: str, where: str, values: Mapping[str, Any]) -> None:
    """Check settings given in Python (``ServerConfig(...)``) by the file's rules for the
    table ``where`` (``"server"``, ``"providers.openai"``, ``"keys[0]"``…)."""
    model = next(m for pattern, m in _SECTIONS.items() if _matches(pattern, where))
    try:
        model.model_validate(dict(values), context={"python": True})
    except ValidationError as exc:
        raise _raise(exc, source, where) from None


# -- the JSON Schema -------------------------------------------------------------------------


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a config file, for editors (Taplo, YAML language server)."""
    schema = FileConfig.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }


def config_schema_text() -> str:
    """:func:`config_json_schema` as the committed file holds it (sorted, indented)."""
    return json.dumps(config_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
