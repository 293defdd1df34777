"""The proxy's configuration: a TOML or YAML file, or nothing but the environment.

A file names the providers to serve, where their keys are (environment variable *names*, never
the keys), routing, budgets and the client keys (stored as sha256 hashes)::

    [server]
    host = "127.0.0.1"
    port = 8000

    [routing]
    strategy = "cheapest"          # orkestra/auto: cheapest | smartest | balanced
    quality = 0.8                  # the router's cost/quality knob, 0..1
    fallback = "up-then-down"      # up-then-down | down-then-up | up | down | same-tier | none

    [providers.openai]
    api_key_env = "OPENAI_API_KEY"
    budget_usd = 50

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

import hashlib
import importlib
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from orkestra import FALLBACK_ORDERS
from orkestra._endpoint import check_api_key
from orkestra._net import ANY_HOST, allowed_hosts_for
from orkestra.catalog import default_catalog
from orkestra.errors import ConfigurationError
from orkestra.strategies import STRATEGIES
from orkestra.usage import parse_since

__all__ = [
    "KeyConfig",
    "ProviderConfig",
    "ServerConfig",
    "hash_key",
    "load_config",
    "new_key",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MIN_KEY_LENGTH = 24
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

T = TypeVar("T")


def hash_key(key: str) -> str:
    """The sha256 (hex) a config stores for a client key.

    >>> hash_key("orkestra-example-key")[:12]
    '3e8d89f76b0f'
    """
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random client key (256 bits), to hand to a client; store :func:`hash_key` of it."""
    return "ok-" + secrets.token_urlsafe(32)


