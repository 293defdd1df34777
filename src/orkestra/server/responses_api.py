"""OpenAI's Responses API, ``POST /v1/responses``: what openai-agents, LangChain's
``use_responses_api`` and Codex speak.

A request's ``input`` (a string, or items: messages with ``input_text``/``input_image`` parts,
``function_call`` and ``function_call_output`` items), ``instructions``, function ``tools``,
``tool_choice``, ``text.format`` (``json_schema``/``json_object``), ``reasoning.effort``,
``max_output_tokens``, ``temperature``, ``top_p``, ``parallel_tool_calls`` and ``stream``
become the library's vocabulary, whatever the ``model`` names. The answer is a ``response``
object (a ``message`` item with ``output_text``, a ``function_call`` item per call, usage with
``input_tokens_details.cached_tokens`` and ``output_tokens_details.reasoning_tokens``) or its
stream of events (``event:`` + ``data:``, a ``sequence_number`` on each, no ``[DONE]``).
Errors are OpenAI's.

The proxy keeps no responses: ``previous_response_id``, ``conversation`` and stored items
(``item_reference``) are a 400 — send the whole conversation in ``input``, as openai-agents
and LangChain do by default. ``store`` is answered ``false``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from orkestra import (
    ForcedTool,
    Image,
    Message,
    Response,
    ResponseFormat,
    RoutingDecision,
    Tool,
    ToolCall,
)
from orkestra.errors import OrkestraError
from orkestra.server.body import parse_json
from orkestra.server.call_ids import parse_call_id, wire_call_id
from orkestra.server.errors import ProxyError, bad_request, error_json, unsupported
from orkestra.server.fields import (
    invalid,
    is_int,
    missing,
    name_field,
    object_field,
    only_known,
    text_field,
    unknown,
    wrong_type,
)
from orkestra.server.params import parse_effort, parse_number
from orkestra.server.request import MAX_TOOLS, ChatParams
from orkestra.server.response import cut_report, dumps, orkestra_json, proxy_error

__all__ = ["RESPONSES", "ResponsesWire", "parse_responses_request", "response_json"]

# Accepted at these values (they ask for nothing orkestra would have to do).
_NEUTRAL: dict[str, Any] = {
    "truncation": ("disabled", "auto"),
    "service_tier": ("auto", "default"),
    "background": (False,),
}
_REFUSED = {
    "previous_response_id": "previous_response_id (orkestra keeps no responses: send the "
    "whole conversation in input)",
    "conversation": "conversation (orkestra keeps no conversations: send them in input)",
    "prompt": "prompt templates",
}
_HANDLED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "stream",
        "stream_options",
        "store",
        "metadata",
        "include",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "top_logprobs",
        "max_tool_calls",
        *_NEUTRAL,
        *_REFUSED,
    }
)
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


class _Turns:
    """The conversation being built, and the calls waiting for their output."""

    def __init__(self) -> None:
        self.out: list[Message] = []
        self.names: dict[str, str] = {}  # call_id (as sent) -> function name
        self.ignored: list[str] = []

    def add_call(self, call: ToolCall, wire: str) -> None:
        self.names[wire] = call.name
        last = self.out[-1] if self.out else None
        if last is not None and last.role == "assistant":
            self.out[-1] = Message("assistant", last.content, tool_calls=(*last.tool_calls, call))
        else:
            self.out.append(Message("assistant", "", tool_calls=(call,)))


def parse_responses_request(body: object) -> ChatParams:  # noqa: PLR0912, PLR0915 (one branch per field)
    """Check a ``/v1/responses`` body; a :class:`ProxyError` (400) names what is wrong."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", None, "invalid_body")
    for name, value in body.items():
        if value is None:
            continue
        if name not in _HANDLED:
            raise unknown(name)
        if name in _REFUSED:
            raise unsupported(name, _REFUSED[name])
        if name in _NEUTRAL and value not in _NEUTRAL[name]:
            raise unsupported(name, f"{name}={value!r}")
    if body.get("model") is None:
        raise missing("model")
    model = text_field("model", body["model"])
    if body.get("input") is None:
        raise missing("input")
    turns = _Turns()
    if body.get("instructions") is not None:
        turns.out.append(Message("system", text_field("instructions", body["instructions"])))
    _input(body["input"], turns)
    if not any(m.role == "user" for m in turns.out):
        raise invalid("input", "there is no user message: orkestra routes on the last one.")
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (not is_int(max_tokens) or max_tokens < 1):
        raise invalid("max_output_tokens", "it must be an integer ≥ 1.")
    temperature = body.get("temperature")
    if temperature is not None:
        temperature = parse_number("temperature", temperature, 0, 2)
    params: dict[str, Any] = {}
    if body.get("top_p") is not None:
        params["top_p"] = parse_number("top_p", body["top_p"], 0, 1)
    tools = _tools(body.get("tools"), turns.ignored)
    choice = _tool_choice(body.get("tool_choice"), tools)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise wrong_type("parallel_tool_calls", "a boolean", parallel)
        if tools and not parallel:
            params["parallel_tool_calls"] = False
    reasoning = body.get("reasoning")
    if reasoning is not None:
        reasoning = object_field("reasoning", reasoning)
        only_known(
            "reasoning", reasoning, frozenset({"effort", "summary", "generate_summary"}), "field"
        )
        if reasoning.get("effort") is not None:
            params["reasoning_effort"] = parse_effort("reasoning.effort", reasoning["effort"])
        if reasoning.get("summary") is not None or reasoning.get("generate_summary") is not None:
            turns.ignored.append("reasoning.summary")
    response_format = _text(body.get("text"), turns.ignored)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise wrong_type("stream", "a boolean", stream)
    if body.get("store") is True:
        turns.ignored.append("store")
    if body.get("include"):
        if not isinstance(body["include"], list):
            raise wrong_type("include", "an array", body["include"])
        turns.ignored.append("include")
    unserved = []
    if body.get("top_logprobs"):
        unserved.append("top_logprobs")
    if body.get("metadata") is not None:
        object_field("metadata", body["metadata"])
    user = body.get("safety_identifier") or body.get("user")
    session = body.get("prompt_cache_key")
    if session is not None and not text_field("prompt_cache_key", session).strip():
        raise invalid("prompt_cache_key", "it must not be empty.")
    return ChatParams(
        model=model,
        messages=tuple(turns.out),
        max_tokens=max_tokens,
        temperature=temperature,
        stream=bool(stream),
        user=None if user is None else text_field("user", user),
        tools=tools,
        tool_choice=choice,
        response_format=response_format,
        session_id=session,
        params=params,
        ignored=tuple(dict.fromkeys([*turns.ignored, *unserved])),
        unserved=tuple(unserved),
    )


