"""The Responses API's request (``POST /v1/responses``) read into the library's vocabulary:
``input`` items (messages with text and image parts, function calls and their outputs),
``instructions``, function ``tools``, ``tool_choice``, ``text.format``, ``reasoning.effort``,
the sampling fields; what the proxy cannot do (stored responses, built-in tools) is a 400 that
says so. The answers are :mod:`orkestra.server.responses_api`'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orkestra import (
    ForcedTool,
    Image,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
)
from orkestra.server.call_ids import parse_call_id
from orkestra.server.errors import bad_request, unsupported
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
    unknown,
    wrong_type,
)
from orkestra.server.params import parse_effort, parse_number
from orkestra.server.request import ChatParams

__all__ = ["parse_responses_request"]

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
    out: list[Tool] = []
    for i, raw in enumerate(tools_array(value)):
        where = f"tools[{i}]"
        tool = object_field(where, raw)
        kind = tool.get("type")
        if kind != "function":
            raise unsupported(f"{where}.type", f"{kind!r} tools (only function tools)")
        only_known(
            where, tool, frozenset({"type", "name", "description", "parameters", "strict"}), "field"
        )
        name = name_field(f"{where}.name", tool.get("name"))
        check_unique_tool(name, out)
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
