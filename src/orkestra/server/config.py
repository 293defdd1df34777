"""The proxy's configuration: a TOML or YAML file, or nothing but the environment.

A file names the providers to serve, where their keys are (environment variable *names*, never
the keys), routing, budgets and the client keys (stored as sha256 hashes)::

    [server]
    host = "127.0.0.1"
    port = 8000

    [routing]
    strategy = "cheapest"          # orkestra/auto: cheapest | smartest | balanced
    mode = "route"                 # route | cascade: what orkestra/auto and the others do
    quality = 0.8                  # the router's cost/quality knob, 0..1
    fallback = "up-then-down"      # up-then-down | down-then-up | up | down | same-tier | none

    [providers.openai]
    api_key_env = "OPENAI_API_KEY"
    budget_usd = 50

    [sessions]
    shared = true                  # sticky sessions in the usage database (workers, replicas)

    [[keys]]
    name = "team-a"
    sha256 = "…"                   # python -m orkestra.server --hash-key
    budget_usd = 10
    budget_window = "30d"

Every field is checked when the file is read: an unknown field, a wrong type or a missing
variable raises :class:`~orkestra.ConfigurationError` naming the field, so the server refuses to
start and says why. Without a file (:meth:`ServerConfig.from_env`) the proxy serves every
provider whose usual key variable is set; the SDKs' base-URL variables apply either way.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orkestra._endpoint import check_api_key
from orkestra._net import ANY_HOST, allowed_hosts_for
from orkestra.catalog import default_catalog
from orkestra.errors import ConfigurationError
from orkestra.server.config_schema import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    ProviderEntry,
    validate_file,
    validate_section,
)
from orkestra.server.keys import (
    KeyConfig,
    check_keys,
    hash_key,
    key_from_entry,
    new_key,
)

__all__ = [
    "KeyConfig",
    "ProviderConfig",
    "ServerConfig",
    "hash_key",
    "load_config",
    "new_key",
]

_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")


def _fail(where: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: {message}")


@dataclass(frozen=True)
class ProviderConfig:
    """One provider the proxy serves. ``api_key_env``: the variable holding its key (default:
    the provider's usual ones); ``base_url``/``base_url_env``: where to reach it (default: the
    SDK's own variable, else the provider's address); ``budget_usd``: a cap on what this
    replica may spend on it; ``max_connections``: the most connections to it one process keeps
    open (default: the server's ``max_concurrency``)."""

    name: str
    api_key_env: str | None = None
    base_url: str | None = None
    base_url_env: str | None = None
    budget_usd: float | None = None
    max_connections: int | None = None

    def __repr__(self) -> str:
        return f"ProviderConfig({self.name!r}, api_key_env={self.api_key_env!r})"

    def connections(self, server: ServerConfig) -> int:
        """The most connections to this provider one process keeps open."""
        return server.max_concurrency if self.max_connections is None else self.max_connections

    def key_variables(self) -> tuple[str, ...]:
        if self.api_key_env is not None:
            return (self.api_key_env,)
        return default_catalog().provider(self.name).env_keys

    def api_key(self, environ: Mapping[str, str] | None = None) -> str:
        """The key, read from the environment now."""
        env = os.environ if environ is None else environ
        for variable in self.key_variables():
            if env.get(variable):
                return check_api_key(self.name, env[variable], f"${variable}")
        names = " or ".join(self.key_variables())
        raise ConfigurationError(
            f"providers.{self.name}: no API key: the environment variable {names} is not set"
        )

    def resolved_base_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        if self.base_url is not None:
            return self.base_url
        if self.base_url_env is not None:
            if not env.get(self.base_url_env):
                raise ConfigurationError(
                    f"providers.{self.name}.base_url_env: the environment variable "
                    f"{self.base_url_env} is not set"
                )
            return env[self.base_url_env]
        return None  # the Provider reads the SDK's own variable


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``create_app`` needs. Checked on construction.

    >>> config = ServerConfig(providers=(ProviderConfig("openai"),))
    >>> config.strategy
    'cheapest'
    """

    providers: tuple[ProviderConfig, ...]
    keys: tuple[KeyConfig, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    strategy: str = "cheapest"
    mode: str = "route"
    """``"cascade"``: every routed model name (``orkestra/auto``, a strategy, a provider)
    cascades; ``orkestra/cascade`` always does."""
    quality: float | None = None
    fallback: str | None = None
    max_retries: int = 2
    timeout: float = 600.0
    usage_log: bool = True
    database_url: str | None = field(default=None, repr=False)
    """``sqlite:///…`` or ``postgresql://…``; default ``$ORKESTRA_DATABASE_URL``, else
    ``$ORKESTRA_HOME/usage.db``."""
    store_prompts: bool = False
    budget_sync_seconds: float = 5.0
    shared_sessions: bool = True
    """Keep sticky sessions (``prompt_cache_key``) in the usage database, shared by every
    worker and replica on it; False (or no SQL usage log): in each process's memory."""
    session_ttl: float = 24 * 3600.0
    """Seconds a sticky session lives after its last answered turn."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int = 256
    """Chat requests in flight at once in one process; more wait for a slot."""
    queue_timeout: float = 30.0
    """Seconds a request waits for a slot, or for a connection to its provider, before it is
    answered 503 with ``Retry-After``."""
    workers: int = 1
    """Server processes sharing the port (``orkestra serve --workers N``)."""
    max_connections: int = 1000
    """Client connections one process keeps open at once (more: 503, closed at once)."""
    header_timeout: float = 10.0
    """Seconds a request's headers may take to arrive (then 408, closed)."""
    body_timeout: float = 60.0
    """Seconds a request's body may take to arrive (then 408)."""
    keep_alive_timeout: int = 5
    """Seconds an idle keep-alive connection stays open."""
    metrics: bool = True
    """Serve ``GET /metrics`` (Prometheus)."""
    metrics_public: bool = False
    """Answer ``/metrics`` without a client key even when keys are configured."""
    tracing: bool | None = None
    """OpenTelemetry traces: on, off, or (None) on when the ``OTEL_*`` variables name an
    exporter (:mod:`orkestra.server.tracing`)."""
    tracing_exporter: str | None = None
    """``"otlp"`` or ``"console"`` (default: ``OTEL_TRACES_EXPORTER``, else OTLP)."""
    tracing_endpoint: str | None = None
    """The OTLP/HTTP traces URL (default: the ``OTEL_EXPORTER_OTLP_*`` variables)."""
    tracing_service_name: str | None = None
    """The traces' ``service.name`` (default: ``OTEL_SERVICE_NAME``, else ``orkestra``)."""
    allowed_hosts: tuple[str, ...] | None = None
    """The ``Host`` names the proxy answers to (``"*"``: any). Default: without client keys,
    this machine's names and ``host``; with keys, any (the key is what protects it)."""
    strict_params: bool = False
    """Refuse (400) an optional parameter some model the request may go to cannot take,
    rather than drop it and report it (``x-orkestra-strict-params`` overrides per request)."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins (``https://app.example.com``) whose pages may call the proxy (CORS); any
    other browser request from a page is refused. ``"*"`` needs client keys."""
    source: str = "ServerConfig"

    def __post_init__(self) -> None:
        self._check_providers()
        self._check_keys()
        self._check_settings()

    def _check_providers(self) -> None:
        src = self.source
        if not self.providers:
            raise _fail(src, "providers: name at least one provider to serve")
        catalog = default_catalog()
        seen: set[str] = set()
        for provider in self.providers:
            if provider.name not in catalog.providers:
                known = ", ".join(catalog.providers)
                raise _fail(src, f"providers.{provider.name}: unknown provider; use {known}")
            if provider.name in seen:
                raise _fail(src, f"providers.{provider.name}: named twice")
            seen.add(provider.name)
            validate_section(
                src,
                f"providers.{provider.name}",
                {
                    "api_key_env": provider.api_key_env,
                    "base_url": provider.base_url,
                    "base_url_env": provider.base_url_env,
                    "budget_usd": provider.budget_usd,
                    "max_connections": provider.max_connections,
                },
            )

    def _check_keys(self) -> None:
        check_keys(self.source, self.keys)

    def _check_browsers(self) -> None:
        src = self.source
        for name in self.allowed_hosts or ():
            if not isinstance(name, str) or not name.strip() or any(c in name for c in "/ "):
                raise _fail(src, f"server.allowed_hosts: {name!r} is not a host name")
        for origin in self.allowed_origins:
            if origin == "*":
                if not self.keys:
                    raise _fail(
                        src,
                        "server.allowed_origins: '*' would let any web page spend your provider "
                        "keys through a proxy without client keys; name the origins, or add "
                        "[[keys]]",
                    )
                continue
            if not isinstance(origin, str) or not _ORIGIN.fullmatch(origin):
                raise _fail(
                    src,
                    f"server.allowed_origins: {origin!r} is not an origin: give scheme://host"
                    "[:port] with no path, as a browser sends it (https://app.example.com)",
                )

    @property
    def hosts(self) -> frozenset[str]:
        """The ``Host`` names served (see :attr:`allowed_hosts`)."""
        if self.allowed_hosts is not None:
            return frozenset(h.strip("[]").lower() for h in self.allowed_hosts)
        if self.keys:
            return frozenset({ANY_HOST})
        return allowed_hosts_for(self.host)

    def _check_settings(self) -> None:
        """The settings, by the file's rules (:mod:`~orkestra.server.config_schema`)."""
        self._check_browsers()
        sections: dict[str, dict[str, Any]] = {
            "server": {
                "host": self.host,
                "port": self.port,
                "max_body_bytes": self.max_body_bytes,
                "max_concurrency": self.max_concurrency,
                "queue_timeout": self.queue_timeout,
                "workers": self.workers,
                "max_connections": self.max_connections,
                "header_timeout": self.header_timeout,
                "body_timeout": self.body_timeout,
                "keep_alive_timeout": self.keep_alive_timeout,
                "allowed_hosts": None if self.allowed_hosts is None else list(self.allowed_hosts),
                "allowed_origins": list(self.allowed_origins),
                "strict_params": self.strict_params,
            },
            "routing": {
                "strategy": self.strategy,
                "mode": self.mode,
                "quality": self.quality,
                "fallback": self.fallback,
                "max_retries": self.max_retries,
                "timeout": self.timeout,
            },
            "usage": {
                "enabled": self.usage_log,
                "database_url": self.database_url,
                "store_prompts": self.store_prompts,
                "budget_sync_seconds": self.budget_sync_seconds,
            },
            "sessions": {"shared": self.shared_sessions, "ttl_seconds": self.session_ttl},
            "metrics": {"enabled": self.metrics, "public": self.metrics_public},
            "tracing": {
                "enabled": self.tracing,
                "exporter": self.tracing_exporter,
                "endpoint": self.tracing_endpoint,
                "service_name": self.tracing_service_name,
            },
        }
        for name, values in sections.items():
            validate_section(self.source, name, values)

    @property
    def provider_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Serve every provider whose usual key variable is set (no file).

        Providers whose models the user names (vllm, openai-compatible: no tiers in the
        catalog) can't be served from a key alone; they need a config file with ``models``.
        """
        env = os.environ if environ is None else environ
        catalog = default_catalog()
        keyed = [
            name
            for name, info in catalog.providers.items()
            if any(env.get(v) for v in info.env_keys)
        ]
        providers = tuple(ProviderConfig(n) for n in keyed if catalog.provider(n).tiers)
        if not providers:
            variables = ", ".join(
                v for info in catalog.providers.values() if info.tiers for v in info.env_keys
            )
            untiered = [n for n in keyed if not catalog.provider(n).tiers]
            hint = (
                f" ({', '.join(untiered)} need a config file that names their models and base_url)"
                if untiered
                else ""
            )
            raise ConfigurationError(
                f"no provider to serve: set one of {variables}, or pass a config file "
                f"(--config) that names providers and their key variables{hint}"
            )
        return cls(providers=providers, source="environment", **overrides)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
    ) -> ServerConfig:
        """Read a ``.toml``, ``.yaml`` or ``.yml`` file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read config {str(path)!r}: {exc.strerror or exc}"
            ) from None
        data = _parse(path, raw)
        return cls.from_mapping(data, source=str(path), environ=environ)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "config",
        environ: Mapping[str, str] | None = None,
    ) -> ServerConfig:
        """The config a parsed file describes (the same fields as the file), validated by
        :class:`~orkestra.server.config_schema.FileConfig`."""
        env = os.environ if environ is None else environ
        file = validate_file(data, source)
        server, routing, usage = file.server, file.routing, file.usage
        url = usage.database_url
        if url is not None and usage.database_url_env is not None:
            raise _fail(
                source, "usage.database_url: give database_url or database_url_env, not both"
            )
        if usage.database_url_env is not None:
            if not env.get(usage.database_url_env):
                raise _fail(
                    source,
                    f"usage.database_url_env: the environment variable {usage.database_url_env} "
                    "is not set",
                )
            url = env[usage.database_url_env]
        if file.providers is None:
            try:
                providers = cls.from_env(env).providers
            except ConfigurationError as exc:
                raise _fail(source, f"no [providers] section, and {exc}") from None
        else:
            providers = tuple(
                _provider(name, entry, source, env) for name, entry in file.providers.items()
            )
        return cls(
            providers=providers,
            keys=tuple(key_from_entry(i, entry, source, env) for i, entry in enumerate(file.keys)),
            host=server.host,
            port=server.port,
            max_body_bytes=server.max_body_bytes,
            max_concurrency=server.max_concurrency,
            queue_timeout=server.queue_timeout,
            workers=server.workers,
            max_connections=server.max_connections,
            header_timeout=server.header_timeout,
            body_timeout=server.body_timeout,
            keep_alive_timeout=server.keep_alive_timeout,
            allowed_hosts=None if server.allowed_hosts is None else tuple(server.allowed_hosts),
            allowed_origins=tuple(server.allowed_origins),
            strict_params=server.strict_params,
            strategy=routing.strategy,
            mode=routing.mode,
            quality=routing.quality,
            fallback=routing.fallback,
            max_retries=routing.max_retries,
            timeout=routing.timeout,
            usage_log=usage.enabled,
            database_url=url,
            store_prompts=usage.store_prompts,
            budget_sync_seconds=usage.budget_sync_seconds,
            shared_sessions=file.sessions.shared,
            session_ttl=file.sessions.ttl_seconds,
            metrics=file.metrics.enabled,
            metrics_public=file.metrics.public,
            tracing=file.tracing.enabled,
            tracing_exporter=file.tracing.exporter,
            tracing_endpoint=file.tracing.endpoint,
            tracing_service_name=file.tracing.service_name,
            source=source,
        )


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """The config in ``path``, or (no path) the one the environment implies."""
    if path is None:
        return ServerConfig.from_env(environ)
    return ServerConfig.load(path, environ)


