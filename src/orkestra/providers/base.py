"""What every provider adapter does: turn our request into one SDK call, and its answer into events.

An adapter owns one provider's SDK client (built lazily, so ``import orkestra`` never imports an
SDK) and speaks in provider-neutral terms: a :class:`ChatRequest` in, a stream of
:class:`TextDelta` (with a :class:`UsageReport` wherever the provider reports usage before the
end) followed by one :class:`Finished` out. ``complete()`` returns the same events for
a non-streaming call, so usage, cost and the :class:`~orkestra.Response` are built in one place
for both. Adding a provider is one new module with an :class:`Adapter` and one catalog entry.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orkestra._types import ToolCall, Usage
from orkestra.catalog import ModelInfo

__all__ = [
    "Adapter",
    "ChatRequest",
    "ClientSettings",
    "Finished",
    "ForcedTool",
    "Image",
    "Message",
    "ResponseFormat",
    "StreamEvent",
    "TextDelta",
    "Tool",
    "ToolChoice",
    "UsageReport",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class Image:
    """An image in a user turn: a ``data:`` URL (inline bytes) or an ``http(s)`` URL."""

    url: str

    @property
    def inline(self) -> tuple[str, str] | None:
        """``(media_type, base64 data)`` for a ``data:`` URL, None for a web URL."""
        if not self.url.startswith("data:"):
            return None
        head, _, data = self.url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding != "base64":
            raise ValueError("an image data: URL must be base64-encoded")
        return media_type or "application/octet-stream", data

    def validate(self) -> None:
        """Raise ValueError for a URL no provider can take."""
        inline = self.inline
        if inline is None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError("an image URL must be a data: URL or an http(s) URL")
            return
        media_type, data = inline
        if not media_type.startswith("image/"):
            raise ValueError(f"an image data: URL must hold an image/*, not {media_type!r}")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("an image data: URL holds invalid base64") from None


@dataclass(frozen=True)
class Message:
    """One turn. ``tool_calls`` on an assistant turn are the calls it made; a ``tool`` turn
    answers the call ``tool_call_id`` (``name``: that call's function, filled in from it)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and a JSON Schema of its
    arguments (OpenAI's function-tool format is the common one)."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass(frozen=True)
class ForcedTool:
    """``tool_choice`` naming one tool the model must call."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass(frozen=True)
class ResponseFormat:
    """Structured output: a JSON Schema the answer must match, or ``schema=None`` for any JSON
    object (JSON mode). ``strict`` asks providers that have a strict mode to enforce it."""

    name: str = "response"
    schema: Mapping[str, Any] | None = None
    strict: bool = False


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


@dataclass(frozen=True)
class Finished:
    usage: Usage
    finish_reason: str | None = None
    response_id: str | None = None
    model_version: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


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

    def __repr__(self) -> str:
        return (
            f"ClientSettings(api_key='***', base_url={self.base_url!r}, "
            f"timeout={self.timeout!r}, connect_timeout={self.connect_timeout!r}, "
            f"max_retries={self.max_retries!r}, compatible={self.compatible!r})"
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

    async def aclose(self) -> None:
        """Close the async client(s)."""
        ...
