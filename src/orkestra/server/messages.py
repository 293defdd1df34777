"""The ``messages`` of a Chat Completions request, checked and turned into the library's
:class:`~orkestra.providers.base.Message` turns: text and image content parts, an assistant's
tool calls (their ids split into the provider's id and signature: :mod:`.call_ids`) and the
tool results that answer them, in OpenAI's order."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from orkestra import Image, Message, ToolCall
from orkestra.server.call_ids import parse_call_id
from orkestra.server.errors import bad_request, unsupported
from orkestra.server.fields import (
    invalid,
    kind_of,
    missing,
    name_field,
    object_field,
    only_known,
    text_field,
    wrong_type,
)

__all__ = ["MAX_MESSAGES", "parse_messages"]

MAX_MESSAGES = 10_000

Role = Literal["system", "user", "assistant", "tool"]
_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_MESSAGE_FIELDS = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "refusal", "tool_calls", "function_call", "audio"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
}
_ASSISTANT_EMPTY_FIELDS = frozenset({"refusal", "function_call", "audio"})
_IMAGE_DETAILS = ("auto", "low", "high")


class _Turns:
    """The tool calls a conversation has made, and those still waiting for their result:
    OpenAI's rule is that an assistant turn's calls are answered by the tool turns right
    after it, one per call."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.waiting: dict[str, str] = {}  # wire id -> function name
        self.asked_at = -1

    def check_answered(self) -> None:
        if self.waiting:
            raise invalid(
                f"messages[{self.asked_at}].tool_calls",
                "an assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(self.waiting)}",
            )


def parse_messages(value: object, ignored: list[str]) -> tuple[Message, ...]:
    if value is None:
        raise bad_request("you must provide messages", "messages", "missing_required")
    if not isinstance(value, list):
        raise wrong_type("messages", "an array", value)
    if not value:
        raise invalid("messages", "empty array. Expected an array with minimum length 1.")
    if len(value) > MAX_MESSAGES:
        raise invalid("messages", f"more than {MAX_MESSAGES} messages.")
    turns = _Turns()
    out = tuple(_message(i, m, turns, ignored) for i, m in enumerate(value))
    turns.check_answered()
    if not any(m.role == "user" for m in out):
        raise invalid("messages", "there is no user message: orkestra routes on the last one.")
    return out


def _message(index: int, value: object, turns: _Turns, ignored: list[str]) -> Message:
    where = f"messages[{index}]"
    if not isinstance(value, dict):
        raise wrong_type(where, "an object", value)
    role = value.get("role")
    if not isinstance(role, str):
        raise wrong_type(f"{where}.role", "a string", role)
    if role == "function":
        raise unsupported(f"{where}.role", "function messages (deprecated; use tool messages)")
    if role not in _ROLES:
        raise invalid(
            f"{where}.role",
            f"{role!r}; supported: 'system', 'developer', 'user', 'assistant', 'tool'.",
        )
    kind = _ROLES[role]
    for name in value:
        if name not in _MESSAGE_FIELDS[kind]:
            if name == "name":
                raise unsupported(f"{where}.name", "participant names in messages")
            raise bad_request(
                f"Unrecognized field in a message: {name}", f"{where}.{name}", "unknown_parameter"
            )
    if kind == "tool":
        return _tool_result(where, value, turns)
    turns.check_answered()
    if kind == "assistant":
        return _assistant(index, value, turns)
    text, images = _content(f"{where}.content", value.get("content"), kind, ignored)
    return Message(kind, text, images=images)


def _assistant(index: int, value: Mapping[str, Any], turns: _Turns) -> Message:
    where = f"messages[{index}]"
    for name in _ASSISTANT_EMPTY_FIELDS:
        field_value = value.get(name)
        if field_value is not None and field_value != []:
            raise unsupported(f"{where}.{name}", f"assistant {name}")
    calls = _tool_calls(f"{where}.tool_calls", value.get("tool_calls"))
    content = value.get("content")
    if content is None and calls:
        text = ""
    else:
        text, _ = _content(f"{where}.content", content, "assistant", [])
    for wire, call in calls:
        turns.names[wire] = call.name
        turns.waiting[wire] = call.name
    turns.asked_at = index
    return Message("assistant", text, tool_calls=tuple(call for _, call in calls))


