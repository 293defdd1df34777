"""Anthropic Messages through the official ``anthropic`` SDK (sync and async clients).

Anthropic's API version 2026-10-21 (what SDK 2.x sends) rejects ``temperature``, and neither SDK
1.x nor 2.x takes it any more, so it is never sent. ``max_tokens`` is required and always sent.

How our provider-neutral request maps onto the Messages API (field names as in the SDK's
``types/message_create_params.py`` and the block types it references):

- a ``tool`` turn is a ``tool_result`` block in a *user* message (consecutive results share one
  message, as the API wants every result of one assistant turn in the next message, first);
  an assistant turn's calls are ``tool_use`` blocks whose ``input`` is the parsed arguments;
- tools are ``{"name", "description", "input_schema"}``; ``tool_choice`` "required" is
  ``{"type": "any"}``, a forced tool ``{"type": "tool", "name"}``, "none" ``{"type": "none"}``;
- a schema ``response_format`` is ``output_config.format = {"type": "json_schema", "schema"}``;
  Anthropic has no schema-less JSON mode, so ``schema=None`` becomes a tool named after the
  format, which the model is made to call, and whose input is returned as the text;
- images are ``image`` blocks: a ``base64`` source for ``data:`` URLs, a ``url`` source for
  https URLs;
- ``stop`` is ``stop_sequences``; ``parallel_tool_calls=False`` is ``tool_choice``'s
  ``disable_parallel_tool_use``; the other optional parameters are not Anthropic's (the
  catalog's ``unsupported_params``: ``top_p`` is refused by API version 2026-10-21 like
  ``temperature``, and there is no ``seed``);
- a ``session`` marks ``cache_control: {"type": "ephemeral"}`` breakpoints on the system prompt
  and on the last block of the last turn (Anthropic caches nothing it is not told to, and a
  cache write costs 1.25x input, so a one-off request gets no breakpoint).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
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
    Image,
    Message,
    ResponseFormat,
    StopReason,
    StreamEvent,
    TextDelta,
    Tool,
    UsageReport,
    stop_reason,
)

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import RawMessageStreamEvent

    from orkestra.catalog import ModelInfo

__all__ = ["AnthropicAdapter", "usage_from_anthropic"]

# The SDK refuses non-streaming calls it expects to run past 10 minutes
# (3600 s · max_tokens / 128000 > 600 s); those go through the stream instead.
NON_STREAMING_MAX_TOKENS = 21_333

CACHE_HINT: dict[str, str] = {"type": "ephemeral"}
# The media types an Anthropic base64 image source accepts (``Base64ImageSourceParam``).
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _int(obj: Any, name: str) -> int:
    value = read_field(obj, name)
    return value if isinstance(value, int) else 0


def usage_from_anthropic(usage: Any) -> Usage:
    """``input_tokens`` excludes cache reads and writes: add them back for the prompt total.
    ``usage``: the SDK's object (a stream's event) or its JSON object (a whole answer)."""
    cache_read = _int(usage, "cache_read_input_tokens")
    cache_write = _int(usage, "cache_creation_input_tokens")
    details = read_field(usage, "output_tokens_details")
    return Usage(
        input_tokens=_int(usage, "input_tokens") + cache_read + cache_write,
        output_tokens=_int(usage, "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=_int(details, "thinking_tokens"),
    )


# ---------------------------------------------------------------- request translation


@dataclass(frozen=True)
class _Call:
    """One request as SDK keyword arguments, and how to read its answer."""

    params: dict[str, Any]
    format_tool: str | None = None
    """JSON mode: the tool the model is made to call; its input is the answer's text."""


