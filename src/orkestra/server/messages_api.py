"""Anthropic's Messages API, ``POST /v1/messages``: Claude Code and the ``anthropic`` SDK pointed
at the proxy (``ANTHROPIC_BASE_URL=http://127.0.0.1:8000``) get orkestra's routing.

A request (``model``, ``max_tokens``, ``system``, ``messages`` of content blocks — text, images,
``tool_use`` and ``tool_result`` —, ``tools``, ``tool_choice``, ``stop_sequences``,
``temperature``, ``top_p``, ``metadata.user_id``, ``thinking``, ``stream``) becomes the library's
vocabulary, whatever the ``model`` names: an Anthropic model, ``orkestra-auto`` or a GPT. The
answer is a ``message`` (text and ``tool_use`` blocks, ``stop_reason``, usage in Anthropic's
terms: ``input_tokens`` without the cache reads and writes), or its stream of events
(``message_start``, ``ping``, ``content_block_start/delta/stop``, ``message_delta``,
``message_stop``). Errors have Anthropic's shape (``{"type": "error", "error": {"type",
"message"}}``), so the SDK raises its usual exceptions. The client's key comes as ``x-api-key``
(SDK 1.x, curl, Claude Code) or ``Authorization: Bearer`` (SDK 2.x): the proxy's own keys.

What has no counterpart is named in ``x-orkestra-ignored-params`` (``cache_control``: the
library places its own cache breakpoints; ``top_k``; a ``thinking`` block replayed in the
history), never silently dropped; what cannot be honoured at all (server tools, documents) is
a 400.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from orkestra import ForcedTool, Image, Message, Response, RoutingDecision, Tool, ToolCall
from orkestra.errors import OrkestraError
from orkestra.server.body import parse_json
from orkestra.server.call_ids import parse_call_id, wire_call_id
from orkestra.server.errors import ProxyError, bad_request, unsupported
from orkestra.server.fields import (
    check_unique_tool,
    invalid,
    is_int,
    missing,
    name_field,
    object_field,
    only_known,
    text_field,
    tools_array,
    wrong_type,
)
from orkestra.server.params import parse_number, parse_stop
from orkestra.server.request import ChatParams
from orkestra.server.response import cut_report, dumps, orkestra_json, proxy_error

__all__ = ["MESSAGES", "MessagesWire", "parse_messages_request"]

_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "service_tier",
    }
)
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
# Anthropic's thinking budget (tokens) as the library's reasoning effort.
_EFFORT_BUDGETS = ((1024, "low"), (8192, "medium"))
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


class _Parsed:
    """What parsing a body collects besides the turns."""

    def __init__(self) -> None:
        self.ignored: list[str] = []
        self.tool_names: dict[str, str] = {}  # tool_use id -> name, for the results


def parse_messages_request(body: object) -> ChatParams:  # noqa: PLR0912 (one branch per field)
    """Check a ``/v1/messages`` body; a :class:`ProxyError` (400) names what is wrong."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", None, "invalid_body")
    for name in body:
        if name not in _FIELDS:
            raise bad_request(f"{name}: Extra inputs are not permitted", name, "unknown_parameter")
    for name in ("model", "max_tokens", "messages"):
        if body.get(name) is None:
            raise missing(name)
    model = text_field("model", body["model"])
    max_tokens = body["max_tokens"]
    if not is_int(max_tokens) or max_tokens < 1:
        raise invalid("max_tokens", "it must be an integer ≥ 1.")
    parsed = _Parsed()
    turns = [*_system(body.get("system"), parsed), *_messages(body["messages"], parsed)]
    if not any(m.role == "user" and (m.content or m.images) for m in turns):
        raise invalid("messages", "there is no user text: orkestra routes on the last one.")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise wrong_type("stream", "a boolean", stream)
    temperature = body.get("temperature")
    if temperature is not None:
        temperature = parse_number("temperature", temperature, 0, 1)
    params: dict[str, Any] = {}
    if body.get("stop_sequences") is not None:
        stops = parse_stop("stop_sequences", body["stop_sequences"])
        if stops:
            params["stop"] = stops
    if body.get("top_p") is not None:
        params["top_p"] = parse_number("top_p", body["top_p"], 0, 1)
    unserved: list[str] = []
    if body.get("top_k") is not None:
        if not is_int(body["top_k"]):
            raise wrong_type("top_k", "an integer", body["top_k"])
        unserved.append("top_k")
    effort = _thinking(body.get("thinking"), max_tokens)
    if effort is not None:
        params["reasoning_effort"] = effort
    tools = _tools(body.get("tools"), parsed)
    choice, one_at_most = _tool_choice(body.get("tool_choice"), tools)
    if one_at_most and tools:
        params["parallel_tool_calls"] = False
    user = None
    metadata = body.get("metadata")
    if metadata is not None:
        metadata = object_field("metadata", metadata)
        only_known("metadata", metadata, frozenset({"user_id"}), "metadata field")
        if metadata.get("user_id") is not None:
            user = text_field("metadata.user_id", metadata["user_id"])
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        raise invalid("service_tier", "supported: 'auto', 'standard_only'.")
    return ChatParams(
        model=model,
        messages=tuple(turns),
        max_tokens=max_tokens,
        temperature=temperature,
        stream=bool(stream),
        user=user,
        tools=tools,
        tool_choice=choice,
        params=params,
        ignored=tuple(dict.fromkeys([*parsed.ignored, *unserved])),
        unserved=tuple(unserved),
    )


