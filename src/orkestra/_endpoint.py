"""One provider's API, one attempt at a time: the layer below routing and resilience.

An :class:`Endpoint` owns what it takes to talk to one provider (or OpenAI-compatible preset):
its credentials (the key given, else the provider's usual environment variable), the base URL,
the SDK adapter (built on first use, so ``import orkestra`` imports no SDK), the parameter
quirks of its models (what a request becomes for one model, and which parameters it could not
take), and the single attempts — ``complete``, ``stream`` and their async forms — with every SDK
error mapped to the orkestra error tree at one boundary (``providers._errors.map_error``).

With ``max_connections`` an endpoint lets at most that many attempts run at once per SDK
client (the sync one, and each event loop's async one), a stream holding its place until it
ends; the SDK's pool keeps as many connections alive, so they are reused rather than reopened.
An attempt past the limit waits its turn up to ``pool_timeout`` seconds, then raises
:class:`~orkestra.PoolTimeoutError` without sending anything.

It knows nothing of routing, retries, fallbacks, budgets or the usage log: the resilience layer
drives Endpoints; :class:`~orkestra.Provider` routes over one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass

from orkestra._request import DEFAULT_TEMPERATURE, Message, RequestOptions
from orkestra.catalog import ModelInfo, ProviderInfo
from orkestra.errors import (
    ConfigurationError,
    MissingAPIKeyError,
    OrkestraWarning,
    PoolTimeoutError,
)
from orkestra.providers import make_adapter
from orkestra.providers._errors import map_error
from orkestra.providers.base import Adapter, ChatRequest, ClientSettings, Finished, StreamEvent

__all__ = ["NO_KEY", "Endpoint", "Prepared", "check_api_key"]

NO_KEY = "no-key"
"""What is sent as the key to a local server that needs none (the SDKs require one)."""

_quirk_warned: set[tuple[str, str]] = set()


def _warn_quirk(key: tuple[str, str], message: str) -> None:
    if key not in _quirk_warned:
        _quirk_warned.add(key)
        warnings.warn(message, OrkestraWarning, stacklevel=2)


@dataclass(frozen=True)
class Prepared:
    """A request for one model, and the parameters of the call that model could not take (not
    sent: the proxy reports them in ``x-orkestra-ignored-params``)."""

    request: ChatRequest
    dropped: tuple[str, ...] = ()


def _checked_key(info: ProviderInfo, api_key: object) -> str | None:
    """The key given, else the first of the provider's variables that is set; checked."""
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError(
            f"api_key for {info.name} must be a str, not {type(api_key).__name__}"
        )
    if api_key:
        return check_api_key(info.name, api_key, "the api_key argument")
    for variable in info.env_keys:
        if os.environ.get(variable):
            return check_api_key(info.name, os.environ[variable], f"${variable}")
    return None


def check_api_key(provider: str, key: str, source: str) -> str:
    """``key``, if it is printable ASCII without spaces (as every provider's keys are); else a
    :class:`ConfigurationError` saying what is wrong and where it came from, never the key.
    A key with a line break or a space fails every attempt in the HTTP layer (retried as a
    connection error) and can end up in that error's message."""
    bad = next((i for i, char in enumerate(key) if not "!" <= char <= "~"), None)
    if bad is not None:
        raise ConfigurationError(
            f"the API key for {provider} ({source}) has {_kind(key[bad])} at character {bad}: "
            "API keys are printable ASCII without spaces. Check how it was copied or read "
            "(a trailing newline from a file?)"
        )
    return key


def _kind(char: str) -> str:
    if char in "\r\n":
        return "a line break"
    if char.isspace():
        return "whitespace"
    return "a non-ASCII character" if ord(char) > 127 else "a control character"