def build_call(request: ChatRequest) -> _Call:
    """The ``messages.create`` arguments for ``request`` (shared by sync and async calls).

    Raises :class:`InvalidRequestError` for what Anthropic cannot take, before any call.
    """
    params: dict[str, Any] = {
        "model": request.model.id,
        "max_tokens": request.max_tokens,
        "messages": _messages(request.messages),
    }
    system = request.system
    if system:
        # A block list only when it carries a breakpoint: the plain string is the common form.
        params["system"] = (
            [{"type": "text", "text": system, "cache_control": dict(CACHE_HINT)}]
            if request.session
            else system
        )
    tools = [_tool(t) for t in request.tools]
    choice: dict[str, Any] | None = _tool_choice(request)
    format_tool = None
    fmt = request.response_format
    if fmt is not None and fmt.schema is not None:
        params["output_config"] = {"format": {"type": "json_schema", "schema": _schema(fmt)}}
    elif fmt is not None and not _call_forced(request):
        format_tool = fmt.name
        tools.append(_format_tool(fmt, request.tools))
        # With tools of its own on "auto" the model may call one of them or answer (by calling
        # the format tool): "any"; otherwise answering is the only thing it may do.
        if request.tools and request.tool_choice == "auto":
            choice = {"type": "any"}
        else:
            choice = {"type": "tool", "name": fmt.name}
    if tools:
        params["tools"] = tools
        if request.params.parallel_tool_calls is False:
            choice = _one_call_at_most(choice)
        if choice is not None:
            params["tool_choice"] = choice
    if request.params.stop:
        params["stop_sequences"] = list(request.params.stop)
    if request.session:
        _mark_last_block(params["messages"])
    return _Call(params, format_tool)


def _one_call_at_most(choice: dict[str, Any] | None) -> dict[str, Any] | None:
    """``tool_choice`` with ``disable_parallel_tool_use`` (the default "auto" made explicit;
    "none" calls nothing anyway)."""
    choice = choice or {"type": "auto"}
    if choice["type"] == "none":
        return choice
    return {**choice, "disable_parallel_tool_use": True}


def _call_forced(request: ChatRequest) -> bool:
    """Whether ``tool_choice`` makes the model call one of the request's tools anyway (then
    the answer is that call, and JSON mode has nothing to shape)."""
    return request.tool_choice == "required" or isinstance(request.tool_choice, ForcedTool)


def _tool(tool: Tool) -> dict[str, Any]:
    declared: dict[str, Any] = {"name": tool.name, "input_schema": dict(tool.parameters)}
    if tool.description:
        declared["description"] = tool.description
    return declared


def _tool_choice(request: ChatRequest) -> dict[str, str] | None:
    """Anthropic's ``tool_choice``; None for "auto", the API's default when tools are given."""
    choice = request.tool_choice
    names = {t.name for t in request.tools}
    if isinstance(choice, ForcedTool):
        if choice.name not in names:
            raise InvalidRequestError(
                f"tool_choice names {choice.name!r}, which is not one of the request's tools"
            )
        return {"type": "tool", "name": choice.name}
    if choice == "required":
        if not names:
            raise InvalidRequestError("tool_choice='required' needs tools")
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    return None


def _schema(fmt: ResponseFormat) -> dict[str, Any]:
    """The schema as Anthropic's structured outputs accept it.

    The API refuses an object without ``additionalProperties: false`` and constraints it cannot
    enforce (``minimum``, ``maxLength``...); the SDK's public ``transform_schema`` rewrites a
    schema into that subset (moving the constraints into descriptions), the same helper its
    ``messages.parse`` uses. The answer is still validated against the original schema by the
    caller, so no constraint is lost. Anthropic always enforces the schema: ``strict`` changes
    nothing here.
    """
    import anthropic

    try:
        schema: dict[str, Any] = json.loads(json.dumps(fmt.schema))
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(f"response_format {fmt.name!r}: the schema is not JSON") from e
    transform = getattr(anthropic, "transform_schema", None)
    if transform is None:  # an SDK without the helper: send the schema as given
        return schema
    try:
        result: dict[str, Any] = transform(schema)
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(
            f"response_format {fmt.name!r}: Anthropic cannot use this schema: {e}"
        ) from None
    return result


def _format_tool(fmt: ResponseFormat, tools: Sequence[Tool]) -> dict[str, Any]:
    if any(t.name == fmt.name for t in tools):
        raise InvalidRequestError(
            f"response_format is named {fmt.name!r} like one of the tools; Anthropic answers "
            "in JSON mode by calling a tool of that name, so give the format another name"
        )
    return {
        "name": fmt.name,
        "description": "Answer the user: your whole answer is this tool's input, a JSON object.",
        "input_schema": {"type": "object"},
    }


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation (system turns aside) as Anthropic messages."""
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.role == "system":
            continue
        if message.role == "assistant":
            out.append({"role": "assistant", "content": _assistant_content(message, where)})
            continue
        if message.role == "tool":
            blocks = [_tool_result(message, where)]
        else:
            content = _user_content(message, where)
            if not _holds_tool_results(out):
                out.append({"role": "user", "content": content})
                continue
            blocks = _as_blocks(content)
        if _holds_tool_results(out):
            # One assistant turn's results (and user text after them) share one user message.
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": "user", "content": blocks})
    return out


def _holds_tool_results(out: list[dict[str, Any]]) -> bool:
    if not out or out[-1]["role"] != "user" or not isinstance(out[-1]["content"], list):
        return False
    return any(block.get("type") == "tool_result" for block in out[-1]["content"])


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


def _assistant_content(message: Message, where: str) -> str | list[dict[str, Any]]:
    if message.images:
        raise InvalidRequestError(f"{where}: Anthropic takes images in user turns only")
    if not message.tool_calls:
        return message.content
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _args(call)})
    return blocks


def _args(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as the JSON object Anthropic's ``tool_use.input`` must be."""
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequestError(
            f"tool call {call.id!r} ({call.name}): its arguments must be a JSON object"
        )
    return args