def _thinking(value: object, max_tokens: int) -> str | None:
    """Extended thinking as the library's ``reasoning_effort`` (by its budget)."""
    if value is None:
        return None
    thinking = object_field("thinking", value)
    kind = thinking.get("type")
    if kind in ("disabled", "adaptive"):  # adaptive: the model decides, as it does anyway
        return None
    if kind != "enabled":
        raise invalid("thinking.type", "supported: 'enabled', 'adaptive', 'disabled'.")
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
        raise invalid("thinking.budget_tokens", "it must be an integer ≥ 1024.")
    if budget >= max_tokens:
        raise invalid("thinking.budget_tokens", "`max_tokens` must be greater than it.")
    return next((effort for limit, effort in _EFFORT_BUDGETS if budget <= limit), "high")


def _blocks(param: str, value: object) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if not isinstance(value, list):
        raise wrong_type(param, "a string or an array of content blocks", value)
    for i, block in enumerate(value):
        object_field(f"{param}[{i}]", block)
    return value


def _note_cache_control(block: Mapping[str, Any], parsed: _Parsed) -> None:
    if block.get("cache_control") is not None:
        parsed.ignored.append("cache_control")


def _system(value: object, parsed: _Parsed) -> list[Message]:
    if value is None:
        return []
    texts = []
    for i, block in enumerate(_blocks("system", value)):
        where = f"system[{i}]"
        if block.get("type") != "text":
            raise invalid(f"{where}.type", "system blocks are text blocks.")
        only_known(where, block, frozenset({"type", "text", "cache_control", "citations"}), "field")
        _note_cache_control(block, parsed)
        texts.append(text_field(f"{where}.text", block.get("text")))
    return [Message("system", "\n\n".join(texts))] if texts else []


def _messages(value: object, parsed: _Parsed) -> list[Message]:
    if not isinstance(value, list):
        raise wrong_type("messages", "an array", value)
    if not value:
        raise invalid("messages", "at least one message is required.")
    out: list[Message] = []
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        message = object_field(where, item)
        only_known(where, message, frozenset({"role", "content"}), "message field")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role", "supported: 'user', 'assistant'.")
        if message.get("content") is None:
            raise missing(f"{where}.content")
        blocks = _blocks(f"{where}.content", message["content"])
        if role == "assistant":
            out.append(_assistant(where, blocks, parsed))
        else:
            out += _user(where, blocks, parsed)
    return out


def _assistant(where: str, blocks: Sequence[dict[str, Any]], parsed: _Parsed) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for i, block in enumerate(blocks):
        at = f"{where}.content[{i}]"
        kind = block.get("type")
        _note_cache_control(block, parsed)
        if kind == "text":
            texts.append(text_field(f"{at}.text", block.get("text")))
        elif kind == "tool_use":
            wire = text_field(f"{at}.id", block.get("id"))
            name = name_field(f"{at}.name", block.get("name"))
            arguments = object_field(f"{at}.input", block.get("input", {}))
            call_id, signature = parse_call_id(wire)
            calls.append(ToolCall(call_id, name, json.dumps(arguments), signature))
            parsed.tool_names[wire] = name
        elif kind in ("thinking", "redacted_thinking"):
            parsed.ignored.append("thinking")  # the model's own notes: not sent back
        else:
            raise unsupported(f"{at}.type", f"{kind!r} blocks in assistant turns")
    return Message("assistant", "".join(texts), tool_calls=tuple(calls))