def _tool_calls(param: str, value: object) -> list[tuple[str, ToolCall]]:
    """An assistant turn's calls as the library's :class:`ToolCall`, each with the id the
    client saw (signature included) and the provider's own id and signature split out."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise wrong_type(param, "an array", value)
    out: list[tuple[str, ToolCall]] = []
    for i, item in enumerate(value):
        where = f"{param}[{i}]"
        call = object_field(where, item)
        only_known(where, call, frozenset({"id", "type", "function"}), "tool call field")
        if call.get("type", "function") != "function":
            kind = call["type"]
            if isinstance(kind, str):
                raise unsupported(f"{where}.type", f"{kind!r} tool calls (only function calls)")
            raise wrong_type(f"{where}.type", "a string", kind)
        if call.get("id") is None:
            raise missing(f"{where}.id")
        wire = text_field(f"{where}.id", call["id"])
        if not wire:
            raise invalid(f"{where}.id", "a tool call id may not be empty.")
        if any(seen == wire for seen, _ in out):
            raise invalid(f"{where}.id", f"two tool calls have the id {wire!r}.")
        if "function" not in call:
            raise missing(f"{where}.function")
        function = object_field(f"{where}.function", call["function"])
        only_known(
            f"{where}.function", function, frozenset({"name", "arguments"}), "function field"
        )
        name = name_field(f"{where}.function.name", function.get("name"))
        arguments = function.get("arguments")
        if arguments is None:
            raise missing(f"{where}.function.arguments")
        arguments = text_field(f"{where}.function.arguments", arguments)
        _check_arguments(f"{where}.function.arguments", arguments)
        call_id, signature = parse_call_id(wire)
        if not call_id:
            raise invalid(f"{where}.id", f"{wire!r} has no id before its signature.")
        out.append((wire, ToolCall(call_id, name, arguments, signature)))
    return out


def _check_arguments(param: str, arguments: str) -> None:
    """A call's arguments go back to the provider as an object (Anthropic's ``input``,
    Gemini's ``args``): text that is not one would fail there, after the network."""
    if not arguments.strip():
        return
    try:
        parsed = json.loads(arguments)
    except ValueError:
        raise invalid(param, "the arguments are not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise invalid(param, f"the arguments must be a JSON object, not {kind_of(parsed)}.")


def _tool_result(where: str, value: Mapping[str, Any], turns: _Turns) -> Message:
    raw = value.get("tool_call_id")
    if raw is None:
        raise missing(f"{where}.tool_call_id")
    wire = text_field(f"{where}.tool_call_id", raw)
    name = turns.waiting.pop(wire, None)
    if name is None:
        why = (
            f"the call {wire!r} was already answered."
            if wire in turns.names
            else "messages with role 'tool' must be a response to a preceding message with "
            f"'tool_calls'; no such call has the id {wire!r}."
        )
        raise invalid(f"{where}.tool_call_id", why)
    text, _ = _content(f"{where}.content", value.get("content"), "tool", [])
    call_id, _ = parse_call_id(wire)
    return Message("tool", text, tool_call_id=call_id, name=name)


def _content(
    param: str, value: object, role: str, ignored: list[str]
) -> tuple[str, tuple[Image, ...]]:
    """A turn's text (its text parts joined) and, in a user turn, its images."""
    if value is None:
        raise bad_request(f"Missing '{param}': every message needs text content.", param)
    if isinstance(value, str):
        return text_field(param, value), ()
    if not isinstance(value, list):
        raise wrong_type(param, "a string or an array of content parts", value)
    if not value:
        raise invalid(param, "empty array of content parts.")
    texts: list[str] = []
    images: list[Image] = []
    for i, part in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind == "text":
            only_known(where, part, frozenset({"type", "text"}), "field in a content part")
            texts.append(text_field(f"{where}.text", part.get("text")))
        elif kind == "image_url" and role == "user":
            only_known(where, part, frozenset({"type", "image_url"}), "field in a content part")
            images.append(_image(f"{where}.image_url", part.get("image_url"), ignored))
        elif isinstance(kind, str):
            what = "images outside user messages" if kind == "image_url" else f"{kind!r} content"
            raise unsupported(f"{where}.type", f"{what} (text, and images in user messages)")
        else:
            raise wrong_type(f"{where}.type", "a string", kind)
    return "".join(texts), tuple(images)


def _image(param: str, value: object, ignored: list[str]) -> Image:
    spec = object_field(param, value)
    only_known(param, spec, frozenset({"url", "detail"}), "image_url field")
    if spec.get("url") is None:
        raise missing(f"{param}.url")
    image = Image(text_field(f"{param}.url", spec["url"]))
    try:
        image.validate()
    except ValueError as error:
        raise invalid(f"{param}.url", f"{error}.") from None
    detail = spec.get("detail")
    if detail is not None:
        if detail not in _IMAGE_DETAILS:
            raise invalid(f"{param}.detail", f"{detail!r}; supported: 'auto', 'low', 'high'.")
        if detail != "auto":
            ignored.append("image_url.detail")
    return image