def _input(value: object, turns: _Turns) -> None:
    if isinstance(value, str):
        turns.out.append(Message("user", text_field("input", value)))
        return
    if not isinstance(value, list):
        raise wrong_type("input", "a string or an array of items", value)
    if not value:
        raise invalid("input", "empty array.")
    for i, raw in enumerate(value):
        where = f"input[{i}]"
        item = object_field(where, raw)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            _message(where, item, turns)
        elif kind == "function_call":
            wire = text_field(f"{where}.call_id", item.get("call_id"))
            name = name_field(f"{where}.name", item.get("name"))
            arguments = text_field(f"{where}.arguments", item.get("arguments", "{}"))
            call_id, signature = parse_call_id(wire)
            turns.add_call(ToolCall(call_id, name, arguments or "{}", signature), wire)
        elif kind == "function_call_output":
            wire = text_field(f"{where}.call_id", item.get("call_id"))
            called = turns.names.get(wire)
            if called is None:
                raise invalid(
                    f"{where}.call_id", f"no function_call item before it has the call_id {wire!r}."
                )
            output = _output_text(f"{where}.output", item.get("output"))
            turns.out.append(
                Message("tool", output, tool_call_id=parse_call_id(wire)[0], name=name)
            )
        elif kind == "reasoning":
            turns.ignored.append("input.reasoning")  # the model's own notes: not sent back
        elif isinstance(kind, str):
            raise unsupported(f"{where}.type", f"input items of type {kind!r}")
        else:
            raise missing(f"{where}.type")


