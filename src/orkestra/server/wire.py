"""What one client-facing API is, to the proxy's serving path: how its requests authenticate and
parse into the library's vocabulary (:class:`~orkestra.server.request.ChatParams`), and how an
answer, a stream and an error look on it.

Every endpoint that answers with a model (``/v1/chat/completions``, ``/v1/responses``,
``/v1/messages``) goes through the same path in :mod:`orkestra.server.app` — authenticate, read,
parse, resolve the model name, budget, call the library (:class:`~orkestra.server.dispatch.
Dispatcher`), record — and only the :class:`Wire` differs. :data:`CHAT` is OpenAI's Chat
Completions; :mod:`.responses_api` and :mod:`.messages_api` are the other two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from orkestra import Response, RoutingDecision
from orkestra.errors import OrkestraError
from orkestra.server.body import parse_body
from orkestra.server.errors import ProxyError, error_json
from orkestra.server.request import ChatParams
from orkestra.server.response import ChunkFormatter, completion_json

__all__ = ["CHAT", "ChatCompletions", "StreamFormat", "Wire"]


class StreamFormat(Protocol):
    """The events of one streamed answer, as SSE bytes."""

    model: str
    """The model the events name: the one that answers (a fallback or a cascade may change it
    before the first text)."""

    def opening(self, routing: RoutingDecision, only_calls: bool) -> list[bytes]:
        """What goes out before the first text (``only_calls``: the answer has no text)."""
        ...

    def text(self, chunk: str) -> bytes: ...

    def closing(self, response: Response, ignored: Sequence[str]) -> list[bytes]:
        """The tool calls, the finish, the usage and the end of the stream."""
        ...

    def cut(self, error: OrkestraError, routing: RoutingDecision | None) -> list[bytes]:
        """The end of a stream that failed after its first text: the wire's error event,
        with what the stream billed (:func:`~orkestra.server.response.cut_report`)."""
        ...


class Wire(Protocol):
    """One client-facing API."""

    name: str
    """For log lines: ``chat``, ``responses``, ``messages``."""

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        """The ``Authorization`` value to check the client's key with."""
        ...

    def parse(self, raw: bytes) -> ChatParams:
        """The request body, checked (blocking: run in a worker thread)."""
        ...

    def error_body(self, error: ProxyError) -> bytes: ...

    def answer(
        self,
        response: Response,
        *,
        request_id: str,
        created: int,
        params: ChatParams,
        ignored: Sequence[str],
    ) -> dict[str, Any]: ...

    def stream_format(
        self, *, request_id: str, created: int, model: str, params: ChatParams
    ) -> StreamFormat: ...


class ChatCompletions:
    """OpenAI's Chat Completions: ``POST /v1/chat/completions``."""

    name = "chat"

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    def parse(self, raw: bytes) -> ChatParams:
        return parse_body(raw)

    def error_body(self, error: ProxyError) -> bytes:
        return error_json(error)

    def answer(
        self,
        response: Response,
        *,
        request_id: str,
        created: int,
        params: ChatParams,
        ignored: Sequence[str],
    ) -> dict[str, Any]:
        return completion_json(
            response, request_id=f"chatcmpl-{request_id}", created=created, ignored=ignored
        )

    def stream_format(
        self, *, request_id: str, created: int, model: str, params: ChatParams
    ) -> StreamFormat:
        return ChunkFormatter(f"chatcmpl-{request_id}", created, model, params.include_usage)


CHAT = ChatCompletions()