def _tool_result(message: Message, where: str) -> dict[str, Any]:
    if not message.tool_call_id:
        raise InvalidRequestError(f"{where}: a tool turn needs the tool_call_id it answers")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    if message.images:
        block["content"] = _as_blocks(message.content) + [
            _image(image, where) for image in message.images
        ]
    elif message.content:
        block["content"] = message.content
    return block


def _user_content(message: Message, where: str) -> str | list[dict[str, Any]]:
    if not message.images:
        return message.content
    # Anthropic's vision guide puts images before the text that talks about them.
    return [_image(image, where) for image in message.images] + _as_blocks(message.content)


def _image(image: Image, where: str) -> dict[str, Any]:
    try:
        image.validate()
        inline = image.inline
    except ValueError as e:
        raise InvalidRequestError(f"{where}: {e}") from None
    if inline is None:
        if not image.url.startswith("https://"):
            raise InvalidRequestError(
                f"{where}: Anthropic fetches image URLs over https only; "
                "send this image inline as a base64 data: URL"
            )
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    media_type, data = inline
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            f"{where}: Anthropic takes {', '.join(IMAGE_MEDIA_TYPES)} images, not {media_type}"
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _mark_last_block(messages: list[dict[str, Any]]) -> None:
    """Put a cache breakpoint on the last content block (a string becomes one text block)."""
    if not messages:
        return
    last = messages[-1]
    blocks = _as_blocks(last["content"])
    if not blocks:
        return  # an empty turn has no block to mark
    last["content"] = [*blocks[:-1], {**blocks[-1], "cache_control": dict(CACHE_HINT)}]


# ---------------------------------------------------------------- answer parsing


STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic's stop reasons, in common terms."""


def _finish_reason(raw: str | None, calls: Sequence[ToolCall], answered: bool) -> str | None:
    """Anthropic's own ``stop_reason``, except that a JSON-mode answer (a call of the format
    tool and nothing else) ends the turn like text does: "tool_use" would promise calls."""
    if raw == "tool_use" and answered and not calls:
        return "end_turn"
    return raw


def read_message(message: Any, format_tool: str | None, model: str) -> tuple[str, Finished]:
    """The text and :class:`Finished` of a whole answer, as the JSON object it came in (read as
    JSON rather than built into the SDK's ``Message`` first: building that object cost ~0.1 ms
    of CPU a call, for the few fields read here). A body that is not an object with a content
    list is a :class:`MalformedResponseError`."""
    message = answer_object(message, "anthropic", model)
    content = message.get("content")
    if not isinstance(content, list):
        raise malformed("anthropic", model, "no content list")
    texts: list[str] = []
    calls: list[ToolCall] = []
    answered = False
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input", {}))
            if block.get("name") == format_tool:
                texts.append(arguments)
                answered = True
            else:
                calls.append(ToolCall(block.get("id", ""), block.get("name", ""), arguments))
    finish = _finish_reason(message.get("stop_reason"), calls, answered)
    return "".join(texts), Finished(
        usage=usage_from_anthropic(message.get("usage")),
        finish_reason=finish,
        response_id=message.get("id"),
        model_version=message.get("model"),
        tool_calls=tuple(calls),
        stop_reason=stop_reason(finish, STOP_REASONS, tool_calls=bool(calls)),
    )


@dataclass
class _ToolBlock:
    id: str
    name: str
    parts: list[str] = field(default_factory=list)