# -- reading ---------------------------------------------------------------------------------


def _parse(path: Path, raw: bytes) -> Mapping[str, Any]:
    suffix = path.suffix.lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: not UTF-8 text") from None
    if suffix == ".toml":
        toml: Any = _import_first("tomllib", "tomli")
        if toml is None:
            raise ConfigurationError(f"{path}: reading TOML on Python 3.10 needs tomli")
        try:
            parsed: Any = toml.loads(text)
        except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
            raise ConfigurationError(f"{path}: invalid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        yaml: Any = _import_first("yaml")
        if yaml is None:
            raise ConfigurationError(f"{path}: reading YAML needs PyYAML: pip install pyyaml")
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path}: invalid YAML: {exc}") from None
        parsed = {} if parsed is None else parsed
    else:
        raise ConfigurationError(f"{path}: unknown config format; use a .toml, .yaml or .yml file")
    if not isinstance(parsed, Mapping):
        raise ConfigurationError(f"{path}: the top level must be a table of sections")
    return parsed


def _import_first(*names: str) -> Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _provider(
    name: str, entry: ProviderEntry, source: str, env: Mapping[str, str]
) -> ProviderConfig:
    where = f"providers.{name}"
    if entry.base_url is not None and entry.base_url_env is not None:
        raise _fail(source, f"{where}.base_url: give base_url or base_url_env, not both")
    if name not in default_catalog().providers:
        known = ", ".join(default_catalog().providers)
        raise _fail(source, f"{where}: unknown provider; use {known}")
    config = ProviderConfig(
        name,
        entry.api_key_env,
        entry.base_url,
        entry.base_url_env,
        entry.budget_usd,
        entry.max_connections,
    )
    try:  # fail now, at start, not at the first request
        config.api_key(env)
        config.resolved_base_url(env)
    except ConfigurationError as exc:
        raise _fail(source, str(exc)) from None
    return config
