"""OpenAI Chat Completions through the official ``openai`` SDK (sync and async clients).

One params builder turns a :class:`ChatRequest` into the ``chat.completions.create`` arguments
for both clients, and the answer parsing (a whole completion, or a stream's chunks assembled by
:class:`_StreamAssembler`) is shared too, so sync and async cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orkestra._types import ToolCall, Usage
from orkestra.errors import InvalidRequestError, ProviderConnectionError
from orkestra.providers._answers import answer_object, read_field
from orkestra.providers._errors import malformed
from orkestra.providers._stainless import StainlessClients
from orkestra.providers.base import (
    ChatRequest,
    ClientSettings,
    Finished,
    ForcedTool,
    Message,
    ResponseFormat,
    StopReason,
    StreamEvent,
    TextDelta,
    Tool,
    stop_reason,
)

if TYPE_CHECKING:
    import openai

    from orkestra.catalog import ModelInfo

__all__ = ["OpenAIAdapter", "usage_from_openai"]

# OpenAI's rule for function and response-format names (the API answers 400 otherwise).
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def usage_from_openai(usage: Any) -> Usage:
    """``prompt_tokens`` already includes cached tokens; ``completion_tokens`` reasoning ones.
    ``usage``: the SDK's object (a stream's chunk) or its JSON object (a whole answer)."""
    prompt_details = read_field(usage, "prompt_tokens_details")
    completion_details = read_field(usage, "completion_tokens_details")
    return Usage(
        input_tokens=read_field(usage, "prompt_tokens") or 0,
        output_tokens=read_field(usage, "completion_tokens") or 0,
        # read_field of an absent (None) details object is None.
        cache_read_tokens=read_field(prompt_details, "cached_tokens") or 0,
        cache_write_tokens=read_field(prompt_details, "cache_write_tokens") or 0,
        reasoning_tokens=read_field(completion_details, "reasoning_tokens") or 0,
    )


# ---------------------------------------------------------------- request translation


def _invalid(request: ChatRequest, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"openai/{request.model.id}: {problem}")


def _content(request: ChatRequest, message: Message) -> str | list[dict[str, Any]]:
    """A user turn with images becomes text + ``image_url`` parts (OpenAI takes ``data:`` and
    http(s) URLs alike); every other turn stays a plain string."""
    if not message.images:
        return message.content
    if message.role != "user":
        raise _invalid(request, f"images are only allowed in user turns, not {message.role!r}")
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    for image in message.images:
        try:
            image.validate()
        except ValueError as error:
            raise _invalid(request, str(error)) from None
        parts.append({"type": "image_url", "image_url": {"url": image.url}})
    return parts


def _message(request: ChatRequest, message: Message) -> dict[str, Any]:
    """One turn in Chat Completions form: assistant calls as ``tool_calls``, results as
    ``role: tool`` with the ``tool_call_id`` they answer."""
    if message.role == "tool":
        if not message.tool_call_id:
            raise _invalid(request, "a tool turn needs the tool_call_id of the call it answers")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    turn: dict[str, Any] = {"role": message.role, "content": _content(request, message)}
    if message.tool_calls:
        if message.role != "assistant":
            raise _invalid(request, "only assistant turns can carry tool calls")
        turn["tool_calls"] = [call.to_openai() for call in message.tool_calls]
        turn["content"] = message.content or None  # "required unless tool_calls is given"
    return turn


def _tool(request: ChatRequest, tool: Tool) -> dict[str, Any]:
    if not _NAME.fullmatch(tool.name):
        raise _invalid(request, f"tool name {tool.name!r} must be 1-64 letters, digits, '_' or '-'")
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _tool_choice(request: ChatRequest) -> str | dict[str, Any] | None:
    """The ``tool_choice`` to send: None for the default ("auto" with tools, nothing without)."""
    choice = request.tool_choice
    if not request.tools:
        if choice in ("auto", "none"):
            return None
        raise _invalid(request, f"tool_choice {choice!r} needs tools")
    if isinstance(choice, ForcedTool):
        if choice.name not in {t.name for t in request.tools}:
            raise _invalid(request, f"tool_choice names {choice.name!r}, which is not a tool")
        return {"type": "function", "function": {"name": choice.name}}
    return None if choice == "auto" else choice


def _response_format(request: ChatRequest, rf: ResponseFormat) -> dict[str, Any]:
    """A schema: Structured Outputs (``json_schema``); none: JSON mode (``json_object``)."""
    if rf.schema is None:
        return {"type": "json_object"}
    if not _NAME.fullmatch(rf.name):
        raise _invalid(
            request, f"response_format name {rf.name!r} must be 1-64 letters, digits, '_' or '-'"
        )
    spec = {"name": rf.name, "schema": dict(rf.schema), "strict": rf.strict}
    return {"type": "json_schema", "json_schema": spec}


def _mentions_json(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        texts = [p.get("text", "") for p in content] if isinstance(content, list) else [content]
        if any(isinstance(t, str) and "json" in t.lower() for t in texts):
            return True
    return False


def _optional_params(request: ChatRequest) -> dict[str, Any]:
    """The optional parameters, under OpenAI's own names (``parallel_tool_calls`` only with
    tools: the API refuses it without)."""
    given = request.params
    out: dict[str, Any] = {}
    if given.stop:
        out["stop"] = list(given.stop)
    for name in ("top_p", "seed", "presence_penalty", "frequency_penalty", "reasoning_effort"):
        value = getattr(given, name)
        if value is not None:
            out[name] = value
    if given.logit_bias is not None:
        out["logit_bias"] = dict(given.logit_bias)
    if given.parallel_tool_calls is not None and request.tools:
        out["parallel_tool_calls"] = given.parallel_tool_calls
    return out


def build_params(request: ChatRequest, settings: ClientSettings) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments for ``request``, checked before any call."""
    messages = [_message(request, m) for m in request.messages]
    params: dict[str, Any] = {"model": request.model.id, "messages": messages}
    # Reasoning models reject max_tokens; the others get the parameter every
    # OpenAI-compatible server understands.
    limit_param = "max_completion_tokens" if request.model.reasoning else "max_tokens"
    params[limit_param] = request.max_tokens
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.tools:
        params["tools"] = [_tool(request, t) for t in request.tools]
    choice = _tool_choice(request)
    if choice is not None:
        params["tool_choice"] = choice
    if request.response_format is not None:
        params["response_format"] = _response_format(request, request.response_format)
        if request.response_format.schema is None and not _mentions_json(messages):
            # JSON mode is refused (400) unless some message says "JSON".
            messages.insert(0, {"role": "system", "content": "Answer with a JSON object."})
    params.update(_optional_params(request))
    if request.session and not settings.compatible:
        # Routes a sticky conversation's requests to the same cache (OpenAI caches by itself);
        # servers that merely speak OpenAI's protocol may refuse the unknown field.
        params["prompt_cache_key"] = request.session
    return params