class ConnectionSlots:
    """At most ``limit`` attempts at once: per thread-shared sync client, and per event loop
    (an async client belongs to one loop). A wait longer than ``timeout`` raises
    :class:`PoolTimeoutError`."""

    def __init__(self, provider: str, limit: int, timeout: float) -> None:
        self.provider, self.limit, self.timeout = provider, limit, timeout
        self._sync = threading.BoundedSemaphore(limit)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._loops = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _busy(self, model: str, started: float) -> PoolTimeoutError:
        waited = time.monotonic() - started
        return PoolTimeoutError(
            f"{self.provider}/{model}: all {self.limit} connections (max_connections) stayed "
            f"busy for {waited:.1f} s; nothing was sent",
            provider=self.provider,
            model=model,
            waited=waited,
        )

    @contextmanager
    def held(self, model: str) -> Iterator[None]:
        started = time.monotonic()
        if not self._sync.acquire(timeout=self.timeout):
            raise self._busy(model, started)
        try:
            yield
        finally:
            self._sync.release()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            semaphore = self._loops.get(loop)
            if semaphore is None:
                semaphore = self._loops[loop] = asyncio.Semaphore(self.limit)
            return semaphore

    @asynccontextmanager
    async def aheld(self, model: str) -> AsyncIterator[None]:
        semaphore = self._semaphore()
        if semaphore.locked():  # else acquire() takes a slot without waiting
            started = time.monotonic()
            try:
                await asyncio.wait_for(semaphore.acquire(), self.timeout)
            except asyncio.TimeoutError:
                raise self._busy(model, started) from None
        else:
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()


