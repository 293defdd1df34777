"""OpenAI Chat Completions through the official ``openai`` SDK."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orkestra._types import Usage
from orkestra.errors import ProviderConnectionError
from orkestra.providers.base import ChatRequest, ClientSettings, Finished, StreamEvent, TextDelta

if TYPE_CHECKING:
    import openai

__all__ = ["OpenAIAdapter", "usage_from_openai"]


def usage_from_openai(usage: Any) -> Usage:
    """``prompt_tokens`` already includes cached tokens; ``completion_tokens`` reasoning ones."""
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
        cache_write_tokens=getattr(prompt_details, "cache_write_tokens", None) or 0,
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
    )


class OpenAIAdapter:
    name = "openai"

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()  # one client, even when threads race to make it

    def __repr__(self) -> str:
        return f"OpenAIAdapter({self._settings!r})"

    @property
    def client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                import openai

                s = self._settings
                self._client = openai.OpenAI(
                    api_key=s.api_key,
                    base_url=s.base_url,
                    timeout=openai.Timeout(s.timeout, connect=s.connect_timeout),
                    max_retries=s.max_retries,
                )
            return self._client

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model.id,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        # Reasoning models reject max_tokens; the others get the parameter every
        # OpenAI-compatible server understands.
        limit_param = "max_completion_tokens" if request.model.reasoning else "max_tokens"
        params[limit_param] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        completion = self.client.chat.completions.create(**self._params(request))
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content or "") if choice else ""
        usage = usage_from_openai(completion.usage) if completion.usage else Usage()
        return text, Finished(
            usage=usage,
            finish_reason=choice.finish_reason if choice else None,
            response_id=completion.id,
            model_version=completion.model,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        stream = self.client.chat.completions.create(
            **self._params(request), stream=True, stream_options={"include_usage": True}
        )
        finish_reason: str | None = None
        usage: Usage | None = None
        response_id = model_version = None
        with stream:
            for chunk in stream:
                response_id, model_version = chunk.id, chunk.model
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield TextDelta(choice.delta.content)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                if chunk.usage is not None:
                    usage = usage_from_openai(chunk.usage)
        if usage is None:
            # include_usage makes the usage chunk the last one; without it the stream was cut.
            raise ProviderConnectionError(
                f"openai/{request.model.id}: the stream ended before its final usage chunk",
                provider="openai",
                model=request.model.id,
            )
        yield Finished(usage, finish_reason, response_id, model_version)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