# ---------------------------------------------------------------- answer parsing


def _tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(call["id"], call["function"]["name"], call["function"].get("arguments") or "{}")
        for call in message.get("tool_calls") or []
        if call.get("type", "function") == "function"
    )


STOP_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
"""OpenAI's finish reasons (those of every OpenAI-compatible server too), in common terms."""


def parse_completion(completion: Any, model: str) -> tuple[str, Finished]:
    """A whole completion, as the JSON object it came in: its text, and how it finished
    (usage, tool calls). (Read as JSON rather than built into the SDK's ``ChatCompletion``
    first: building that object cost ~0.1 ms of CPU a call, for the few fields read here.)
    A body without a first choice's message is a :class:`MalformedResponseError`."""
    completion = answer_object(completion, "openai", model)
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise malformed("openai", model, "no choices[0].message")
    message = choice["message"]
    text = message.get("content") or ""
    usage = usage_from_openai(completion["usage"]) if completion.get("usage") else Usage()
    native = choice.get("finish_reason")
    calls = _tool_calls(message)
    return text, Finished(
        usage=usage,
        finish_reason=native,
        response_id=completion.get("id"),
        model_version=completion.get("model"),
        tool_calls=calls,
        stop_reason=stop_reason(native, STOP_REASONS, tool_calls=bool(calls)),
    )


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamAssembler:
    """Collects a chat stream's chunks: text deltas out at once, tool calls assembled by index
    (id and name arrive first, the arguments in pieces), and usage from the last chunk."""

    request: ChatRequest
    finish_reason: str | None = None
    usage: Usage | None = None
    response_id: str | None = None
    model_version: str | None = None
    calls: dict[int, _PartialCall] = field(default_factory=dict)

    def feed(self, chunk: Any) -> Iterator[TextDelta]:
        self.response_id, self.model_version = chunk.id, chunk.model
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                yield TextDelta(delta.content)
            for piece in delta.tool_calls or []:
                call = self.calls.setdefault(piece.index, _PartialCall())
                call.id = piece.id or call.id
                if piece.function is not None:
                    call.name = piece.function.name or call.name
                    call.arguments.append(piece.function.arguments or "")
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if chunk.usage is not None:
            self.usage = usage_from_openai(chunk.usage)

    def finished(self) -> Finished:
        if self.usage is None:
            # include_usage makes the usage chunk the last one; without it the stream was cut.
            model = self.request.model.id
            raise ProviderConnectionError(
                f"openai/{model}: the stream ended before its final usage chunk",
                provider="openai",
                model=model,
            )
        calls = tuple(
            ToolCall(c.id, c.name, "".join(c.arguments) or "{}")
            for _, c in sorted(self.calls.items())
        )
        return Finished(
            self.usage,
            self.finish_reason,
            self.response_id,
            self.model_version,
            calls,
            stop_reason(self.finish_reason, STOP_REASONS, tool_calls=bool(calls)),
        )