def _output_text(param: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, raw in enumerate(value):
            part = object_field(f"{param}[{j}]", raw)
            if part.get("type") not in ("input_text", "output_text"):
                raise unsupported(f"{param}[{j}].type", "non-text function outputs")
            texts.append(text_field(f"{param}[{j}].text", part.get("text")))
        return "".join(texts)
    raise wrong_type(param, "a string or an array of text parts", value)


def _message(where: str, item: Mapping[str, Any], turns: _Turns) -> None:
    only_known(where, item, frozenset({"type", "role", "content", "id", "status"}), "item field")
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise invalid(f"{where}.role", "supported: 'user', 'system', 'developer', 'assistant'.")
    content = item.get("content")
    if content is None:
        raise missing(f"{where}.content")
    if isinstance(content, str):
        turns.out.append(Message(role, text_field(f"{where}.content", content)))  # type: ignore[arg-type]
        return
    if not isinstance(content, list):
        raise wrong_type(f"{where}.content", "a string or an array of parts", content)
    texts: list[str] = []
    images: list[Image] = []
    for j, raw in enumerate(content):
        at = f"{where}.content[{j}]"
        part = object_field(at, raw)
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            texts.append(text_field(f"{at}.text", part.get("text")))
        elif kind == "refusal":
            texts.append(text_field(f"{at}.refusal", part.get("refusal")))
        elif kind == "input_image" and role == "user":
            url = part.get("image_url")
            if url is None:
                raise unsupported(f"{at}.file_id", "images by file id (send image_url)")
            image = Image(text_field(f"{at}.image_url", url))
            try:
                image.validate()
            except ValueError as error:
                raise invalid(f"{at}.image_url", f"{error}.") from None
            if part.get("detail") not in (None, "auto"):
                turns.ignored.append("input_image.detail")
            images.append(image)
        else:
            raise unsupported(f"{at}.type", f"{kind!r} content in {role} messages")
    turns.out.append(Message(role, "".join(texts), images=tuple(images)))  # type: ignore[arg-type]


def _tools(value: object, ignored: list[str]) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise wrong_type("tools", "an array", value)
    if len(value) > MAX_TOOLS:
        raise invalid("tools", f"{len(value)} tools; at most {MAX_TOOLS} are allowed.")
    out: list[Tool] = []
    for i, raw in enumerate(value):
        where = f"tools[{i}]"
        tool = object_field(where, raw)
        kind = tool.get("type")
        if kind != "function":
            raise unsupported(f"{where}.type", f"{kind!r} tools (only function tools)")
        only_known(
            where, tool, frozenset({"type", "name", "description", "parameters", "strict"}), "field"
        )
        name = name_field(f"{where}.name", tool.get("name"))
        if any(t.name == name for t in out):
            raise invalid("tools", f"two tools are named {name!r}; tool names must be unique.")
        description = tool.get("description")
        if description is not None:
            description = text_field(f"{where}.description", description)
        if tool.get("strict"):
            ignored.append("tools.strict")
        parameters = tool.get("parameters")
        if parameters is None:
            out.append(Tool(name, description))
            continue
        parameters = object_field(f"{where}.parameters", parameters)
        if parameters.get("type", "object") != "object":
            raise invalid(f"{where}.parameters", "it must be a JSON Schema of type 'object'.")
        out.append(Tool(name, description, parameters))
    return tuple(out)


def _tool_choice(value: object, tools: Sequence[Tool]) -> str | ForcedTool | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise invalid("tool_choice", f"{value!r}; supported: 'auto', 'none', 'required'.")
        if value == "required" and not tools:
            raise invalid("tool_choice", "'required' needs tools.")
        return value if tools else None
    choice = object_field("tool_choice", value)
    if choice.get("type") != "function":
        raise unsupported("tool_choice.type", f"tool_choice of type {choice.get('type')!r}")
    name = name_field("tool_choice.name", choice.get("name"))
    if name not in {t.name for t in tools}:
        raise invalid("tool_choice.name", f"no tool named {name!r} is in 'tools'.")
    return ForcedTool(name)


def _text(value: object, ignored: list[str]) -> ResponseFormat | None:
    if value is None:
        return None
    text = object_field("text", value)
    only_known("text", text, frozenset({"format", "verbosity"}), "field")
    if text.get("verbosity") not in (None, "medium"):
        ignored.append("text.verbosity")
    if text.get("format") is None:
        return None
    fmt = object_field("text.format", text["format"])
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(schema=None)
    if kind != "json_schema":
        raise unsupported("text.format.type", f"text.format of type {kind!r}")
    only_known(
        "text.format", fmt, frozenset({"type", "name", "schema", "strict", "description"}), "field"
    )
    name = name_field("text.format.name", fmt.get("name"))
    if fmt.get("schema") is None:
        raise missing("text.format.schema")
    schema = object_field("text.format.schema", fmt["schema"])
    problem = ResponseFormat(name, schema).schema_problem()
    if problem is not None:
        raise invalid("text.format.schema", f"{problem}.")
    if fmt.get("description") is not None:
        ignored.append("text.format.description")
    return ResponseFormat(name, schema, bool(fmt.get("strict")))


# -- answers ---------------------------------------------------------------------------------


def _usage(response: Response) -> dict[str, Any]:
    usage = response.usage
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _message_item(request_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": f"msg_{request_id}",
        "status": status,
        "role": "assistant",
        "content": content if status != "in_progress" else [],
    }


def _call_item(request_id: str, index: int, call: ToolCall, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{request_id}_{index}",
        "call_id": wire_call_id(call),
        "name": call.name,
        "arguments": call.arguments if status == "completed" else "",
        "status": status,
    }


def _output(response: Response, request_id: str) -> list[dict[str, Any]]:
    status = "incomplete" if response.stop_reason == "length" else "completed"
    items = []
    if response.text or not response.tool_calls:
        items.append(_message_item(request_id, response.text, status))
    items += [
        _call_item(request_id, i, call, "completed") for i, call in enumerate(response.tool_calls)
    ]
    return items


def _tool_json(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
        "strict": False,
    }


def _skeleton(params: ChatParams, request_id: str, created: int, model: str) -> dict[str, Any]:
    """The ``response`` object's fields that do not depend on the answer."""
    choice = params.tool_choice
    fmt = params.response_format
    if fmt is None:
        text_format: dict[str, Any] = {"type": "text"}
    elif fmt.schema is None:
        text_format = {"type": "json_object"}
    else:
        text_format = {
            "type": "json_schema",
            "name": fmt.name,
            "schema": dict(fmt.schema),
            "strict": fmt.strict,
        }
    instructions = next((m.content for m in params.messages if m.role == "system"), None)
    return {
        "id": f"resp_{request_id}",
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": params.max_tokens,
        "metadata": {},
        "model": model,
        "output": [],
        "parallel_tool_calls": params.params.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": params.params.get("reasoning_effort"), "summary": None},
        "service_tier": "default",
        "store": False,
        "temperature": params.temperature,
        "text": {"format": text_format, "verbosity": "medium"},
        "tool_choice": (
            {"type": "function", "name": choice.name}
            if isinstance(choice, ForcedTool)
            else (choice or "auto")
        ),
        "tools": [_tool_json(t) for t in params.tools],
        "top_p": params.params.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": params.user,
    }


def response_json(
    response: Response,
    *,
    request_id: str,
    created: int,
    params: ChatParams,
    ignored: Sequence[str] = (),
) -> dict[str, Any]:
    """The finished ``response`` object (with the ``orkestra`` extension)."""
    body = _skeleton(params, request_id, created, response.model)
    incomplete = response.stop_reason == "length"
    body.update(
        status="incomplete" if incomplete else "completed",
        completed_at=created,
        incomplete_details={"reason": "max_output_tokens"} if incomplete else None,
        output=_output(response, request_id),
        usage=_usage(response),
        orkestra=orkestra_json(response, ignored),
    )
    return body


class _ResponsesStream:
    """A streamed ``response``: lifecycle events around a ``message`` item's text deltas, then
    a ``function_call`` item per call (its arguments in one delta), then the terminal event."""

    def __init__(self, request_id: str, created: int, model: str, params: ChatParams) -> None:
        self.request_id, self.created, self.params = request_id, created, params
        self.model = model
        self.sequence = itertools.count()
        self.written: list[str] = []
        self.text_open = False

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, **fields, "sequence_number": next(self.sequence)}
        return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"

    def _where(self) -> dict[str, Any]:
        return {"item_id": f"msg_{self.request_id}", "output_index": 0, "content_index": 0}

    def opening(self, routing: RoutingDecision, only_calls: bool) -> list[bytes]:
        self.model = routing.model
        started = _skeleton(self.params, self.request_id, self.created, self.model)
        events = [
            self._event("response.created", response=started),
            self._event("response.in_progress", response=started),
        ]
        if not only_calls:
            self.text_open = True
            item = _message_item(self.request_id, "", "in_progress")
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events += [
                self._event("response.output_item.added", output_index=0, item=item),
                self._event("response.content_part.added", **self._where(), part=part),
            ]
        return events

    def text(self, chunk: str) -> bytes:
        self.written.append(chunk)
        return self._event("response.output_text.delta", **self._where(), delta=chunk, logprobs=[])

    def closing(self, response: Response, ignored: Sequence[str]) -> list[bytes]:
        events: list[bytes] = []
        final = response_json(
            response,
            request_id=self.request_id,
            created=self.created,
            params=self.params,
            ignored=ignored,
        )
        index = 0
        if self.text_open:
            text = "".join(self.written)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            done = final["output"][0]
            events += [
                self._event("response.output_text.done", **self._where(), text=text, logprobs=[]),
                self._event("response.content_part.done", **self._where(), part=part),
                self._event("response.output_item.done", output_index=0, item=done),
            ]
            index = 1
        for i, call in enumerate(response.tool_calls):
            added = _call_item(self.request_id, i, call, "in_progress")
            done = _call_item(self.request_id, i, call, "completed")
            item_id = added["id"]
            events += [
                self._event("response.output_item.added", output_index=index, item=added),
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=call.arguments,
                ),
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    name=call.name,
                    arguments=call.arguments,
                ),
                self._event("response.output_item.done", output_index=index, item=done),
            ]
            index += 1
        events.append(self._event(f"response.{final['status']}", response=final))
        return events

    def cut(self, error: OrkestraError, routing: RoutingDecision | None) -> list[bytes]:
        """An ``error`` event (the openai client raises), with what was billed."""
        fields = proxy_error(error).body()["error"]
        report = cut_report(error, routing)
        return [self._event("error", **fields, orkestra=report)]


class ResponsesWire:
    """OpenAI's Responses API: ``POST /v1/responses``."""

    name = "responses"

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    def parse(self, raw: bytes) -> ChatParams:
        return parse_json(raw, parse_responses_request)

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
        return response_json(
            response, request_id=request_id, created=created, params=params, ignored=ignored
        )

    def stream_format(
        self, *, request_id: str, created: int, model: str, params: ChatParams
    ) -> _ResponsesStream:
        return _ResponsesStream(request_id, created, model, params)


RESPONSES = ResponsesWire()
