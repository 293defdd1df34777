"""The real OpenAI API's checks of a Chat Completions request's tool turns, tool
declarations, ``tool_choice`` and ``response_format`` (strict schemas included), each answering
with the error body OpenAI sends (status 400, type ``invalid_request_error``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ._common import HttpReply, JSONObject, json_reply, text_of

__all__ = [
    "check_format",
    "check_sampling",
    "check_tool_choice",
    "check_tools",
    "check_turns",
    "openai_error",
]


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> HttpReply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_reply(status, body, headers)


_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_PART_TYPES = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
}


def _supported(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + (", and " if len(quoted) > 2 else " and ") + quoted[-1]


def _invalid_value(param: str, value: object, supported: tuple[str, ...]) -> HttpReply:
    message = f"Invalid value: '{value}'. Supported values are: {_supported(supported)}."
    return openai_error(400, message, param=param, code="invalid_value")


def _missing(param: str) -> HttpReply:
    return openai_error(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _bad_name(param: str, name: str) -> HttpReply | None:
    if len(name) > 64:
        return openai_error(
            400,
            f"Invalid '{param}': string too long. Expected a string with maximum length 64, but"
            f" got a string with length {len(name)} instead.",
            param=param,
            code="string_above_max_length",
        )
    if not _NAME.fullmatch(name):
        return openai_error(
            400,
            f"Invalid '{param}': string does not match pattern. Expected a string that matches"
            " the pattern '^[a-zA-Z0-9_-]+$'.",
            param=param,
            code="invalid_value",
        )
    return None


def _check_parts(index: int, role: str, content: object) -> HttpReply | None:
    """Content parts the role may carry (images only in user turns); image URLs well-formed."""
    if not isinstance(content, list):
        return None
    allowed = _PART_TYPES.get(role, ("text",))
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind not in allowed:
            return _invalid_value(f"messages[{index}].content[{j}].type", kind, allowed)
        if kind != "image_url":
            continue
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        param = f"messages[{index}].content[{j}].image_url.url"
        if not isinstance(url, str):
            return _missing(param)
        if url.startswith("data:"):
            media_type = url[5:].partition(";")[0].partition(",")[0]
            if not media_type.startswith("image/"):
                return openai_error(
                    400,
                    f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME"
                    " type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got"
                    f" unsupported MIME type '{media_type}'.",
                    param=param,
                    code="invalid_value",
                )
        elif not url.startswith(("http://", "https://")):
            return openai_error(
                400,
                f"Invalid '{param}'. Expected a valid URL, but got a value with an invalid format.",
                param=param,
                code="invalid_value",
            )
    return None


def _unanswered(index: int, ids: list[str]) -> HttpReply:
    return openai_error(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to"
        " each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids),
        param=f"messages.[{index}].role",
    )


def check_turns(messages: list[Any]) -> HttpReply | None:  # noqa: PLR0911
    """Tool results answer the calls of the assistant turn just before them, every one of them."""
    pending: list[str] = []  # call ids of the last assistant turn not answered yet
    calls_at: int | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        problem = _check_parts(i, str(role), message.get("content"))
        if problem is not None:
            return problem
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                return openai_error(
                    400,
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a"
                    " 'tool_call_id'.",
                    param=f"messages.[{i}].tool_call_id",
                )
            if calls_at is None:
                return openai_error(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a"
                    " preceeding message with 'tool_calls'.",  # sic: the API's own spelling
                    param=f"messages.[{i}].role",
                )
            if call_id not in pending:
                return openai_error(
                    400,
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in"
                    " 'tool_calls' of previous message.",
                    param=f"messages.[{i}].tool_call_id",
                )
            pending.remove(call_id)
            continue
        if pending and calls_at is not None:
            return _unanswered(calls_at, pending)
        calls = message.get("tool_calls") if role == "assistant" else None
        if isinstance(calls, list) and calls:
            pending = [str(c.get("id")) for c in calls if isinstance(c, dict)]
            calls_at = i
        else:
            calls_at = None
    if pending and calls_at is not None:
        return _unanswered(calls_at, pending)
    return None


def _strict_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """What strict mode rejects: an object schema that allows extra keys or leaves one optional."""
    if not isinstance(schema, Mapping):
        return None
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={context!r}, 'additionalProperties' is required to be supplied and"
                " to be false."
            )
        properties = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [k for k in properties if k not in required]
        if missing:
            return (
                f"In context={context!r}, 'required' is required to be supplied and to be an"
                f" array including every key in properties. Missing '{missing[0]}'."
            )
        for key, sub in properties.items():
            problem = _strict_problem(sub, (*context, "properties", key))
            if problem:
                return problem
    if "items" in schema:
        return _strict_problem(schema["items"], (*context, "items"))
    return None


def _schema_problem(schema: Any, *, strict: bool) -> str | None:
    """Why a tool's or a response format's schema is refused (its top level must be an object)."""
    if not isinstance(schema, Mapping):
        return f"{json.dumps(schema)} is not of type 'object', 'boolean'."
    if schema and schema.get("type") != "object":
        return (
            "schema must be a JSON Schema of 'type: \"object\"', got"
            f" 'type: \"{schema.get('type')}\"'."
        )
    return _strict_problem(schema) if strict else None


def check_tools(tools: object) -> HttpReply | None:  # noqa: PLR0911
    if tools is None:
        return None
    if not isinstance(tools, list):
        return openai_error(
            400,
            f"Invalid type for 'tools': expected an array, but got {type(tools).__name__} instead.",
            param="tools",
            code="invalid_type",
        )
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            continue
        if tool.get("type") not in ("function", "custom"):
            return _invalid_value(f"tools[{i}].type", tool.get("type"), ("function", "custom"))
        if tool.get("type") == "custom":
            continue
        function = tool.get("function")
        if not isinstance(function, dict):
            return _missing(f"tools[{i}].function")
        name = function.get("name")
        if not isinstance(name, str):
            return _missing(f"tools[{i}].function.name")
        problem = _bad_name(f"tools[{i}].function.name", name)
        if problem is not None:
            return problem
        if "parameters" in function:
            reason = _schema_problem(function["parameters"], strict=function.get("strict") is True)
            if reason is not None:
                return openai_error(
                    400,
                    f"Invalid schema for function '{name}': {reason}",
                    param=f"tools[{i}].function.parameters",
                    code="invalid_function_parameters",
                )
    return None


def _function_names(body: JSONObject) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def check_tool_choice(body: JSONObject) -> HttpReply | None:
    choice = body.get("tool_choice")
    if choice is None:
        return None
    modes = ("none", "auto", "required")
    if isinstance(choice, str) and choice not in modes:
        return _invalid_value("tool_choice", choice, modes)
    if not body.get("tools") and choice != "none":
        return openai_error(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are"
            " specified.",
            param="tool_choice",
        )
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            return _missing("tool_choice.function.name")
        if name not in _function_names(body):
            return openai_error(
                400, "Tool choice 'function' not found in 'tools' parameter.", param="tool_choice"
            )
    return None


def check_format(rf: object, messages: list[Any]) -> HttpReply | None:  # noqa: PLR0911
    """``response_format``: a known type; JSON mode needs the word "json" in the messages; a
    schema needs a valid name and an object at its top (strict: closed, every key required)."""
    if rf is None:
        return None
    kinds = ("text", "json_object", "json_schema")
    kind = rf.get("type") if isinstance(rf, dict) else None
    if not isinstance(rf, dict) or kind not in kinds:
        return _invalid_value("response_format.type", kind, kinds)
    if kind == "json_object":
        texts = (text_of(m.get("content")) for m in messages if isinstance(m, dict))
        if not any("json" in t.lower() for t in texts):
            return openai_error(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format'"
                " of type 'json_object'.",
                param="messages",
            )
    if kind != "json_schema":
        return None
    spec = rf.get("json_schema")
    if not isinstance(spec, dict):
        return _missing("response_format.json_schema")
    name = spec.get("name")
    if not isinstance(name, str):
        return _missing("response_format.json_schema.name")
    problem = _bad_name("response_format.json_schema.name", name)
    if problem is not None:
        return problem
    reason = _schema_problem(spec.get("schema", {}), strict=spec.get("strict") is True)
    if reason is None:
        return None
    return openai_error(
        400,
        f"Invalid schema for response_format '{name}': {reason}",
        param="response_format",
        code="invalid_json_schema",
    )


# What OpenAI's reasoning models (o-series, gpt-5) refuse, at any value.
REASONING_REFUSES = (
    "stop",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
)
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
_RANGES = {"top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}


def _unsupported(param: str) -> HttpReply:
    return openai_error(
        400,
        f"Unsupported parameter: '{param}' is not supported with this model.",
        param=param,
        code="unsupported_parameter",
    )


def _wrong_type(param: str, expected: str, value: object) -> HttpReply:
    return openai_error(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {type(value).__name__} instead.",
        param=param,
        code="invalid_type",
    )


def _out_of_range(param: str, value: float, low: float, high: float, kind: str) -> HttpReply:
    above = value > high
    side = "above maximum" if above else "below minimum"
    bound = f"<= {high}" if above else f">= {low}"
    return openai_error(
        400,
        f"Invalid '{param}': {kind} {side} value. Expected a value {bound}, but got {value}"
        " instead.",
        param=param,
        code=f"{kind}_{'above_max' if above else 'below_min'}_value",
    )


def check_sampling(body: JSONObject, *, reasoning: bool) -> HttpReply | None:  # noqa: PLR0911, PLR0912 (one return per API rule)
    """``stop``, ``top_p``, the penalties, ``seed``, ``n``, ``reasoning_effort`` and
    ``parallel_tool_calls``: their types and ranges, and what a model refuses (reasoning
    models: sampling controls and ``stop``; the others: ``reasoning_effort``)."""
    if reasoning:
        for param in REASONING_REFUSES:
            if body.get(param) is not None:
                return _unsupported(param)
    elif body.get("reasoning_effort") is not None:
        return _unsupported("reasoning_effort")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            return _wrong_type("stop", "a string or an array of strings", stop)
        if len(stop) > 4:
            return openai_error(
                400,
                "Invalid 'stop': array too long. Expected an array with maximum length 4, but"
                f" got an array with length {len(stop)} instead.",
                param="stop",
                code="array_above_max_length",
            )
    for param, (low, high) in _RANGES.items():
        value = body.get(param)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _wrong_type(param, "a decimal", value)
        if not low <= value <= high:
            return _out_of_range(param, value, low, high, "decimal")
    for param, low, high in (("seed", -(2**63), 2**63 - 1), ("n", 1, 128)):
        value = body.get(param)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return _wrong_type(param, "an integer", value)
        if not low <= value <= high:
            return _out_of_range(param, value, low, high, "integer")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        return _invalid_value("reasoning_effort", effort, REASONING_EFFORTS)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            return _wrong_type("parallel_tool_calls", "a boolean", parallel)
        if not body.get("tools"):
            return openai_error(
                400,
                "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed"
                " when 'tools' are specified.",
                param="parallel_tool_calls",
            )
    return None