# ---------------------------------------------------------------- the adapter

# The SDK's ``chat.completions.create`` walks its arguments against the request's TypedDicts
# (``maybe_transform``: aliases and formats, ~0.3 ms of CPU for a one-message request, more
# per message) and then posts them. For Chat Completions that walk changes nothing (no field
# has an alias or a format; tests/test_openai_wire.py holds the SDK to it), so the adapter
# posts the body it built with the SDK's own ``post``, as ``create`` does: the same client,
# headers, authentication (``security``: the API key as bearer, as ``create`` asks), retries
# and errors. A whole answer is read as its JSON object (``cast_to=object``:
# :func:`parse_completion`), a stream's chunks as the SDK's ``ChatCompletionChunk``.
COMPLETIONS_PATH = "/chat/completions"
REQUEST_OPTIONS: Any = {"security": {"bearer_auth": True}}
STREAMED = {"stream": True, "stream_options": {"include_usage": True}}


class OpenAIAdapter:
    name = "openai"

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._clients: StainlessClients[openai.OpenAI, openai.AsyncOpenAI] = StainlessClients(
            settings, "openai", "OpenAI", "AsyncOpenAI"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._settings!r})"

    @property
    def client(self) -> openai.OpenAI:
        return self._clients.sync

    async def aopen(self, models: Sequence[ModelInfo]) -> None:
        await self._clients.async_()

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        return build_params(request, self._settings)

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        completion = self.client.post(
            COMPLETIONS_PATH, body=self._params(request), cast_to=object, options=REQUEST_OPTIONS
        )
        return parse_completion(completion, request.model.id)

    async def acomplete(self, request: ChatRequest) -> tuple[str, Finished]:
        params = self._params(request)
        async with self._clients.lease() as client:
            completion = await client.post(
                COMPLETIONS_PATH, body=params, cast_to=object, options=REQUEST_OPTIONS
            )
        return parse_completion(completion, request.model.id)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        import openai
        from openai.types import chat

        stream = self.client.post(
            COMPLETIONS_PATH,
            body={**self._params(request), **STREAMED},
            cast_to=chat.ChatCompletion,
            options=REQUEST_OPTIONS,
            stream=True,
            stream_cls=openai.Stream[chat.ChatCompletionChunk],
        )
        assembler = _StreamAssembler(request)
        with stream:
            for chunk in stream:
                yield from assembler.feed(chunk)
        yield assembler.finished()

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        import openai
        from openai.types import chat

        params = {**self._params(request), **STREAMED}
        assembler = _StreamAssembler(request)
        async with self._clients.lease() as client:
            stream = await client.post(
                COMPLETIONS_PATH,
                body=params,
                cast_to=chat.ChatCompletion,
                options=REQUEST_OPTIONS,
                stream=True,
                stream_cls=openai.AsyncStream[chat.ChatCompletionChunk],
            )
            async with stream:
                async for chunk in stream:
                    for event in assembler.feed(chunk):
                        yield event
        yield assembler.finished()

    def close(self) -> None:
        """Close the sync client and every async client whose loop can still run its close."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async clients: this loop's now, the others' in their own loops."""
        await self._clients.aclose()
