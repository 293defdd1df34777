"""Anthropic Messages through the official ``anthropic`` SDK.

Anthropic's API version 2026-10-21 (what SDK 2.x sends) rejects ``temperature``, and neither SDK
1.x nor 2.x takes it any more, so it is never sent. ``max_tokens`` is required and always sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orkestra._types import Usage
from orkestra.errors import ProviderConnectionError
from orkestra.providers.base import (
    ChatRequest,
    ClientSettings,
    Finished,
    StreamEvent,
    TextDelta,
    UsageReport,
)

if TYPE_CHECKING:
    import anthropic

__all__ = ["AnthropicAdapter", "usage_from_anthropic"]

# The SDK refuses non-streaming calls it expects to run past 10 minutes
# (3600 s · max_tokens / 128000 > 600 s); those go through the stream instead.
NON_STREAMING_MAX_TOKENS = 21_333


def _int(obj: Any, name: str) -> int:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) else 0


def usage_from_anthropic(usage: Any) -> Usage:
    """``input_tokens`` excludes cache reads and writes: add them back for the prompt total."""
    cache_read = _int(usage, "cache_read_input_tokens")
    cache_write = _int(usage, "cache_creation_input_tokens")
    details = getattr(usage, "output_tokens_details", None)
    return Usage(
        input_tokens=_int(usage, "input_tokens") + cache_read + cache_write,
        output_tokens=_int(usage, "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=_int(details, "thinking_tokens"),
    )


class AnthropicAdapter:
    name = "anthropic"

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._client: anthropic.Anthropic | None = None
        self._lock = threading.Lock()  # one client, even when threads race to make it

    def __repr__(self) -> str:
        return f"AnthropicAdapter({self._settings!r})"

    @property
    def client(self) -> anthropic.Anthropic:
        with self._lock:
            if self._client is None:
                import anthropic

                s = self._settings
                self._client = anthropic.Anthropic(
                    api_key=s.api_key,
                    base_url=s.base_url,
                    timeout=anthropic.Timeout(s.timeout, connect=s.connect_timeout),
                    max_retries=s.max_retries,
                )
            return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model.id,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.turns],
        }
        if request.system:
            params["system"] = request.system
        return params

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        if request.max_tokens > NON_STREAMING_MAX_TOKENS:
            parts: list[str] = []
            for event in self.stream(request):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Finished):
                    return "".join(parts), event
        message = self.client.messages.create(**self._params(request))
        text = "".join(block.text for block in message.content if block.type == "text")
        return text, Finished(
            usage=usage_from_anthropic(message.usage),
            finish_reason=message.stop_reason,
            response_id=message.id,
            model_version=message.model,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        usage: Usage | None = None
        start_usage: Any = None
        finish_reason: str | None = None
        response_id = model_version = None
        stopped = False
        with self.client.messages.create(**self._params(request), stream=True) as stream:
            for event in stream:
                if event.type == "message_start":
                    start_usage = event.message.usage
                    response_id, model_version = event.message.id, event.message.model
                    yield UsageReport(usage_from_anthropic(start_usage))
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield TextDelta(event.delta.text)
                elif event.type == "message_delta":
                    finish_reason = event.delta.stop_reason
                    usage = _merge_usage(start_usage, event.usage)
                elif event.type == "message_stop":
                    stopped = True
        if usage is None or not stopped:
            raise ProviderConnectionError(
                f"anthropic/{request.model.id}: the stream ended before message_stop",
                provider="anthropic",
                model=request.model.id,
            )
        yield Finished(usage, finish_reason, response_id, model_version)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _merge_usage(start: Any, delta: Any) -> Usage:
    """``message_delta.usage`` is cumulative; input fields may or may not be repeated there."""

    def pick(name: str) -> int:
        value = getattr(delta, name, None)
        return value if isinstance(value, int) else _int(start, name)

    cache_read, cache_write = pick("cache_read_input_tokens"), pick("cache_creation_input_tokens")
    details = getattr(delta, "output_tokens_details", None)
    return Usage(
        input_tokens=pick("input_tokens") + cache_read + cache_write,
        output_tokens=pick("output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=_int(details, "thinking_tokens"),
    )
