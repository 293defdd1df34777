"""Google Gemini through the official ``google-genai`` SDK.

google-genai 3.x calls ``/v1`` by default, but preview models are served on ``/v1beta`` only, so
the API version comes from the catalog entry of each model. One sync client is kept per API
version for the adapter's whole life (google-genai closes its HTTP client when the Client object
is garbage-collected), and one async client per API version *and event loop*: an async HTTP
client's pooled connections belong to the loop that opened them.

The request is built once (:func:`build_params`) for sync and async calls alike:

- an assistant turn's tool calls become ``functionCall`` parts (with the call's ``id`` unless
  orkestra made it up, and its ``thoughtSignature``: Gemini 3 rejects a replayed call without
  it); tool results become ``functionResponse{name, response: {"result": ...}}`` parts, all the
  results of one turn in one ``user`` content, as the API counts them against the calls;
- ``tools`` become ``functionDeclarations`` with ``parametersJsonSchema`` (plain JSON Schema, so
  no translation to Google's OpenAPI subset), ``tool_choice`` ``toolConfig.functionCallingConfig``
  (AUTO/NONE/ANY, ``allowedFunctionNames`` for a forced tool);
- ``response_format`` becomes ``responseMimeType: application/json`` plus ``responseJsonSchema``;
- images become ``inlineData`` (``data:`` URLs) or ``fileData`` (web URLs with a known image
  extension: the API needs the MIME type and cannot be asked to guess it);
- ``stop``, ``top_p``, ``seed`` are ``stopSequences``, ``topP``, ``seed``;
  ``reasoning_effort`` a ``thinkingConfig.thinkingBudget`` (:data:`THINKING_BUDGETS`);
- ``session`` sends nothing: Gemini 2.5+ caches repeated prompt prefixes implicitly and reports
  the hits as ``cachedContentTokenCount``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orkestra._types import ToolCall, Usage
from orkestra.errors import InvalidRequestError, ProviderConnectionError
from orkestra.providers._errors import malformed
from orkestra.providers._loops import LoopClients
from orkestra.providers.base import (
    ChatRequest,
    ClientSettings,
    Finished,
    ForcedTool,
    Message,
    StopReason,
    StreamEvent,
    TextDelta,
    UsageReport,
    stop_reason,
)

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

    from orkestra.catalog import ModelInfo

__all__ = ["GoogleAdapter", "build_params", "usage_from_google"]

# Tool-call ids orkestra makes up for calls Gemini sent without one (Gemini 2.x): stable within
# an answer, and never sent back to Google as if it had issued them.
_MADE_UP_ID = re.compile(r"call_\d+")

# The image types Gemini takes, by URL extension (ai.google.dev, "Image understanding").
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}


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


# ---------------------------------------------------------------- request


def _plain_json(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (Mappings become dicts) for the SDK's ``Any`` fields."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{what} must be JSON-serialisable") from None


def _wire_id(call_id: str | None) -> str | None:
    """A call id to send back: Google's own (or another provider's), never one made up here."""
    return None if call_id is None or _MADE_UP_ID.fullmatch(call_id) else call_id


def _signature(call: ToolCall) -> bytes | None:
    """The ``thoughtSignature`` bytes Gemini sent with a call (kept as base64 text)."""
    if call.signature is None:
        return None
    try:
        return base64.b64decode(call.signature, altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            f"tool call {call.id!r}: its signature is not the base64 text Gemini sent"
        ) from None


def _call_part(call: ToolCall) -> types.Part:
    from google.genai import types

    try:
        args = call.args
    except ValueError:
        raise InvalidRequestError(
            f"tool call {call.id!r} ({call.name}): its arguments are not valid JSON"
        ) from None
    if not isinstance(args, dict):
        raise InvalidRequestError(
            f"tool call {call.id!r} ({call.name}): Gemini takes arguments as a JSON object"
        )
    return types.Part(
        function_call=types.FunctionCall(id=_wire_id(call.id), name=call.name, args=args),
        thought_signature=_signature(call),
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # NaN and Infinity: Python's, not JSON's


def _result_part(message: Message) -> types.Part:
    from google.genai import types

    if not message.name:
        raise InvalidRequestError(
            f"tool result {message.tool_call_id!r}: Gemini needs the name of the function"
            " it answers"
        )
    try:  # a JSON result travels as JSON, anything else as the text it is
        result: Any = json.loads(message.content, parse_constant=_not_json)
    except ValueError:
        result = message.content
    return types.Part(
        function_response=types.FunctionResponse(
            id=_wire_id(message.tool_call_id), name=message.name, response={"result": result}
        )
    )


def _image_part(url: str) -> types.Part:
    from google.genai import types

    if url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        media_type = head.partition(";")[0] or "application/octet-stream"
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("an image data: URL holds invalid base64") from None
        return types.Part(inline_data=types.Blob(mime_type=media_type, data=raw))
    path = urlsplit(url).path.lower()
    web_type = next((t for ext, t in _IMAGE_TYPES.items() if path.endswith(ext)), None)
    if web_type is None:
        raise InvalidRequestError(
            "google takes an image URL only when its extension names the image type"
            f" ({', '.join(sorted(_IMAGE_TYPES))}); pass this image as a data: URL instead"
        )
    return types.Part(file_data=types.FileData(file_uri=url, mime_type=web_type))


def _contents(turns: Sequence[Message]) -> list[types.Content]:
    from google.genai import types

    grouped: list[tuple[str, list[types.Part]]] = []
    for m in turns:
        if m.role == "tool":
            if grouped and grouped[-1][0] == "tool":  # one content for one turn's results
                grouped[-1][1].append(_result_part(m))
            else:
                grouped.append(("tool", [_result_part(m)]))
        elif m.role == "assistant":
            parts = [types.Part(text=m.content)] if m.content or not m.tool_calls else []
            grouped.append(("model", parts + [_call_part(call) for call in m.tool_calls]))
        else:
            parts = [_image_part(image.url) for image in m.images]  # images first, as advised
            if m.content or not parts:
                parts.append(types.Part(text=m.content))
            grouped.append(("user", parts))
    # Function results go back in a user-role content (the API knows no "tool" role).
    return [
        types.Content(role="model" if role == "model" else "user", parts=parts)
        for role, parts in grouped
    ]


def _tool_config(request: ChatRequest) -> types.ToolConfig:
    from google.genai import types

    choice = request.tool_choice
    allowed: list[str] | None = None
    if isinstance(choice, ForcedTool):
        if choice.name not in {t.name for t in request.tools}:
            raise InvalidRequestError(f"tool_choice names {choice.name!r}, which is not in tools")
        mode, allowed = types.FunctionCallingConfigMode.ANY, [choice.name]
    else:
        mode = {
            "auto": types.FunctionCallingConfigMode.AUTO,
            "none": types.FunctionCallingConfigMode.NONE,
            "required": types.FunctionCallingConfigMode.ANY,
        }[choice]
    return types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=mode, allowed_function_names=allowed
        )
    )


THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}
"""``reasoning_effort`` as a ``thinkingBudget`` (tokens), as Google's own OpenAI-compatible
endpoint translates it."""


def _optional_params(config: types.GenerateContentConfig, request: ChatRequest) -> None:
    """``stopSequences``, ``topP``, ``seed``, the penalties and ``thinkingConfig``."""
    from google.genai import types

    given = request.params
    if given.stop:
        config.stop_sequences = list(given.stop)
    config.top_p = given.top_p
    config.seed = given.seed
    config.presence_penalty = given.presence_penalty
    config.frequency_penalty = given.frequency_penalty
    if given.reasoning_effort is not None:
        config.thinking_config = types.ThinkingConfig(
            thinking_budget=THINKING_BUDGETS[given.reasoning_effort]
        )


def build_params(request: ChatRequest) -> dict[str, Any]:
    """The ``generate_content`` keyword arguments for ``request`` (sync and async alike).

    Raises :class:`InvalidRequestError` for what Gemini cannot take, before any call.
    """
    from google.genai import types

    config = types.GenerateContentConfig(
        max_output_tokens=request.max_tokens,
        temperature=request.temperature,
        system_instruction=request.system,
        # The SDK runs Python callables passed as tools; orkestra passes declarations only,
        # and the caller runs the tools: no SDK-side calling loop.
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    if request.tools:
        config.tools = [
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name=tool.name,
                        description=tool.description,
                        parameters_json_schema=_plain_json(
                            tool.parameters, f"the parameters of tool {tool.name!r}"
                        ),
                    )
                    for tool in request.tools
                ]
            )
        ]
        config.tool_config = _tool_config(request)
    _optional_params(config, request)
    if request.response_format is not None:
        config.response_mime_type = "application/json"
        if request.response_format.schema is not None:
            config.response_json_schema = _plain_json(
                request.response_format.schema, "the response_format schema"
            )
    return {"model": request.model.id, "contents": _contents(request.turns), "config": config}


# ---------------------------------------------------------------- answer


def _parts(response: Any) -> list[Any]:
    candidates = getattr(response, "candidates", None) or []
    if not candidates or candidates[0].content is None:
        return []
    return list(candidates[0].content.parts or [])


def _text(parts: Sequence[Any]) -> str:
    """The answer's text, without thought parts."""
    return "".join(p.text for p in parts if p.text and not getattr(p, "thought", False))