@dataclass
class StreamReader:
    """Turns the SDK's stream events into ours; the same for the sync and the async stream.

    Text deltas pass straight through; tool calls are assembled from their ``input_json_delta``
    pieces and delivered on :class:`Finished` (a JSON-mode answer's pieces stream as text).
    """

    model: str
    format_tool: str | None = None
    _start_usage: Any = None
    _usage: Usage | None = None
    _finish: str | None = None
    _id: str | None = None
    _model_version: str | None = None
    _stopped: bool = False
    _answered: bool = False
    _blocks: dict[int, _ToolBlock] = field(default_factory=dict)

    def feed(self, event: RawMessageStreamEvent) -> list[StreamEvent]:
        """What one SDK event yields to our caller (often nothing)."""
        if event.type == "message_start":
            self._start_usage = event.message.usage
            self._id, self._model_version = event.message.id, event.message.model
            return [UsageReport(usage_from_anthropic(self._start_usage))]
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            self._blocks[event.index] = _ToolBlock(block.id, block.name)
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta":
                return [TextDelta(event.delta.text)]
            tool = self._blocks.get(event.index)
            if event.delta.type == "input_json_delta" and tool is not None:
                tool.parts.append(event.delta.partial_json)
                if tool.name == self.format_tool and event.delta.partial_json:
                    return [TextDelta(event.delta.partial_json)]
        elif event.type == "content_block_stop":
            tool = self._blocks.get(event.index)
            if tool is not None and tool.name == self.format_tool:
                self._answered = True
                if not "".join(tool.parts).strip():
                    return [TextDelta("{}")]  # the non-streaming answer's text for no input
        elif event.type == "message_delta":
            self._finish = event.delta.stop_reason
            self._usage = _merge_usage(self._start_usage, event.usage)
        elif event.type == "message_stop":
            self._stopped = True
        return []

    def finish(self) -> Finished:
        """The final event; a stream cut before ``message_stop`` raises instead."""
        if self._usage is None or not self._stopped:
            raise ProviderConnectionError(
                f"anthropic/{self.model}: the stream ended before message_stop",
                provider="anthropic",
                model=self.model,
            )
        calls = tuple(
            ToolCall(tool.id, tool.name, "".join(tool.parts) or "{}")
            for _, tool in sorted(self._blocks.items())
            if tool.name != self.format_tool
        )
        finish = _finish_reason(self._finish, calls, self._answered)
        return Finished(
            self._usage,
            finish,
            self._id,
            self._model_version,
            calls,
            stop_reason(finish, STOP_REASONS, tool_calls=bool(calls)),
        )


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


def _collected(events: Iterable[StreamEvent]) -> tuple[str, Finished]:
    """The text and :class:`Finished` of a whole stream (a long call made non-streaming)."""
    parts: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, Finished):
            return "".join(parts), event
    raise AssertionError("a stream always ends with Finished or raises")  # pragma: no cover


# ---------------------------------------------------------------- the adapter

# The SDK's ``messages.create`` hands its arguments to the client's ``post`` (the client adds
# the headers: anthropic-version, the key, the x-stainless-* ones; its ``request`` walks the
# body into plain JSON data, retries and raises the SDK's errors). The adapter posts the body it
# built with that same ``post``; the rest of ``create`` changes nothing on the wire for our
# arguments or is reproduced here (tests/test_anthropic_wire.py holds the installed SDK to it):
# - not streaming, with the client's default timeout, ``create`` makes the 10-minute timeout
#   explicit, which shows in the x-stainless-timeout headers: :func:`_options` does the same.
#   It refuses calls it expects to take longer (ValueError): those are streamed, as ``create``
#   asks (NON_STREAMING_MAX_TOKENS; its lower cap for claude-opus-4-0 is moot: that model
#   retired on 2026-06-15 and the catalog sends its successor);
# - its OpenTelemetry span options (name, route, attributes): the same, so that a call inside
#   a traced context sends the same ``traceparent``. (A span that records still differs in one
#   way: with a whole answer read as JSON the SDK records no response attributes on it.)
# - per-call anthropic-user-profile-id / anthropic-workspace-id headers: only when given, never;
# - its DeprecationWarning for models it lists as deprecated: skipped, the catalog warns of
#   retirements itself (ModelRetirementWarning); its warning about ``thinking``: never sent.
# A whole answer is read as its JSON object (``cast_to=object``: :func:`read_message`), a
# stream's events as the SDK's ``RawMessageStreamEvent``, as ``create`` reads them.
MESSAGES_PATH = "/v1/messages"
SPAN_OPTIONS = {"span_name": "anthropic.messages.create", "span_route": MESSAGES_PATH}
# The timeout ``create`` computes for every non-streaming call it allows (10 min, connect 5 s).
NON_STREAMING_TIMEOUT = (600, 5.0)


