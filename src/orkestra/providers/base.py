"""What every provider adapter does: turn our request into one SDK call, and its answer into events.

An adapter owns one provider's SDK client (built lazily, so ``import orkestra`` never imports an
SDK) and speaks in provider-neutral terms: a :class:`ChatRequest` in, a stream of
:class:`TextDelta` (with a :class:`UsageReport` wherever the provider reports usage before the
end) followed by one :class:`Finished` out. ``complete()`` returns the same events for
a non-streaming call, so usage, cost and the :class:`~orkestra.Response` are built in one place
for both. Each adapter also maps its provider's finish reasons to a :data:`StopReason`. Adding a
wire protocol takes an adapter module, its ``ADAPTERS`` entry, catalog entries and a protocol of
the fake server: ARCHITECTURE.md, "Adding a provider", lists every step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orkestra._request import (
    ForcedTool,
    Image,
    Message,
    ModelParams,
    ResponseFormat,
    Role,
    Tool,
    ToolChoice,
)
from orkestra._types import StopReason, ToolCall, Usage
from orkestra.catalog import ModelInfo

__all__ = [
    "Adapter",
    "ChatRequest",
    "ClientSettings",
    "Finished",
    "ForcedTool",
    "Image",
    "Message",
    "ModelParams",
    "ResponseFormat",
    "Role",
    "StopReason",
    "StreamEvent",
    "TextDelta",
    "Tool",
    "ToolChoice",
    "UsageReport",
    "stop_reason",
]


@dataclass(frozen=True)
class ChatRequest:
    """A provider-neutral request. Parameter quirks are already applied by the caller."""

    model: ModelInfo
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float | None
    """None means: send no temperature at all (the model's default)."""
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    response_format: ResponseFormat | None = None
    session: str | None = None
    """A sticky session's id: the adapter may use it as a prompt-cache hint
    (OpenAI ``prompt_cache_key``, Anthropic ``cache_control`` breakpoints)."""
    params: ModelParams = field(default_factory=ModelParams)
    """The optional parameters this model takes (those it cannot are already left out)."""

    @property
    def system(self) -> str | None:
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def turns(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.role != "system")


@dataclass(frozen=True)
class TextDelta:
    text: str


def stop_reason(
    native: str | None, reasons: Mapping[str, StopReason], *, tool_calls: bool
) -> StopReason:
    """A provider's own finish reason in common terms, by its adapter's table (``reasons``);
    one the table does not know is ``"stop"``.

    An answer with tool calls that otherwise ended normally is ``"tool_calls"`` (Gemini says
    ``STOP``); ``"tool_calls"`` without any call would send a client looking for none."""
    reason: StopReason = "stop"
    if native is not None:
        reason = reasons.get(native, reasons.get(native.upper(), "stop"))
    if tool_calls and reason == "stop":
        return "tool_calls"
    if not tool_calls and reason == "tool_calls":
        return "stop"
    return reason


@dataclass(frozen=True)
class Finished:
    """How an answer ended: its usage, the provider's own finish reason and the adapter's
    :data:`StopReason` for it, its ids, and the tool calls it made."""

    usage: Usage
    finish_reason: str | None = None
    response_id: str | None = None
    model_version: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason = "stop"


@dataclass(frozen=True)
class UsageReport:
    """Usage the provider reported mid-stream (Anthropic's ``message_start``, each Gemini chunk):
    what a stream that breaks later has been billed for so far."""

    usage: Usage


StreamEvent = TextDelta | UsageReport | Finished


@dataclass(frozen=True)
class ClientSettings:
    """How to reach a provider. ``repr`` never shows the key.

    ``timeout`` is the read timeout, ``connect_timeout`` the connect one (seconds). The SDK's
    own retries stay off (``max_retries=0``): orkestra's resilience layer owns retries.
    """

    api_key: str
    base_url: str | None = None
    timeout: float = 600.0
    max_retries: int = 0
    connect_timeout: float = 5.0
    compatible: bool = False
    """An OpenAI-compatible server that is not OpenAI (a preset like ``groq`` or ``ollama``):
    send only what every such server understands (no ``prompt_cache_key``)."""
    max_connections: int | None = None
    """The most calls the endpoint lets in flight per client (:mod:`orkestra._endpoint`): the
    SDK's pool keeps that many connections alive for reuse. None: the SDK's own limits."""

    def __repr__(self) -> str:
        return (
            f"ClientSettings(api_key='***', base_url={self.base_url!r}, "
            f"timeout={self.timeout!r}, connect_timeout={self.connect_timeout!r}, "
            f"max_retries={self.max_retries!r}, compatible={self.compatible!r}, "
            f"max_connections={self.max_connections!r})"
        )


class Adapter(Protocol):
    """One provider's SDK, behind the interface orkestra calls."""

    name: str

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        """One non-streaming call: the whole text and how it finished."""
        ...

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """A streaming call: text deltas (and usage reports), then exactly one :class:`Finished`
        (which carries the tool calls, assembled from their deltas).

        A stream that ends without its final usage raises a :class:`ProviderError`.
        """
        ...

    async def acomplete(self, request: ChatRequest) -> tuple[str, Finished]:
        """:meth:`complete` on the SDK's async client."""
        ...

    def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """:meth:`stream` on the SDK's async client (an async generator)."""
        ...

    def close(self) -> None: ...

    async def aopen(self, models: Sequence[ModelInfo]) -> None:
        """Make the running loop's async client(s) for ``models`` now. Making one loads TLS
        certificates (~0.1 s of CPU): a server does it before it serves, not in the middle of
        its first requests, where it would stall its event loop."""
        ...

    async def aclose(self) -> None:
        """Close the async client(s)."""
        ...