class Endpoint:
    """Credentials, base URL, SDK adapter and single attempts for provider ``info``.

    ``api_key``: default the provider's usual environment variable; a local server (no key
    required) gets a placeholder. ``timeout``/``connect_timeout``: seconds, per attempt.
    ``max_connections``: the most attempts at once per SDK client (None: the SDK's limits);
    ``pool_timeout``: how long an attempt waits for one of them.
    """

    def __init__(
        self,
        info: ProviderInfo,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 5.0,
        max_connections: int | None = None,
        pool_timeout: float = 30.0,
    ) -> None:
        self.info = info
        self.name = info.name
        key = _checked_key(info, api_key)
        self.key_given = key is not None
        # A local server needs no key, but the SDK needs one: send a placeholder.
        self._api_key = key if key or info.requires_key else NO_KEY
        self.base_url = base_url or os.environ.get(info.env_base_url) or info.base_url
        if self.base_url is None and info.compatible:
            raise ConfigurationError(
                f"{info.name} needs the server's address: pass base_url=... "
                f"(e.g. 'http://localhost:8000/v1') or set {info.env_base_url}"
            )
        self.timeout, self.connect_timeout = timeout, connect_timeout
        if max_connections is not None and (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ConfigurationError(
                f"max_connections for {info.name} must be an integer ≥ 1, not {max_connections!r}"
            )
        self.max_connections = max_connections
        self._slots = (
            None
            if max_connections is None
            else ConnectionSlots(info.name, max_connections, pool_timeout)
        )
        # What the usage log stores for the key (orkestra.usage.key_id_for): never the key.
        self.key_id = (
            hashlib.sha256(self._api_key.encode()).hexdigest()[:12]
            if self._api_key and self.key_given
            else None
        )
        self._adapter: Adapter | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, api_key=<{self.key_state}>, base_url={self.base_url!r})"

    @property
    def key_state(self) -> str:
        """How the key stands, for a repr: ``set``, ``missing`` or ``not needed`` (never it)."""
        return "set" if self.key_given else "missing" if self._api_key is None else "not needed"

    @property
    def api_key_available(self) -> bool:
        return bool(self._api_key)

    @property
    def adapter(self) -> Adapter:
        """The SDK adapter, built on first use (:class:`MissingAPIKeyError` without a key)."""
        if self._adapter is None:
            if not self._api_key:
                names = " or ".join(self.info.env_keys)
                raise MissingAPIKeyError(
                    f"no API key for {self.name}: pass api_key=... to Provider({self.name!r}) "
                    f"or set {names}"
                )
            with self._lock:
                if self._adapter is None:
                    settings = ClientSettings(
                        self._api_key,
                        self.base_url,
                        self.timeout,
                        max_retries=0,
                        connect_timeout=self.connect_timeout,
                        compatible=self.info.compatible,
                        max_connections=self.max_connections,
                    )
                    self._adapter = make_adapter(self.info, settings)
                    # An endpoint dropped without close() still closes its connections (the
                    # SDK clients sit in reference cycles, freed only whenever gc runs).
                    weakref.finalize(self, self._adapter.close)
        return self._adapter

    async def aopen(self, models: Sequence[ModelInfo]) -> None:
        """Make the running loop's async SDK client(s) for ``models`` now (see
        :meth:`Adapter.aopen <orkestra.providers.base.Adapter.aopen>`)."""
        await self.adapter.aopen(models)

    # -- requests ------------------------------------------------------------------------

    def prepare(
        self,
        model: ModelInfo,
        prompt: str | tuple[Message, ...],
        options: RequestOptions,
    ) -> Prepared:
        """The request for ``model``, its parameter quirks applied: ``max_tokens`` clamped to
        the model's output limit, ``temperature`` left out where the model takes only its own,
        and the optional parameters it cannot take (the catalog's ``unsupported_params``) left
        out (each reported in :attr:`Prepared.dropped` and warned about once per model)."""
        max_tokens = options.max_tokens
        if max_tokens > model.max_output_tokens:
            _warn_quirk(
                (model.id, "max_tokens"),
                f"max_tokens={max_tokens} is above {model.id}'s output limit; "
                f"clamped to {model.max_output_tokens}",
            )
            max_tokens = model.max_output_tokens
        temperature: float | None = float(options.temperature)
        dropped: tuple[str, ...] = ()
        if not self.info.supports_temperature or model.reasoning:
            if options.temperature != DEFAULT_TEMPERATURE:
                _warn_quirk(
                    (model.id, "temperature"),
                    f"{model.id} accepts only its default temperature; "
                    f"temperature={options.temperature} is not sent",
                )
                dropped = ("temperature",)
            temperature = None
        # The optional parameters this model cannot take are not sent, and said so
        # (parallel_tool_calls asks nothing of a call without tools).
        params = options.params
        if not options.tools:
            params = params.without({"parallel_tool_calls"})
        unsupported = set(params.given()) & model.unsupported_params
        for name in sorted(unsupported):
            _warn_quirk(
                (model.id, name),
                f"{model.id} does not take {name}; it is not sent (Response.ignored_params)",
            )
        dropped += tuple(n for n in params.given() if n in unsupported)
        messages = (Message("user", prompt),) if isinstance(prompt, str) else prompt
        request = ChatRequest(
            model,
            messages,
            max_tokens,
            temperature,
            tools=options.tools,
            tool_choice=options.tool_choice,
            response_format=options.response_format,
            session=options.session,
            params=params.without(unsupported),
        )
        return Prepared(request, dropped)

    # -- single attempts: no retries, errors mapped ----------------------------------------

    def _mapped(self, error: Exception, request: ChatRequest) -> Exception:
        return map_error(error, provider=self.name, model=request.model.id, api_key=self._api_key)

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        """One non-streaming attempt: the whole text and how it finished."""
        if self._slots is None:
            return self._complete(request)
        with self._slots.held(request.model.id):
            return self._complete(request)

    def _complete(self, request: ChatRequest) -> tuple[str, Finished]:
        try:
            return self.adapter.complete(request)
        except Exception as e:
            raise self._mapped(e, request) from e

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """One streaming attempt: text deltas (and usage reports), then one ``Finished``."""
        held = nullcontext() if self._slots is None else self._slots.held(request.model.id)
        with held:
            events = self.adapter.stream(request)
            try:
                yield from events
            except Exception as e:
                raise self._mapped(e, request) from e
            finally:  # closed here and now: its connection goes back to the pool
                close = getattr(events, "close", None)
                if close is not None:
                    close()

    async def acomplete(self, request: ChatRequest) -> tuple[str, Finished]:
        """:meth:`complete` on the SDK's async client."""
        if self._slots is None:
            return await self._acomplete(request)
        async with self._slots.aheld(request.model.id):
            return await self._acomplete(request)

    async def _acomplete(self, request: ChatRequest) -> tuple[str, Finished]:
        try:
            return await self.adapter.acomplete(request)
        except Exception as e:
            raise self._mapped(e, request) from e

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """:meth:`stream` on the SDK's async client."""
        held = nullcontext() if self._slots is None else self._slots.aheld(request.model.id)
        async with held:
            events = self.adapter.astream(request)
            try:
                async for event in events:
                    yield event
            except Exception as e:
                raise self._mapped(e, request) from e
            finally:  # closed here and now, not whenever the loop finalises it
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the SDK client (it is reopened on the next attempt)."""
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            adapter.close()

    async def aclose(self) -> None:
        """Close the SDK clients, sync and async: this loop's async client is awaited."""
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            await adapter.aclose()
            adapter.close()