def _options(call: _Call, client: Any = None) -> Any:
    """The request options ``create`` gives ``post``: its span's name, route and attributes
    (structured outputs are ``gen_ai.output.type: json``); and for a non-streaming call
    (``client`` given) on the SDK's default timeout, that timeout made explicit."""
    options: dict[str, Any] = dict(SPAN_OPTIONS)
    if "output_config" in call.params:
        options["span_attributes"] = {"gen_ai.output.type": "json"}
    if client is not None:
        import anthropic

        if client.timeout == anthropic.DEFAULT_TIMEOUT:
            read, connect = NON_STREAMING_TIMEOUT
            options["timeout"] = anthropic.Timeout(read, connect=connect)
    return options


def _streamed(call: _Call, stream_cls: Any) -> dict[str, Any]:
    """``post``'s arguments for ``call`` streamed, as ``create`` gives them: the typed events
    (``stream_cls``) of a ``Message``."""
    from anthropic.types import Message

    body = {**call.params, "stream": True}
    return {
        "body": body,
        "cast_to": Message,
        "options": _options(call),
        "stream": True,
        "stream_cls": stream_cls,
    }


class AnthropicAdapter:
    """One sync ``anthropic.Anthropic`` client, and one ``AsyncAnthropic`` per event loop.

    An async HTTP client belongs to the event loop it first ran on: its pooled connections die
    with that loop. Each loop gets its own client, closed from inside that loop when it shuts
    down (``asyncio.run`` finalises every live async generator, and a small generator per
    client does the closing), so ``asyncio.run`` called again and again neither fails nor leaks.
    """

    name = "anthropic"

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._clients: StainlessClients[anthropic.Anthropic, anthropic.AsyncAnthropic] = (
            StainlessClients(settings, "anthropic", "Anthropic", "AsyncAnthropic")
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._settings!r})"

    @property
    def client(self) -> anthropic.Anthropic:
        return self._clients.sync

    async def async_client(self) -> anthropic.AsyncAnthropic:
        """The running loop's (first) async client (made on first use in that loop)."""
        return await self._clients.async_()

    async def aopen(self, models: Sequence[ModelInfo]) -> None:
        await self._clients.async_()

    # ------------------------------------------------------------ sync

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        call = build_call(request)
        if request.max_tokens > NON_STREAMING_MAX_TOKENS:
            return _collected(self._stream(call, request.model.id))
        client = self.client
        message = client.post(
            MESSAGES_PATH, body=call.params, cast_to=object, options=_options(call, client)
        )
        return read_message(message, call.format_tool, request.model.id)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        yield from self._stream(build_call(request), request.model.id)

    def _stream(self, call: _Call, model: str) -> Iterator[StreamEvent]:
        import anthropic
        from anthropic.types import RawMessageStreamEvent

        stream_cls = anthropic.Stream[RawMessageStreamEvent]
        stream = self.client.post(MESSAGES_PATH, **_streamed(call, stream_cls))
        reader = StreamReader(model, call.format_tool)
        with stream:
            for event in stream:
                yield from reader.feed(event)
        yield reader.finish()

    # ------------------------------------------------------------ async

    async def acomplete(self, request: ChatRequest) -> tuple[str, Finished]:
        call = build_call(request)
        if request.max_tokens > NON_STREAMING_MAX_TOKENS:
            return _collected([event async for event in self.astream(request)])
        async with self._clients.lease() as client:
            message = await client.post(
                MESSAGES_PATH, body=call.params, cast_to=object, options=_options(call, client)
            )
        return read_message(message, call.format_tool, request.model.id)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        import anthropic
        from anthropic.types import RawMessageStreamEvent

        call = build_call(request)
        reader = StreamReader(request.model.id, call.format_tool)
        async with self._clients.lease() as client:
            stream_cls = anthropic.AsyncStream[RawMessageStreamEvent]
            stream = await client.post(MESSAGES_PATH, **_streamed(call, stream_cls))
            async with stream:
                async for event in stream:
                    for out in reader.feed(event):
                        yield out
        yield reader.finish()

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the sync client and every async client whose loop can still run its close."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async clients: this loop's now, the others' in their own loops."""
        await self._clients.aclose()