def _tool_calls(parts: Sequence[Any], first: int) -> list[ToolCall]:
    """The ``functionCall`` parts as tool calls; a call without an id gets ``call_<n>`` (``n``
    counted over the whole answer from ``first``)."""
    calls: list[ToolCall] = []
    for part in parts:
        call = part.function_call
        if call is None:
            continue
        signature = part.thought_signature
        calls.append(
            ToolCall(
                id=call.id or f"call_{first + len(calls)}",
                name=call.name or "",
                arguments=json.dumps(call.args or {}),
                signature=base64.b64encode(signature).decode() if signature else None,
            )
        )
    return calls


STOP_REASONS: dict[str, StopReason] = {
    "STOP": "stop",  # a call of a tool ends with STOP too: the calls themselves say it
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
"""Gemini's finish reasons, in common terms."""


def _finish_reason(response: Any) -> str | None:
    candidates = getattr(response, "candidates", None) or []
    reason = candidates[0].finish_reason if candidates else None
    return None if reason is None else str(getattr(reason, "value", reason))


def _answer(response: Any, model: str) -> tuple[str, Finished]:
    """A non-streaming answer: its text and how it finished (with its tool calls). Gemini
    answers with a candidate that has content or a finish reason, or with ``promptFeedback``
    alone when it blocked the prompt; neither is a :class:`MalformedResponseError`
    (google-genai reads any JSON object into a response, empty parts and all)."""
    candidates = getattr(response, "candidates", None) or []
    first = candidates[0] if candidates else None
    answered = first is not None and (first.content is not None or first.finish_reason is not None)
    if not answered and getattr(response, "prompt_feedback", None) is None:
        raise malformed("google", model, "no candidate with content and no promptFeedback")
    parts = _parts(response)
    native, calls = _finish_reason(response), tuple(_tool_calls(parts, 0))
    return _text(parts), Finished(
        usage=usage_from_google(response.usage_metadata),
        finish_reason=native,
        response_id=response.response_id,
        model_version=response.model_version,
        tool_calls=calls,
        stop_reason=stop_reason(native, STOP_REASONS, tool_calls=bool(calls)),
    )


class _Stream:
    """Turns stream chunks into events, the same for the sync and the async stream.

    Gemini sends each function call whole in some chunk; they are gathered here and handed
    over with :class:`Finished`. Only the last chunk carries a finish reason: a stream that
    ends without one was cut (the API ends a stream by closing the connection).
    """

    def __init__(self, request: ChatRequest) -> None:
        self._request = request
        self._calls: list[ToolCall] = []
        self._finish_reason: str | None = None
        self._last: Any = None

    def feed(self, chunk: Any) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if chunk.usage_metadata is not None:
            events.append(UsageReport(usage_from_google(chunk.usage_metadata)))
        parts = _parts(chunk)
        text = _text(parts)
        if text:
            events.append(TextDelta(text))
        self._calls += _tool_calls(parts, len(self._calls))
        self._finish_reason = _finish_reason(chunk) or self._finish_reason
        self._last = chunk
        return events

    def finished(self) -> Finished:
        last = self._last
        if last is None or self._finish_reason is None:
            raise ProviderConnectionError(
                f"google/{self._request.model.id}: the stream ended without a finish reason",
                provider="google",
                model=self._request.model.id,
            )
        calls = tuple(self._calls)
        return Finished(
            usage_from_google(last.usage_metadata),
            self._finish_reason,
            last.response_id,
            last.model_version,
            tool_calls=calls,
            stop_reason=stop_reason(self._finish_reason, STOP_REASONS, tool_calls=bool(calls)),
        )


# ---------------------------------------------------------------- clients


async def _close_async(client: genai.Client) -> None:
    """Close an async client: its ``.aio`` half owns the loop's connections."""
    await client.aio.aclose()
    client.close()  # its sync half, never used


class GoogleAdapter:
    name = "google"

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._clients: dict[str, genai.Client] = {}
        self._loops: LoopClients[str, genai.Client] = LoopClients(_close_async)
        self._lock = threading.Lock()  # one sync client per version, even when threads race

    def __repr__(self) -> str:
        return f"GoogleAdapter({self._settings!r})"

    def _new_client(self, api_version: str) -> genai.Client:
        from google import genai
        from google.genai import types

        s = self._settings
        options = types.HttpOptions(
            api_version=api_version,
            base_url=s.base_url,
            # One timeout for connect and read alike: the SDK takes no split.
            timeout=max(1, int(s.timeout * 1000)),
            retry_options=(
                types.HttpRetryOptions(attempts=s.max_retries + 1) if s.max_retries else None
            ),
        )
        return genai.Client(api_key=s.api_key, http_options=options)

    def client(self, api_version: str) -> genai.Client:
        """The sync client for ``api_version``."""
        with self._lock:
            if api_version not in self._clients:
                self._clients[api_version] = self._new_client(api_version)
            return self._clients[api_version]

    async def async_client(self, api_version: str) -> genai.Client:
        """The running loop's client for ``api_version`` (use its ``.aio``), made on first use
        and closed when the loop shuts down (see :mod:`orkestra.providers._loops`)."""
        return await self._loops.get(api_version, lambda: self._new_client(api_version))

    async def aopen(self, models: Sequence[ModelInfo]) -> None:
        for version in sorted({m.api_version or "v1" for m in models}):
            await self.async_client(version)

    # ------------------------------------------------------------ calls

    def _sync(self, request: ChatRequest) -> tuple[genai.Client, dict[str, Any]]:
        params = build_params(request)  # bad input fails before a client is even made
        return self.client(request.model.api_version or "v1"), params

    async def _async(self, request: ChatRequest) -> tuple[genai.Client, dict[str, Any]]:
        params = build_params(request)
        return await self.async_client(request.model.api_version or "v1"), params

    def complete(self, request: ChatRequest) -> tuple[str, Finished]:
        client, params = self._sync(request)
        return _answer(client.models.generate_content(**params), request.model.id)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        client, params = self._sync(request)
        state = _Stream(request)
        chunks = client.models.generate_content_stream(**params)
        try:
            for chunk in chunks:
                yield from state.feed(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # a consumer that stops early frees the connection now
                close()
        yield state.finished()

    async def acomplete(self, request: ChatRequest) -> tuple[str, Finished]:
        client, params = await self._async(request)
        return _answer(await client.aio.models.generate_content(**params), request.model.id)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        client, params = await self._async(request)
        state = _Stream(request)
        chunks = await client.aio.models.generate_content_stream(**params)
        try:
            async for chunk in chunks:
                for event in state.feed(chunk):
                    yield event
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        yield state.finished()

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the sync clients, and every async client whose loop can still run its close
        (a loop already closed took its connections with it)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        self._loops.close()

    async def aclose(self) -> None:
        """Close the async clients: this loop's here and now, other loops' in their loop."""
        await self._loops.aclose()