def _fail(where: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: {message}")


@dataclass(frozen=True)
class ProviderConfig:
    """One provider the proxy serves. ``api_key_env``: the variable holding its key (default:
    the provider's usual ones); ``base_url``/``base_url_env``: where to reach it (default: the
    SDK's own variable, else the provider's address); ``budget_usd``: a cap on what this
    replica may spend on it."""

    name: str
    api_key_env: str | None = None
    base_url: str | None = None
    base_url_env: str | None = None
    budget_usd: float | None = None

    def __repr__(self) -> str:
        return f"ProviderConfig({self.name!r}, api_key_env={self.api_key_env!r})"

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
class KeyConfig:
    """A client key: its name (shown in logs), the sha256 of the key, and an optional budget
    (dollars, over ``budget_window`` such as ``"30d"``, else the key's whole history)."""

    name: str
    sha256: str = field(repr=False)
    budget_usd: float | None = None
    budget_window: str | None = None

    @property
    def key_id(self) -> str:
        """The id the usage log stores (``orkestra.usage.key_id_for`` of the key)."""
        return self.sha256[:12]


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
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int = 256
    workers: int = 1
    """Server processes sharing the port (``orkestra serve --workers N``)."""
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
            if provider.budget_usd is not None:
                _check_money(f"{src}: providers.{provider.name}.budget_usd", provider.budget_usd)

    def _check_keys(self) -> None:
        names: set[str] = set()
        hashes: set[str] = set()
        for i, key in enumerate(self.keys):
            where = f"{self.source}: keys[{i}]"
            if not key.name or key.name in names:
                raise ConfigurationError(f"{where}.name: give each key a distinct name")
            if not _SHA256_HEX.fullmatch(key.sha256):
                raise ConfigurationError(f"{where}.sha256: expected 64 lower-case hex digits")
            if key.sha256 in hashes:
                raise ConfigurationError(f"{where}: the same key is configured twice")
            names.add(key.name)
            hashes.add(key.sha256)
            if key.budget_usd is not None:
                _check_money(f"{where}.budget_usd", key.budget_usd)
            if key.budget_window is not None:
                try:
                    parse_since(key.budget_window)
                except ConfigurationError as exc:
                    raise ConfigurationError(f"{where}.budget_window: {exc}") from None

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
        self._check_browsers()
        problems = [
            (
                self.strategy in STRATEGIES,
                f"routing.strategy: {self.strategy!r} is not one of {_list(STRATEGIES)}",
            ),
            (
                self.fallback is None or self.fallback in FALLBACK_ORDERS,
                f"routing.fallback: {self.fallback!r} is not one of {_list(FALLBACK_ORDERS)}",
            ),
            (
                self.quality is None or _number_in(self.quality, 0.0, 1.0),
                f"routing.quality: must be a number in [0, 1], not {self.quality!r}",
            ),
            (
                _int_in(self.max_retries, 0, 100),
                "routing.max_retries: must be an integer in [0, 100]",
            ),
            (
                _number_in(self.timeout, 0.001, 86_400.0),
                "routing.timeout: must be a number of seconds in (0, 86400]",
            ),
            (
                _int_in(self.port, 0, 65_535),
                f"server.port: must be an integer in [0, 65535], not {self.port!r}",
            ),
            (
                isinstance(self.host, str) and bool(self.host),
                "server.host: must be a host name or address",
            ),
            (
                _int_in(self.max_body_bytes, 1024, 1 << 30),
                "server.max_body_bytes: must be an integer in [1024, 2**30]",
            ),
            (
                _int_in(self.max_concurrency, 1, 100_000),
                "server.max_concurrency: must be an integer ≥ 1",
            ),
            (
                self.tracing_exporter in (None, "otlp", "console"),
                f"tracing.exporter: {self.tracing_exporter!r} is not one of 'otlp', 'console'",
            ),
            (
                _int_in(self.workers, 1, 1024),
                f"server.workers: must be an integer in [1, 1024], not {self.workers!r}",
            ),
            (
                _number_in(self.budget_sync_seconds, 0.05, 86_400.0),
                "usage.budget_sync_seconds: must be a number of seconds ≥ 0.05",
            ),
        ]
        for ok, message in problems:
            if not ok:
                raise _fail(self.source, message)

    @property
    def provider_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.providers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Serve every provider whose usual key variable is set (no file)."""
        env = os.environ if environ is None else environ
        catalog = default_catalog()
        providers = tuple(
            ProviderConfig(name)
            for name, info in catalog.providers.items()
            if any(env.get(v) for v in info.env_keys)
        )
        if not providers:
            variables = ", ".join(v for info in catalog.providers.values() for v in info.env_keys)
            raise ConfigurationError(
                f"no provider to serve: set one of {variables}, or pass a config file "
                "(--config) that names providers and their key variables"
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
        """The config a parsed file describes (the same fields as the file)."""
        env = os.environ if environ is None else environ
        if not isinstance(data, Mapping):
            raise _fail(source, "the top level must be a table of sections")
        top = _Section(data, "", source)
        server = top.section("server")
        routing = top.section("routing")
        usage = top.section("usage")
        observability = _observability(top.section("metrics"), top.section("tracing"))
        providers_data = top.take("providers", Mapping, None)
        keys_data: list[Any] = top.take("keys", list, [])
        top.done()

        kwargs: dict[str, Any] = {"source": source, **observability}
        kwargs["host"] = server.take("host", str, DEFAULT_HOST)
        kwargs["port"] = server.take("port", int, DEFAULT_PORT)
        kwargs["max_body_bytes"] = server.take("max_body_bytes", int, DEFAULT_MAX_BODY_BYTES)
        kwargs["max_concurrency"] = server.take("max_concurrency", int, 256)
        kwargs["workers"] = server.take("workers", int, 1)
        hosts = server.take("allowed_hosts", list, None)
        kwargs["allowed_hosts"] = None if hosts is None else tuple(hosts)
        kwargs["allowed_origins"] = tuple(server.take("allowed_origins", list, []))
        server.done()

        kwargs["strategy"] = routing.take("strategy", str, "cheapest")
        kwargs["quality"] = routing.take("quality", float, None)
        kwargs["fallback"] = routing.take("fallback", str, None)
        kwargs["max_retries"] = routing.take("max_retries", int, 2)
        kwargs["timeout"] = routing.take("timeout", float, 600.0)
        routing.done()

        kwargs["usage_log"] = usage.take("enabled", bool, True)
        url = usage.take("database_url", str, None)
        url_env = usage.take("database_url_env", str, None)
        if url is not None and url_env is not None:
            raise usage.error("database_url", "give database_url or database_url_env, not both")
        if url_env is not None:
            usage.check_env_name("database_url_env", url_env)
            if not env.get(url_env):
                raise usage.error(
                    "database_url_env", f"the environment variable {url_env} is not set"
                )
            url = env[url_env]
        kwargs["database_url"] = url
        kwargs["store_prompts"] = usage.take("store_prompts", bool, False)
        kwargs["budget_sync_seconds"] = usage.take("budget_sync_seconds", float, 5.0)
        usage.done()

        if providers_data is None:
            try:
                kwargs["providers"] = cls.from_env(env).providers
            except ConfigurationError as exc:
                raise _fail(source, f"no [providers] section, and {exc}") from None
        else:
            kwargs["providers"] = tuple(
                _provider(name, value, source, env) for name, value in providers_data.items()
            )
        kwargs["keys"] = tuple(_key(i, value, source, env) for i, value in enumerate(keys_data))
        return cls(**kwargs)


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


def _list(names: Mapping[str, object]) -> str:
    return ", ".join(repr(n) for n in names)


def _number_in(value: object, low: float, high: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and low <= value <= high
    )


def _int_in(value: object, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _check_money(where: str, value: object) -> None:
    if not _number_in(value, 0.0, 1e12):
        raise ConfigurationError(f"{where}: must be a number of dollars ≥ 0, not {value!r}")


_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    Mapping: "a table",
}

_SECRET_FIELDS = frozenset({"api_key", "key", "password", "secret", "token"})


class _Section:
    """One table of the file: typed reads, then :meth:`done` refuses what was not read."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data, self.path, self.source = data, path, source
        self.read: set[str] = set()

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigurationError:
        return _fail(self.source, f"{self.where(name)}: {message}")

    def take(self, name: str, kind: type[T] | Any, default: T) -> T:
        self.read.add(name)
        value = self.data.get(name)
        if value is None:
            return default
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            ok = True
        if not ok:
            raise self.error(name, f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(name, f"must be a finite number, not {value!r}")
        return value  # type: ignore[return-value]

    def section(self, name: str) -> _Section:
        return _Section(self.take(name, Mapping, {}), self.where(name), self.source)

    def check_env_name(self, name: str, value: str) -> None:
        if not _ENV_NAME.fullmatch(value):
            raise self.error(name, f"{value!r} is not an environment variable name")

    def done(self) -> None:
        for name in self.data:
            if name in self.read:
                continue
            if str(name).lower() in _SECRET_FIELDS:
                raise self.error(
                    str(name),
                    "secrets do not belong in the config file: name the environment variable "
                    'that holds it (api_key_env = "…"; client keys: sha256 = "…" or '
                    'key_env = "…")',
                )
            raise self.error(str(name), "unknown field")


def _observability(metrics: _Section, tracing: _Section) -> dict[str, Any]:
    """The ``[metrics]`` and ``[tracing]`` sections, as :class:`ServerConfig` fields."""
    fields = {
        "metrics": metrics.take("enabled", bool, True),
        "metrics_public": metrics.take("public", bool, False),
        "tracing": tracing.take("enabled", bool, None),
        "tracing_exporter": tracing.take("exporter", str, None),
        "tracing_endpoint": tracing.take("endpoint", str, None),
        "tracing_service_name": tracing.take("service_name", str, None),
    }
    metrics.done()
    tracing.done()
    return fields


def _provider(name: object, value: object, source: str, env: Mapping[str, str]) -> ProviderConfig:
    where = f"providers.{name}"
    if not isinstance(value, Mapping):
        raise _fail(source, f"{where}: must be a table (an empty one serves it with defaults)")
    section = _Section(value, where, source)
    api_key_env = section.take("api_key_env", str, None)
    if api_key_env is not None:
        section.check_env_name("api_key_env", api_key_env)
    base_url = section.take("base_url", str, None)
    base_url_env = section.take("base_url_env", str, None)
    if base_url is not None and base_url_env is not None:
        raise section.error("base_url", "give base_url or base_url_env, not both")
    if base_url_env is not None:
        section.check_env_name("base_url_env", base_url_env)
    budget = section.take("budget_usd", float, None)
    section.done()
    if str(name) not in default_catalog().providers:
        known = ", ".join(default_catalog().providers)
        raise _fail(source, f"{where}: unknown provider; use {known}")
    config = ProviderConfig(str(name), api_key_env, base_url, base_url_env, budget)
    try:  # fail now, at start, not at the first request
        config.api_key(env)
        config.resolved_base_url(env)
    except ConfigurationError as exc:
        raise _fail(source, str(exc)) from None
    return config


def _key(index: int, value: object, source: str, env: Mapping[str, str]) -> KeyConfig:
    where = f"keys[{index}]"
    if not isinstance(value, Mapping):
        raise _fail(source, f"{where}: must be a table with name and sha256 (or key_env)")
    section = _Section(value, where, source)
    name = section.take("name", str, "")
    digest = section.take("sha256", str, None)
    key_env = section.take("key_env", str, None)
    budget = section.take("budget_usd", float, None)
    window = section.take("budget_window", str, None)
    section.done()
    if not name:
        raise section.error("name", "missing: give each key a name (it is shown in logs)")
    if (digest is None) == (key_env is None):
        raise section.error("sha256", "give the key's sha256 or key_env (the variable holding it)")
    if key_env is not None:
        section.check_env_name("key_env", key_env)
        key = env.get(key_env)
        if not key:
            raise section.error("key_env", f"the environment variable {key_env} is not set")
        if len(key) < MIN_KEY_LENGTH:
            raise section.error(
                "key_env",
                f"the key in {key_env} is too short to be safe (under {MIN_KEY_LENGTH} "
                "characters); make one with: python -m orkestra.server --new-key",
            )
        digest = hash_key(key)
    assert digest is not None
    digest = digest.strip().lower().removeprefix("sha256:")
    if not _SHA256_HEX.fullmatch(digest):
        raise section.error(
            "sha256", "expected 64 hex digits (python -m orkestra.server --hash-key)"
        )
    return KeyConfig(name, digest, budget, window)
