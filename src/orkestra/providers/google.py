"""Google Gemini through the official ``google-genai`` SDK.

google-genai 3.x calls ``/v1`` by default, but preview models are served on ``/v1beta`` only, so
the API version comes from the catalog entry of each model. One client is kept per API version
for the adapter's whole life (google-genai closes its HTTP client when the Client object is
garbage-collected).
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
    from google import genai

__all__ = ["GoogleAdapter", "usage_from_google"]


def _int(obj: Any, name: str) -> int:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) else 0


def usage_from_google(meta: Any) -> Usage:
    """``promptTokenCount`` includes cached tokens; thoughts are billed as output on top."""
    thoughts = _int(meta, "thoughts_token_count")
    return Usage(
        input_tokens=_int(meta, "prompt_token_count") + _int(meta, "tool_use_prompt_token_count"),
        output_tokens=_int(meta, "candidates_token_count") + thoughts,
        cache_read_tokens=_int(meta, "cached_content_token_count"),
        reasoning_tokens=thoughts,
    )


def _text(response: Any) -> str:
    """The answer's text, without thought parts."""
    candidates = getattr(response, "candidates", None) or []
    if not candidates or candidates[0].content is None:
        return ""
    parts = candidates[0].content.parts or []
    return "".join(p.text for p in parts if p.text and not getattr(p, "thought", False))


def _finish_reason(response: Any) -> str | None:
    candidates = getattr(response, "candidates", None) or []
    reason = candidates[0].finish_reason if candidates else None
    return None if reason is None else str(getattr(reason, "value", reason))


class GoogleAdapter:
    name = "google"

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._clients: dict[str, genai.Client] = {}
        self._lock = threading.Lock()  # one client per version, even when threads race

    def __repr__(self) -> str:
        return f"GoogleAdapter({self._settings!r})"

    def client(self, api_version: str) -> genai.Client:
        with self._lock:
            if api_version not in self._clients:
                from google import genai
                from google.genai import types

                s = self._settings
                options = types.HttpOptions(
                    api_version=api_version,
                    base_url=s.base_url,
                    # One timeout for connect and read alike: the SDK takes no split.
                    timeout=max(1, int(s.timeout * 1000)),
                    retry_options=(
                        types.HttpRetryOptions(attempts=s.max_retries + 1)
                        if s.max_retries
                        else None
                    ),
                )
                self._clients[api_version] = genai.Client(api_key=s.api_key, http_options=options)
            return self._clients[api_version]

    def _call(self, request: ChatRequest) -> tuple[Any, dict[str, Any]]:
        from google.genai import types

        client = self.client(request.model.api_version or "v1")
        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[types.Part(text=m.content)],
            )
            for m in request.turns
        ]
        config = types.GenerateContentConfig(
            max_output_tokens=request.max_tokens,
            temperature=request.temperature,
            system_instruction=request.system,
        )
        return client, {"model": request.model.id, "contents": contents, "config": config}

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        client, params = self._call(request)
        response = client.models.generate_content(**params)
        return _text(response), Finished(
            usage=usage_from_google(response.usage_metadata),
            finish_reason=_finish_reason(response),
            response_id=response.response_id,
            model_version=response.model_version,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        client, params = self._call(request)
        last: Any = None
        finish_reason: str | None = None
        for chunk in client.models.generate_content_stream(**params):
            if chunk.usage_metadata is not None:
                yield UsageReport(usage_from_google(chunk.usage_metadata))
            text = _text(chunk)
            if text:
                yield TextDelta(text)
            finish_reason = _finish_reason(chunk) or finish_reason
            last = chunk
        if last is None or finish_reason is None:
            # The stream ends when the connection closes; only the last chunk says it finished.
            raise ProviderConnectionError(
                f"google/{request.model.id}: the stream ended without a finish reason",
                provider="google",
                model=request.model.id,
            )
        yield Finished(
            usage_from_google(last.usage_metadata),
            finish_reason,
            last.response_id,
            last.model_version,
        )

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