def _user(where: str, blocks: Sequence[dict[str, Any]], parsed: _Parsed) -> list[Message]:
    """Tool results first (each a ``tool`` turn), then the user's text and images."""
    results: list[Message] = []
    texts: list[str] = []
    images: list[Image] = []
    for i, block in enumerate(blocks):
        at = f"{where}.content[{i}]"
        kind = block.get("type")
        _note_cache_control(block, parsed)
        if kind == "text":
            texts.append(text_field(f"{at}.text", block.get("text")))
        elif kind == "image":
            images.append(_image(f"{at}.source", block.get("source")))
        elif kind == "tool_result":
            results.append(_tool_result(at, block, parsed))
        else:
            raise unsupported(f"{at}.type", f"{kind!r} blocks")
    turns = results
    if texts or images:
        turns.append(Message("user", "".join(texts), images=tuple(images)))
    return turns


def _tool_result(at: str, block: Mapping[str, Any], parsed: _Parsed) -> Message:
    wire = text_field(f"{at}.tool_use_id", block.get("tool_use_id"))
    name = parsed.tool_names.get(wire)
    if name is None:
        raise invalid(f"{at}.tool_use_id", f"no tool_use block before it has the id {wire!r}.")
    content = block.get("content", "")
    texts = []
    for j, part in enumerate(_blocks(f"{at}.content", content) if content != "" else []):
        if part.get("type") != "text":
            raise unsupported(f"{at}.content[{j}].type", "non-text tool results")
        texts.append(text_field(f"{at}.content[{j}].text", part.get("text")))
    text = "".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"
    call_id, _ = parse_call_id(wire)
    return Message("tool", text, tool_call_id=call_id, name=name)


def _image(param: str, value: object) -> Image:
    source = object_field(param, value)
    kind = source.get("type")
    if kind == "base64":
        media_type = text_field(f"{param}.media_type", source.get("media_type"))
        data = text_field(f"{param}.data", source.get("data"))
        image = Image(f"data:{media_type};base64,{data}")
    elif kind == "url":
        image = Image(text_field(f"{param}.url", source.get("url")))
    else:
        raise unsupported(f"{param}.type", f"image sources of type {kind!r}")
    try:
        image.validate()
    except ValueError as error:
        raise invalid(param, f"{error}.") from None
    return image


def _tools(value: object, parsed: _Parsed) -> tuple[Tool, ...]:
    out: list[Tool] = []
    for i, item in enumerate(tools_array(value)):
        where = f"tools[{i}]"
        tool = object_field(where, item)
        if tool.get("type") not in (None, "custom"):
            raise unsupported(f"{where}.type", f"server tools ({tool.get('type')!r})")
        only_known(
            where,
            tool,
            frozenset({"type", "name", "description", "input_schema", "cache_control"}),
            "tool field",
        )
        _note_cache_control(tool, parsed)
        name = name_field(f"{where}.name", tool.get("name"))
        check_unique_tool(name, out)
        description = tool.get("description")
        if description is not None:
            description = text_field(f"{where}.description", description)
        if tool.get("input_schema") is None:
            raise missing(f"{where}.input_schema")
        schema = object_field(f"{where}.input_schema", tool["input_schema"])
        if schema.get("type") != "object":
            raise invalid(f"{where}.input_schema.type", "it must be 'object'.")
        out.append(Tool(name, description, schema))
    return tuple(out)


def _tool_choice(value: object, tools: Sequence[Tool]) -> tuple[str | ForcedTool | None, bool]:
    """The library's tool choice, and whether at most one call is wanted."""
    if value is None:
        return None, False
    choice = object_field("tool_choice", value)
    kind = choice.get("type")
    one_at_most = choice.get("disable_parallel_tool_use")
    if one_at_most is not None and not isinstance(one_at_most, bool):
        raise wrong_type("tool_choice.disable_parallel_tool_use", "a boolean", one_at_most)
    if kind == "tool":
        name = name_field("tool_choice.name", choice.get("name"))
        if name not in {t.name for t in tools}:
            raise invalid("tool_choice.name", f"no tool named {name!r} is in 'tools'.")
        return ForcedTool(name), bool(one_at_most)
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
    if mapped is None:
        raise invalid("tool_choice.type", "supported: 'auto', 'any', 'tool', 'none'.")
    if mapped == "required" and not tools:
        raise invalid("tool_choice", "'any' needs tools.")
    return (mapped if tools else None), bool(one_at_most)


# -- answers ---------------------------------------------------------------------------------


def usage_json(response: Response) -> dict[str, int]:
    """Anthropic's usage: ``input_tokens`` without the cache reads and writes."""
    usage = response.usage
    cached, written = usage.cache_read_tokens, usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.input_tokens - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.output_tokens,
    }


