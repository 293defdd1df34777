"""OpenAI Chat Completions in and out: the request checked and translated, the answer built.

Every field a client may send has a rule: translated (``messages`` with tool calls, tool results
and images, ``tools``, ``tool_choice``, ``response_format``, ``max_tokens`` /
``max_completion_tokens``, ``temperature``, ``stream``, ``stream_options``), recorded (``user``,
``safety_identifier``), accepted only at its default (``n=1``, ``top_p=1``, ``stop=[]``,
``parallel_tool_calls=true``...), or refused with a 400 naming it (``seed``, ``logprobs``...).
Nothing is dropped silently: what is accepted but not honoured by any provider (a tool's
``strict``, an image's ``detail``) is named in ``x-orkestra-ignored-params``. A field OpenAI
does not define is refused as OpenAI refuses it.

Tool-call ids carry provider state: Gemini 3 needs each call's ``thoughtSignature`` back with
the next request, and OpenAI's wire has no field for it. So a call with a signature leaves the
proxy with the id ``"<id>~<signature>"`` (a signature is base64, which never contains ``~``),
and an id coming back is split at its last ``~`` (:func:`wire_call_id`, :func:`parse_call_id`).
An id that itself contains ``~`` leaves as ``"<id>~"`` so that it comes back unchanged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orkestra._types import Response, ToolCall, Usage
from orkestra.errors import CapabilityError, OrkestraError, StructuredOutputError
from orkestra.providers.base import Image, Message, Role
from orkestra.server.errors import ProxyError, bad_request, from_library_error, unsupported

__all__ = [
    "ChatParams",
    "ChunkFormatter",
    "completion_json",
    "dumps",
    "finish_reason",
    "orkestra_json",
    "parse_call_id",
    "parse_chat_request",
    "proxy_error",
    "usage_json",
    "wire_call_id",
]

MAX_MESSAGES = 10_000
MAX_TOOLS = 128  # OpenAI's limit
SIGNATURE_SEPARATOR = "~"


def dumps(value: Any) -> bytes:
    """Compact JSON; ASCII-escaped, so any text (even a lone surrogate) encodes."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


@dataclass(frozen=True)
class ChatParams:
    """A checked chat request, in the library's terms.

    ``tools``, ``tool_choice`` and ``response_format`` stay in OpenAI's form (the library's
    own input format), cleaned of what no provider takes; ``ignored`` names those fields.
    """

    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    response_format: Mapping[str, Any] | None = None
    session_id: str | None = None
    """``prompt_cache_key``: the conversation's sticky session (its model stays put, so the
    provider's prompt cache stays warm; see docs/conversations.md)."""
    ignored: tuple[str, ...] = field(default=())

    @property
    def prompt(self) -> str | None:
        """The text when the conversation is a single plain user turn."""
        if len(self.messages) == 1:
            only = self.messages[0]
            if only.role == "user" and not only.images:
                return only.content
        return None

    @property
    def last_user_text(self) -> str:
        return next(m.content for m in reversed(self.messages) if m.role == "user")

    def conversation(self) -> dict[str, Any]:
        """``prompt=`` for a single user turn, else ``messages=`` (the library's
        :class:`~orkestra.providers.base.Message` turns, tool-call signatures decoded)."""
        prompt = self.prompt
        if prompt is not None:
            return {"prompt": prompt}
        return {"messages": list(self.messages)}

    def options(self) -> dict[str, Any]:
        """``max_tokens``, ``temperature``, ``tools``, ``tool_choice`` and ``response_format``,
        when the client set them (so a plain request is a plain library call)."""
        out: dict[str, Any] = {}
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.tools:
            out["tools"] = [dict(t) for t in self.tools]
        if self.tool_choice is not None:
            out["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            out["response_format"] = dict(self.response_format)
        if self.session_id is not None:
            out["session_id"] = self.session_id
        return out


# -- tool-call ids ---------------------------------------------------------------------------


def wire_call_id(call: ToolCall) -> str:
    """The id a tool call leaves the proxy with: its own, plus its signature when it has one."""
    if call.signature is None and SIGNATURE_SEPARATOR not in call.id:
        return call.id
    return f"{call.id}{SIGNATURE_SEPARATOR}{call.signature or ''}"


def parse_call_id(wire: str) -> tuple[str, str | None]:
    """The provider's id and signature back from an id :func:`wire_call_id` made."""
    if SIGNATURE_SEPARATOR not in wire:
        return wire, None
    call_id, _, signature = wire.rpartition(SIGNATURE_SEPARATOR)
    return call_id, signature or None


# -- checking the request --------------------------------------------------------------------


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _kind(value: object) -> str:
    """How OpenAI's errors name a JSON value's type."""
    if value is None:
        return "null"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def _wrong_type(param: str, expected: str, value: object) -> ProxyError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        param,
        "invalid_type",
    )