def stop_reason(response: Response) -> str:
    if response.finish_reason == "stop_sequence":  # Anthropic answered and said so
        return "stop_sequence"
    return _STOP_REASONS.get(response.stop_reason, "end_turn")


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        arguments = {}
    return {
        "type": "tool_use",
        "id": wire_call_id(call),
        "name": call.name,
        "input": arguments if isinstance(arguments, dict) else {},
    }


def message_json(
    response: Response, *, request_id: str, ignored: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``message`` object of a finished call (with the ``orkestra`` extension)."""
    content: list[dict[str, Any]] = []
    if response.text or not response.tool_calls:
        content.append({"type": "text", "text": response.text})
    content += [_tool_use(call) for call in response.tool_calls]
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(response),
        "stop_sequence": None,
        "usage": usage_json(response),
        "orkestra": orkestra_json(response, ignored),
    }


def _event(kind: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **data}) + b"\n\n"


class _MessagesStream:
    """A streamed ``message``: the text as one text block's deltas, each tool call a
    ``tool_use`` block with its whole input in one ``input_json_delta``."""

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id, self.model = request_id, model
        self.index = 0
        self.text_open = False

    def opening(self, routing: RoutingDecision, only_calls: bool) -> list[bytes]:
        message: dict[str, Any] = {
            "id": f"msg_{self.request_id}",
            "type": "message",
            "role": "assistant",
            "model": routing.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        events = [_event("message_start", {"message": message}), _event("ping", {})]
        if not only_calls:
            block = {"type": "text", "text": ""}
            events.append(_event("content_block_start", {"index": 0, "content_block": block}))
            self.text_open = True
        return events

    def text(self, chunk: str) -> bytes:
        delta = {"type": "text_delta", "text": chunk}
        return _event("content_block_delta", {"index": self.index, "delta": delta})

    def closing(self, response: Response, ignored: Sequence[str]) -> list[bytes]:
        events: list[bytes] = []
        if self.text_open:
            events.append(_event("content_block_stop", {"index": self.index}))
            self.index += 1
        for call in response.tool_calls:
            block = {**_tool_use(call), "input": {}}
            events.append(
                _event("content_block_start", {"index": self.index, "content_block": block})
            )
            delta = {
                "type": "input_json_delta",
                "partial_json": json.dumps(_tool_use(call)["input"]),
            }
            events.append(_event("content_block_delta", {"index": self.index, "delta": delta}))
            events.append(_event("content_block_stop", {"index": self.index}))
            self.index += 1
        end = {"stop_reason": stop_reason(response), "stop_sequence": None}
        usage = usage_json(response)
        events.append(
            _event(
                "message_delta",
                {"delta": end, "usage": usage, "orkestra": orkestra_json(response, ignored)},
            )
        )
        events.append(_event("message_stop", {}))
        return events

    def cut(self, error: OrkestraError, routing: RoutingDecision | None) -> list[bytes]:
        """Anthropic's mid-stream ``error`` event (the SDK raises), with what was billed."""
        failure = {"error": _error_object(proxy_error(error))}
        return [_event("error", {**failure, "orkestra": cut_report(error, routing)})]


def _error_object(error: ProxyError) -> dict[str, str]:
    kind = _ERROR_TYPES.get(
        error.status, "api_error" if error.status >= 500 else "invalid_request_error"
    )
    if error.code == "insufficient_quota":
        kind = "billing_error" if error.status == 402 else "rate_limit_error"
    return {"type": kind, "message": error.body()["error"]["message"] or ""}


class MessagesWire:
    """Anthropic's Messages API: ``POST /v1/messages``."""

    name = "messages"

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        """``x-api-key`` (SDK 1.x, curl, Claude Code) or ``Authorization: Bearer`` (SDK 2.x)."""
        key = headers.get("x-api-key")
        if key is not None and not headers.get("authorization"):
            return f"Bearer {key}"
        return headers.get("authorization")

    def parse(self, raw: bytes) -> ChatParams:
        return parse_json(raw, parse_messages_request)

    def error_body(self, error: ProxyError) -> bytes:
        return dumps({"type": "error", "error": _error_object(error)})

    def answer(
        self,
        response: Response,
        *,
        request_id: str,
        created: int,
        params: ChatParams,
        ignored: Sequence[str],
    ) -> dict[str, Any]:
        return message_json(response, request_id=request_id, ignored=ignored)

    def stream_format(
        self, *, request_id: str, created: int, model: str, params: ChatParams
    ) -> _MessagesStream:
        return _MessagesStream(request_id, model)


MESSAGES = MessagesWire()