def _invalid(param: str, message: str) -> ProxyError:
    return bad_request(f"Invalid value for '{param}': {message}", param, "invalid_value")


def _missing(param: str) -> ProxyError:
    return bad_request(f"Missing required parameter: '{param}'.", param, "missing_required")


def _unknown(param: str, what: str = "request argument") -> ProxyError:
    name = param.rpartition(".")[2]
    return bad_request(f"Unrecognized {what} supplied: {name}", param, "unknown_parameter")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(param: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(param, "the text is not valid Unicode (a lone surrogate).") from None
    return value


def _object(param: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    return value


def _only(param: str, value: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    """Refuse a field OpenAI does not define in this object (never dropped)."""
    for name in value:
        if name not in allowed:
            raise _unknown(f"{param}.{name}", what)


def _never(value: object) -> bool:
    return False


# Accepted at these values (they ask for nothing orkestra would have to do); refused otherwise.
_NEUTRAL: dict[str, tuple[Callable[[object], bool], str]] = {
    "functions": (lambda v: v == [], "functions (deprecated function calling; use tools)"),
    "function_call": (
        lambda v: v == "none",
        "function_call (deprecated function calling; use tool_choice)",
    ),
    "top_p": (lambda v: _is_number(v) and v == 1, "top_p other than 1"),
    "stop": (lambda v: v == [], "stop sequences"),
    "n": (lambda v: _is_int(v) and v == 1, "n other than 1 (several choices)"),
    "presence_penalty": (lambda v: _is_number(v) and v == 0, "presence_penalty"),
    "frequency_penalty": (lambda v: _is_number(v) and v == 0, "frequency_penalty"),
    "logit_bias": (lambda v: v == {}, "logit_bias"),
    "logprobs": (lambda v: v is False, "logprobs"),
    "top_logprobs": (lambda v: _is_int(v) and v == 0, "top_logprobs"),
    "seed": (_never, "seed"),
    "store": (lambda v: v is False, "store (stored completions)"),
    "metadata": (lambda v: v == {}, "metadata (stored completions)"),
    "service_tier": (lambda v: v in ("auto", "default"), "service_tier"),
    "modalities": (lambda v: v == ["text"], "modalities other than text"),
    "audio": (_never, "audio output"),
    "prediction": (_never, "predicted outputs"),
    "reasoning_effort": (_never, "reasoning_effort"),
    "verbosity": (_never, "verbosity"),
    "web_search_options": (_never, "web search"),
}

_HANDLED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "stream",
        "stream_options",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "prompt_cache_key",
    }
)


def parse_chat_request(body: object) -> ChatParams:
    """Check a ``/v1/chat/completions`` body; a :class:`ProxyError` (400) names what is wrong."""
    if not isinstance(body, dict):
        raise bad_request(
            f"The request body must be a JSON object, not {_kind(body)}.", None, "invalid_body"
        )
    for name, value in body.items():
        if name in _HANDLED or value is None:
            continue
        rule = _NEUTRAL.get(name)
        if rule is None:
            raise _unknown(name)
        neutral, what = rule
        if not neutral(value):
            raise unsupported(name, what)

    model = body.get("model")
    if model is None:
        raise bad_request("you must provide a model parameter", "model", "missing_required")
    model = _text("model", model)
    ignored: list[str] = []
    messages = _messages(body.get("messages"), ignored)

    max_tokens = _max_tokens(body)
    temperature = body.get("temperature")
    if temperature is not None:
        if not _is_number(temperature):
            raise _wrong_type("temperature", "a decimal", temperature)
        if not (math.isfinite(temperature) and 0 <= temperature <= 2):
            raise _invalid("temperature", f"{temperature!r} is not in [0, 2].")
        temperature = float(temperature)

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    include_usage = _stream_options(body.get("stream_options"), bool(stream))

    tools = _tools(body.get("tools"), ignored)
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    _parallel_tool_calls(body.get("parallel_tool_calls"), tools)
    response_format = _response_format(body.get("response_format"), ignored)

    user = _optional_text(body, "user")
    safety = _optional_text(body, "safety_identifier")
    session = _optional_text(body, "prompt_cache_key")
    if session is not None and not session.strip():
        raise _invalid("prompt_cache_key", "it must not be empty.")
    return ChatParams(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        stream=bool(stream),
        include_usage=include_usage,
        user=user if user is not None else safety,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        session_id=session,
        ignored=tuple(dict.fromkeys(ignored)),
    )


def _optional_text(body: Mapping[str, object], param: str) -> str | None:
    value = body.get(param)
    return None if value is None else _text(param, value)


def _max_tokens(body: Mapping[str, object]) -> int | None:
    found: dict[str, int] = {}
    for param in ("max_tokens", "max_completion_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if not _is_int(value):
            raise _wrong_type(param, "an integer", value)
        assert isinstance(value, int)
        if value < 1:
            raise _invalid(param, f"{value} is below the minimum of 1.")
        found[param] = value
    if len(set(found.values())) > 1:
        raise bad_request(
            "max_tokens and max_completion_tokens disagree; send one of them.",
            "max_completion_tokens",
            "invalid_value",
        )
    return next(iter(found.values()), None)


def _stream_options(value: object, stream: bool) -> bool:
    if value is None:
        return False
    if not isinstance(value, dict):
        raise _wrong_type("stream_options", "an object", value)
    if not stream:
        raise bad_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    include_usage = False
    for name, option in value.items():
        param = f"stream_options.{name}"
        if name == "include_usage":
            if option is not None and not isinstance(option, bool):
                raise _wrong_type(param, "a boolean", option)
            include_usage = bool(option)
        elif name == "include_obfuscation":
            if option is not None and not isinstance(option, bool):
                raise _wrong_type(param, "a boolean", option)
            # Padding against length side channels: orkestra adds none (only ever less).
        else:
            raise bad_request(f"Unrecognized stream option: {name}", param, "unknown_parameter")
    return include_usage


# -- tools and structured output -------------------------------------------------------------

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_FIELDS = frozenset({"type", "function"})
_FUNCTION_FIELDS = frozenset({"name", "description", "parameters", "strict"})


def _name(param: str, value: object) -> str:
    if value is None:
        raise _missing(param)
    name = _text(param, value)
    if not _NAME.match(name):
        raise _invalid(
            param, f"{name!r} does not match '^[a-zA-Z0-9_-]{{1,64}}$' (letters, digits, _ and -)."
        )
    return name


def _tools(value: object, ignored: list[str]) -> tuple[Mapping[str, Any], ...]:
    """Function tools, in OpenAI's form without ``strict`` (no provider is sent it)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type("tools", "an array", value)
    if len(value) > MAX_TOOLS:
        raise _invalid("tools", f"{len(value)} tools; at most {MAX_TOOLS} are allowed.")
    out: list[Mapping[str, Any]] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        function = _function(f"tools[{i}]", item, ignored)
        if function["name"] in names:
            raise _invalid(
                "tools", f"two tools are named {function['name']!r}; tool names must be unique."
            )
        names.add(function["name"])
        out.append({"type": "function", "function": function})
    return tuple(out)


def _function(where: str, item: object, ignored: list[str]) -> dict[str, Any]:
    """One function tool's ``function`` object, checked."""
    tool = _object(where, item)
    kind = tool.get("type")
    if kind is None:
        raise _missing(f"{where}.type")
    if kind != "function":
        if isinstance(kind, str):
            raise unsupported(f"{where}.type", f"{kind!r} tools (only function tools)")
        raise _wrong_type(f"{where}.type", "a string", kind)
    _only(where, tool, _TOOL_FIELDS, "tool field")
    if "function" not in tool:
        raise _missing(f"{where}.function")
    where = f"{where}.function"
    function = _object(where, tool["function"])
    _only(where, function, _FUNCTION_FIELDS, "function field")
    clean: dict[str, Any] = {"name": _name(f"{where}.name", function.get("name"))}
    description = function.get("description")
    if description is not None:
        clean["description"] = _text(f"{where}.description", description)
    parameters = function.get("parameters")
    if parameters is not None:
        parameters = _object(f"{where}.parameters", parameters)
        if parameters.get("type", "object") != "object":
            raise _invalid(
                f"{where}.parameters",
                "a function's parameters must be a JSON Schema of type 'object'.",
            )
        clean["parameters"] = parameters
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _wrong_type(f"{where}.strict", "a boolean", strict)
    if strict:
        ignored.append("tools.function.strict")
    return clean


def _tool_choice(
    value: object, tools: Sequence[Mapping[str, Any]]
) -> str | Mapping[str, Any] | None:
    """``"auto"``, ``"none"``, ``"required"`` or one named function; None when there are no
    tools and the choice asks for nothing."""
    if value is None:
        return None
    param = "tool_choice"
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise _invalid(param, f"{value!r}; supported: 'auto', 'none', 'required'.")
        if not tools:
            if value == "required":
                raise _invalid(param, "'tool_choice' is only allowed when 'tools' are specified.")
            return None  # "auto" or "none" with no tools: nothing to choose
        return value
    choice = _object(param, value)
    kind = choice.get("type")
    if kind != "function":
        if isinstance(kind, str):
            raise unsupported(f"{param}.type", f"tool_choice of type {kind!r}")
        raise _wrong_type(f"{param}.type", "a string", kind)
    _only(param, choice, _TOOL_FIELDS, "tool_choice field")
    if "function" not in choice:
        raise _missing(f"{param}.function")
    function = _object(f"{param}.function", choice["function"])
    _only(f"{param}.function", function, frozenset({"name"}), "tool_choice field")
    name = _name(f"{param}.function.name", function.get("name"))
    if not tools:
        raise _invalid(param, "'tool_choice' is only allowed when 'tools' are specified.")
    if name not in {t["function"]["name"] for t in tools}:
        raise _invalid(f"{param}.function.name", f"no tool named {name!r} is in 'tools'.")
    return {"type": "function", "function": {"name": name}}


def _parallel_tool_calls(value: object, tools: Sequence[Mapping[str, Any]]) -> None:
    """True (OpenAI's default) is what every provider does; false cannot be promised (Gemini
    has no such switch), so with tools it is refused rather than quietly broken."""
    if value is None:
        return
    if not isinstance(value, bool):
        raise _wrong_type("parallel_tool_calls", "a boolean", value)
    if not value and tools:
        raise unsupported("parallel_tool_calls", "parallel_tool_calls=false")


_JSON_SCHEMA_FIELDS = frozenset({"name", "description", "schema", "strict"})


def _response_format(value: object, ignored: list[str]) -> Mapping[str, Any] | None:
    """``json_object`` or ``json_schema`` in OpenAI's form (``text`` is the default: None)."""
    if value is None:
        return None
    param = "response_format"
    fmt = _object(param, value)
    kind = fmt.get("type")
    if kind is None:
        raise _missing(f"{param}.type")
    if not isinstance(kind, str):
        raise _wrong_type(f"{param}.type", "a string", kind)
    if kind in ("text", "json_object"):
        _only(param, fmt, frozenset({"type"}), "response_format field")
        return None if kind == "text" else {"type": "json_object"}
    if kind != "json_schema":
        raise unsupported(f"{param}.type", f"response_format of type {kind!r}")
    _only(param, fmt, frozenset({"type", "json_schema"}), "response_format field")
    if "json_schema" not in fmt:
        raise _missing(f"{param}.json_schema")
    spec = _object(f"{param}.json_schema", fmt["json_schema"])
    where = f"{param}.json_schema"
    _only(where, spec, _JSON_SCHEMA_FIELDS, "json_schema field")
    name = _name(f"{where}.name", spec.get("name"))
    if spec.get("description") is not None:
        _text(f"{where}.description", spec["description"])
        ignored.append(f"{where}.description")
    if "schema" not in spec or spec["schema"] is None:
        raise _missing(f"{where}.schema")
    schema = _object(f"{where}.schema", spec["schema"])
    _check_schema(f"{where}.schema", schema)
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _wrong_type(f"{where}.strict", "a boolean", strict)
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": bool(strict)},
    }


def _check_schema(param: str, schema: Mapping[str, Any]) -> None:
    """A schema the answer can be validated against, with an object at its top (what every
    provider's structured output takes)."""
    import jsonschema  # only requests with a schema pay for the import

    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except jsonschema.SchemaError as error:
        raise _invalid(param, f"not a valid JSON Schema: {error.message}") from None
    if schema.get("type") != "object":
        raise _invalid(param, "the schema's top level must be {'type': 'object', ...}.")


# -- messages --------------------------------------------------------------------------------

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
            raise _invalid(
                f"messages[{self.asked_at}].tool_calls",
                "an assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(self.waiting)}",
            )


def _messages(value: object, ignored: list[str]) -> tuple[Message, ...]:
    if value is None:
        raise bad_request("you must provide messages", "messages", "missing_required")
    if not isinstance(value, list):
        raise _wrong_type("messages", "an array", value)
    if not value:
        raise _invalid("messages", "empty array. Expected an array with minimum length 1.")
    if len(value) > MAX_MESSAGES:
        raise _invalid("messages", f"more than {MAX_MESSAGES} messages.")
    turns = _Turns()
    out = tuple(_message(i, m, turns, ignored) for i, m in enumerate(value))
    turns.check_answered()
    if not any(m.role == "user" for m in out):
        raise _invalid("messages", "there is no user message: orkestra routes on the last one.")
    return out


def _message(index: int, value: object, turns: _Turns, ignored: list[str]) -> Message:
    where = f"messages[{index}]"
    if not isinstance(value, dict):
        raise _wrong_type(where, "an object", value)
    role = value.get("role")
    if not isinstance(role, str):
        raise _wrong_type(f"{where}.role", "a string", role)
    if role == "function":
        raise unsupported(f"{where}.role", "function messages (deprecated; use tool messages)")
    if role not in _ROLES:
        raise _invalid(
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
        raise _wrong_type(param, "an array", value)
    out: list[tuple[str, ToolCall]] = []
    for i, item in enumerate(value):
        where = f"{param}[{i}]"
        call = _object(where, item)
        _only(where, call, frozenset({"id", "type", "function"}), "tool call field")
        if call.get("type", "function") != "function":
            kind = call["type"]
            if isinstance(kind, str):
                raise unsupported(f"{where}.type", f"{kind!r} tool calls (only function calls)")
            raise _wrong_type(f"{where}.type", "a string", kind)
        if call.get("id") is None:
            raise _missing(f"{where}.id")
        wire = _text(f"{where}.id", call["id"])
        if not wire:
            raise _invalid(f"{where}.id", "a tool call id may not be empty.")
        if any(seen == wire for seen, _ in out):
            raise _invalid(f"{where}.id", f"two tool calls have the id {wire!r}.")
        if "function" not in call:
            raise _missing(f"{where}.function")
        function = _object(f"{where}.function", call["function"])
        _only(f"{where}.function", function, frozenset({"name", "arguments"}), "function field")
        name = _name(f"{where}.function.name", function.get("name"))
        arguments = function.get("arguments")
        if arguments is None:
            raise _missing(f"{where}.function.arguments")
        arguments = _text(f"{where}.function.arguments", arguments)
        _check_arguments(f"{where}.function.arguments", arguments)
        call_id, signature = parse_call_id(wire)
        if not call_id:
            raise _invalid(f"{where}.id", f"{wire!r} has no id before its signature.")
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
        raise _invalid(param, "the arguments are not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise _invalid(param, f"the arguments must be a JSON object, not {_kind(parsed)}.")


def _tool_result(where: str, value: Mapping[str, Any], turns: _Turns) -> Message:
    raw = value.get("tool_call_id")
    if raw is None:
        raise _missing(f"{where}.tool_call_id")
    wire = _text(f"{where}.tool_call_id", raw)
    name = turns.waiting.pop(wire, None)
    if name is None:
        why = (
            f"the call {wire!r} was already answered."
            if wire in turns.names
            else "messages with role 'tool' must be a response to a preceding message with "
            f"'tool_calls'; no such call has the id {wire!r}."
        )
        raise _invalid(f"{where}.tool_call_id", why)
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
        return _text(param, value), ()
    if not isinstance(value, list):
        raise _wrong_type(param, "a string or an array of content parts", value)
    if not value:
        raise _invalid(param, "empty array of content parts.")
    texts: list[str] = []
    images: list[Image] = []
    for i, part in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise _wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind == "text":
            _only(where, part, frozenset({"type", "text"}), "field in a content part")
            texts.append(_text(f"{where}.text", part.get("text")))
        elif kind == "image_url" and role == "user":
            _only(where, part, frozenset({"type", "image_url"}), "field in a content part")
            images.append(_image(f"{where}.image_url", part.get("image_url"), ignored))
        elif isinstance(kind, str):
            what = "images outside user messages" if kind == "image_url" else f"{kind!r} content"
            raise unsupported(f"{where}.type", f"{what} (text, and images in user messages)")
        else:
            raise _wrong_type(f"{where}.type", "a string", kind)
    return "".join(texts), tuple(images)


def _image(param: str, value: object, ignored: list[str]) -> Image:
    spec = _object(param, value)
    _only(param, spec, frozenset({"url", "detail"}), "image_url field")
    if spec.get("url") is None:
        raise _missing(f"{param}.url")
    image = Image(_text(f"{param}.url", spec["url"]))
    try:
        image.validate()
    except ValueError as error:
        raise _invalid(f"{param}.url", f"{error}.") from None
    detail = spec.get("detail")
    if detail is not None:
        if detail not in _IMAGE_DETAILS:
            raise _invalid(f"{param}.detail", f"{detail!r}; supported: 'auto', 'low', 'high'.")
        if detail != "auto":
            ignored.append("image_url.detail")
    return image


# -- building the answer ---------------------------------------------------------------------

# Each provider's own finish reasons, as OpenAI names them (unknown ones: "stop").
_FINISH_REASONS = {
    # OpenAI
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    # Anthropic
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # Gemini (a call of a tool ends with STOP: the calls themselves say it)
    "STOP": "stop",
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


def finish_reason(native: str | None, *, tool_calls: bool = False) -> str:
    """OpenAI's ``finish_reason`` for a provider's own (``end_turn``, ``MAX_TOKENS``...).

    An answer with tool calls that otherwise ended normally is ``"tool_calls"`` (Gemini says
    ``STOP``); ``"tool_calls"`` without any call would send a client looking for none."""
    reason = "stop"
    if native is not None:
        reason = _FINISH_REASONS.get(native, _FINISH_REASONS.get(native.upper(), "stop"))
    if tool_calls and reason == "stop":
        return "tool_calls"
    if not tool_calls and reason == "tool_calls":
        return "stop"
    return reason


def response_finish(response: Response) -> str:
    return finish_reason(response.finish_reason, tool_calls=bool(response.tool_calls))


def tool_calls_json(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """The calls in OpenAI's form, each id carrying its signature (:func:`wire_call_id`)."""
    return [{**call.to_openai(), "id": wire_call_id(call)} for call in calls]


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def orkestra_json(response: Response, ignored: Sequence[str] = ()) -> dict[str, Any]:
    """The ``orkestra`` extension object: where the request went, what it cost and saved, and
    which parameters the answering model could not take (``ignored_params``)."""
    routing = response.routing
    return {
        "provider": response.provider,
        "model": response.model,
        "tier": routing.tier,
        "strategy": routing.strategy,
        "cost_usd": response.total_cost,
        "savings_usd": response.base_cost - response.total_cost,
        "base_model": response.base_model,
        "base_cost_usd": response.base_cost,
        "routing_ms": routing.latency_ms,
        "attempts": len(response.attempts) or 1,
        "reason": routing.reason,
        "ignored_params": list(ignored),
    }


def message_json(response: Response) -> dict[str, Any]:
    """The assistant message: ``content`` is null when the answer is only tool calls (as
    OpenAI sends it), and ``tool_calls`` is there only when there are some."""
    content: str | None = response.text
    if not content and response.tool_calls:
        content = None
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = tool_calls_json(response.tool_calls)
    return message


def completion_json(
    response: Response, *, request_id: str, created: int, ignored: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``chat.completion`` object for a finished call."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message_json(response),
                "logprobs": None,
                "finish_reason": response_finish(response),
            }
        ],
        "usage": usage_json(response.usage),
        "system_fingerprint": None,
        "orkestra": orkestra_json(response, ignored),
    }


DONE = b"data: [DONE]\n\n"


def sse(value: Any) -> bytes:
    return b"data: " + dumps(value) + b"\n\n"


class ChunkFormatter:
    """The ``chat.completion.chunk`` events of one streamed answer, as SSE ``data:`` lines."""

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool) -> None:
        self.request_id, self.created, self.model = request_id, created, model
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]], model: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model or self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _delta(self, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

    def role(self, content: str | None = "") -> bytes:
        """The first chunk (``content: null`` when the answer has no text: only tool calls)."""
        return sse(self._chunk([self._delta({"role": "assistant", "content": content})]))

    def text(self, text: str) -> bytes:
        return sse(self._chunk([self._delta({"content": text})]))

    def tool_calls(self, response: Response) -> list[bytes]:
        """One chunk per tool call, after the text and before the finish: ``index``, ``id``,
        ``type`` and the whole ``function`` (the library hands the calls over assembled)."""
        return [
            sse(self._chunk([self._delta({"tool_calls": [{"index": i, **call}]})]))
            for i, call in enumerate(tool_calls_json(response.tool_calls))
        ]

    def finish(self, response: Response, ignored: Sequence[str] = ()) -> bytes:
        chunk = self._chunk([self._delta({}, response_finish(response))], response.model)
        chunk["orkestra"] = orkestra_json(response, ignored)
        return sse(chunk)

    def usage(self, response: Response, ignored: Sequence[str] = ()) -> bytes:
        chunk = self._chunk([], response.model)
        chunk["usage"] = usage_json(response.usage)
        chunk["orkestra"] = orkestra_json(response, ignored)
        return sse(chunk)


# -- errors ----------------------------------------------------------------------------------

_NEED_PARAMS = {"tools": "tools", "vision": "messages", "json": "response_format"}


class InvalidOutputError(ProxyError):
    """A ``response_format`` answer that did not validate: a 502 (the model, not the client,
    got it wrong), with the raw answer and what it cost in an ``orkestra`` object beside the
    error, since the call was made and billed."""

    def __init__(self, error: StructuredOutputError) -> None:
        super().__init__(
            502,
            f"The model's answer did not match the response_format: {error}. "
            "Its raw text is in orkestra.text; the call was billed.",
            type="invalid_model_output",
            param="response_format",
            code="invalid_model_output",
        )
        self.text = error.text
        self.reason = error.reason
        self.response = error.response if isinstance(error.response, Response) else None

    def body(self) -> dict[str, Any]:
        """The error, and beside it the raw answer, why it failed and what it cost."""
        body: dict[str, Any] = dict(super().body())
        extra: dict[str, Any] = {"text": self.text, "reason": self.reason}
        if self.response is not None:
            extra.update(orkestra_json(self.response))
        body["orkestra"] = extra
        return body


def proxy_error(error: OrkestraError) -> ProxyError:
    """The OpenAI-shaped answer for a library error: :func:`from_library_error`, plus the two
    errors of tools and structured output.

    :class:`CapabilityError` (no configured model has tools, vision or JSON output, or the
    context, the request needs) is the client's request: a 400 ``no_capable_model``.
    :class:`StructuredOutputError` is :class:`InvalidOutputError` (502).
    """
    if isinstance(error, CapabilityError):
        named = sorted(error.needs & set(_NEED_PARAMS))
        return ProxyError(
            400,
            str(error) or "No configured model can serve this request.",
            param=_NEED_PARAMS[named[0]] if len(named) == 1 else None,
            code="no_capable_model",
        )
    if isinstance(error, StructuredOutputError):
        return InvalidOutputError(error)
    return from_library_error(error)
