"""A Chat Completions request body, checked and translated into :class:`ChatParams`.

Every field a client may send has a rule: translated (``messages`` with tool calls, tool results
and images: :mod:`.messages`; ``tools``, ``tool_choice``, ``response_format``, ``max_tokens`` /
``max_completion_tokens``, ``temperature``, ``stream``, ``stream_options``), passed to the
library as its optional parameters (``stop``, ``top_p``, ``seed``, ``parallel_tool_calls``,
``reasoning_effort``, the penalties, ``logit_bias``: each sent where the answering model takes
it), recorded (``user``, ``safety_identifier``), accepted only at its default (``n=1``,
``store=false``...), or refused with a 400 naming it (``n`` > 1, ``audio``...). Nothing is
dropped silently: what is accepted but not honoured (a tool's ``strict``, an image's
``detail``, ``logprobs``, a parameter the answering model cannot take) is named in
``x-orkestra-ignored-params`` (strict mode refuses it: :meth:`ChatParams.unserved`). A field
OpenAI does not define is refused as OpenAI refuses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orkestra import ForcedTool, Message, ResponseFormat, Tool
from orkestra._schema import SchemaProblem, limits_problem
from orkestra.server.errors import ProxyError, bad_request, unsupported
from orkestra.server.fields import (
    check_unique_tool,
    invalid,
    is_int,
    is_number,
    kind_of,
    missing,
    name_field,
    object_field,
    only_known,
    text_field,
    tools_array,
    unknown,
    wrong_type,
)
from orkestra.server.messages import parse_messages
from orkestra.server.params import PARAMS, parse_params

__all__ = ["ChatParams", "parse_chat_request"]


@dataclass(frozen=True)
class ChatParams:
    """A checked chat request, in the library's request vocabulary (:class:`~orkestra.Message`,
    :class:`~orkestra.Tool`, :class:`~orkestra.ForcedTool`, :class:`~orkestra.ResponseFormat`),
    which the library takes as it is: what the proxy checked is not checked again.
    ``ignored`` names what was accepted but no provider is sent (a tool's ``strict``...).
    """

    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | ForcedTool | None = None
    response_format: ResponseFormat | None = None
    session_id: str | None = None
    """``prompt_cache_key``: the conversation's sticky session (its model stays put, so the
    provider's prompt cache stays warm; see docs/conversations.md)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The library's optional parameters (``stop``, ``top_p``, ``seed``...), by its names."""
    ignored: tuple[str, ...] = field(default=())
    unserved: tuple[str, ...] = field(default=())
    """What was asked that orkestra gives no answer of (``logprobs``): in ``ignored`` too,
    and refused in strict mode."""

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
        :class:`~orkestra.Message` turns, tool-call signatures decoded)."""
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
            out["tools"] = self.tools
        if self.tool_choice is not None:
            out["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            out["response_format"] = self.response_format
        if self.session_id is not None:
            out["session_id"] = self.session_id
        out.update(self.params)
        return out


def _never(value: object) -> bool:
    return False


# Accepted at these values (they ask for nothing orkestra would have to do); refused otherwise.
_NEUTRAL: dict[str, tuple[Callable[[object], bool], str]] = {
    "functions": (lambda v: v == [], "functions (deprecated function calling; use tools)"),
    "function_call": (
        lambda v: v == "none",
        "function_call (deprecated function calling; use tool_choice)",
    ),
    # Several choices: the library's answer is one. Fewer choices than asked would break a
    # client that reads choices[1], so this stays a 400 (docs/proxy.md, "Parameters").
    "n": (lambda v: is_int(v) and v == 1, "n other than 1 (several choices)"),
    "store": (lambda v: v is False, "store (stored completions)"),
    "metadata": (lambda v: v == {}, "metadata (stored completions)"),
    "service_tier": (lambda v: v in ("auto", "default"), "service_tier"),
    "modalities": (lambda v: v == ["text"], "modalities other than text"),
    "audio": (_never, "audio output"),
    "prediction": (_never, "predicted outputs"),
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
        *PARAMS,
        "logprobs",
        "top_logprobs",
    }
)


def parse_chat_request(body: object) -> ChatParams:
    """Check a ``/v1/chat/completions`` body; a :class:`ProxyError` (400) names what is wrong."""
    if not isinstance(body, dict):
        raise bad_request(
            f"The request body must be a JSON object, not {kind_of(body)}.", None, "invalid_body"
        )
    for name, value in body.items():
        if name in _HANDLED or value is None:
            continue
        rule = _NEUTRAL.get(name)
        if rule is None:
            raise unknown(name)
        neutral, what = rule
        if not neutral(value):
            raise unsupported(name, what)

    model = body.get("model")
    if model is None:
        raise bad_request("you must provide a model parameter", "model", "missing_required")
    model = text_field("model", model)
    ignored: list[str] = []
    messages = parse_messages(body.get("messages"), ignored)

    max_tokens = _max_tokens(body)
    temperature = body.get("temperature")
    if temperature is not None:
        if not is_number(temperature):
            raise wrong_type("temperature", "a decimal", temperature)
        if not (math.isfinite(temperature) and 0 <= temperature <= 2):
            raise invalid("temperature", f"{temperature!r} is not in [0, 2].")
        temperature = float(temperature)

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise wrong_type("stream", "a boolean", stream)
    include_usage = _stream_options(body.get("stream_options"), bool(stream))

    tools = _tools(body.get("tools"), ignored)
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    params = parse_params(body, has_tools=bool(tools))
    unserved = _logprobs(body)
    ignored += unserved
    response_format = _response_format(body.get("response_format"), ignored)

    user = _optional_text(body, "user")
    safety = _optional_text(body, "safety_identifier")
    session = _optional_text(body, "prompt_cache_key")
    if session is not None and not session.strip():
        raise invalid("prompt_cache_key", "it must not be empty.")
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
        params=params,
        ignored=tuple(dict.fromkeys(ignored)),
        unserved=unserved,
    )


def _logprobs(body: Mapping[str, object]) -> tuple[str, ...]:
    """``logprobs: true`` (and ``top_logprobs``): the library's answer has none, so they are
    reported ignored (strict mode: refused)."""
    asked: list[str] = []
    logprobs = body.get("logprobs")
    if logprobs is not None:
        if not isinstance(logprobs, bool):
            raise wrong_type("logprobs", "a boolean", logprobs)
        if logprobs:
            asked.append("logprobs")
    top = body.get("top_logprobs")
    if top is not None:
        if not is_int(top):
            raise wrong_type("top_logprobs", "an integer", top)
        assert isinstance(top, int)
        if not 0 <= top <= 20:
            raise invalid("top_logprobs", f"{top} is not in [0, 20].")
        if top and not logprobs:
            raise invalid("top_logprobs", "'logprobs' must be true when 'top_logprobs' is set.")
        if top:
            asked.append("top_logprobs")
    return tuple(asked)


def _optional_text(body: Mapping[str, object], param: str) -> str | None:
    value = body.get(param)
    return None if value is None else text_field(param, value)


def _max_tokens(body: Mapping[str, object]) -> int | None:
    found: dict[str, int] = {}
    for param in ("max_tokens", "max_completion_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if not is_int(value):
            raise wrong_type(param, "an integer", value)
        assert isinstance(value, int)
        if value < 1:
            raise invalid(param, f"{value} is below the minimum of 1.")
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
        raise wrong_type("stream_options", "an object", value)
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
                raise wrong_type(param, "a boolean", option)
            include_usage = bool(option)
        elif name == "include_obfuscation":
            if option is not None and not isinstance(option, bool):
                raise wrong_type(param, "a boolean", option)
            # Padding against length side channels: orkestra adds none (only ever less).
        else:
            raise bad_request(f"Unrecognized stream option: {name}", param, "unknown_parameter")
    return include_usage


# -- tools and structured output -------------------------------------------------------------

_TOOL_FIELDS = frozenset({"type", "function"})
_FUNCTION_FIELDS = frozenset({"name", "description", "parameters", "strict"})


def _tools(value: object, ignored: list[str]) -> tuple[Tool, ...]:
    """Function tools (a tool's ``strict`` is no provider's: it is named in ``ignored``)."""
    out: list[Tool] = []
    for i, item in enumerate(tools_array(value)):
        tool = _function(f"tools[{i}]", item, ignored)
        check_unique_tool(tool.name, out)
        out.append(tool)
    return tuple(out)


def _function(where: str, item: object, ignored: list[str]) -> Tool:
    """One function tool, checked."""
    tool = object_field(where, item)
    kind = tool.get("type")
    if kind is None:
        raise missing(f"{where}.type")
    if kind != "function":
        if isinstance(kind, str):
            raise unsupported(f"{where}.type", f"{kind!r} tools (only function tools)")
        raise wrong_type(f"{where}.type", "a string", kind)
    only_known(where, tool, _TOOL_FIELDS, "tool field")
    if "function" not in tool:
        raise missing(f"{where}.function")
    where = f"{where}.function"
    function = object_field(where, tool["function"])
    only_known(where, function, _FUNCTION_FIELDS, "function field")
    name = name_field(f"{where}.name", function.get("name"))
    description = function.get("description")
    if description is not None:
        description = text_field(f"{where}.description", description)
    parameters = function.get("parameters")
    if parameters is not None:
        parameters = object_field(f"{where}.parameters", parameters)
        if parameters.get("type", "object") != "object":
            raise invalid(
                f"{where}.parameters",
                "a function's parameters must be a JSON Schema of type 'object'.",
            )
        problem = limits_problem(parameters)
        if problem is not None:
            raise _schema_error(f"{where}.parameters", problem)
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise wrong_type(f"{where}.strict", "a boolean", strict)
    if strict:
        ignored.append("tools.function.strict")
    if parameters is None:
        return Tool(name, description)
    return Tool(name, description, parameters)


def _tool_choice(value: object, tools: Sequence[Tool]) -> str | ForcedTool | None:
    """``"auto"``, ``"none"``, ``"required"`` or one named function; None when there are no
    tools and the choice asks for nothing."""
    if value is None:
        return None
    param = "tool_choice"
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise invalid(param, f"{value!r}; supported: 'auto', 'none', 'required'.")
        if not tools:
            if value == "required":
                raise invalid(param, "'tool_choice' is only allowed when 'tools' are specified.")
            return None  # "auto" or "none" with no tools: nothing to choose
        return value
    choice = object_field(param, value)
    kind = choice.get("type")
    if kind != "function":
        if isinstance(kind, str):
            raise unsupported(f"{param}.type", f"tool_choice of type {kind!r}")
        raise wrong_type(f"{param}.type", "a string", kind)
    only_known(param, choice, _TOOL_FIELDS, "tool_choice field")
    if "function" not in choice:
        raise missing(f"{param}.function")
    function = object_field(f"{param}.function", choice["function"])
    only_known(f"{param}.function", function, frozenset({"name"}), "tool_choice field")
    name = name_field(f"{param}.function.name", function.get("name"))
    if not tools:
        raise invalid(param, "'tool_choice' is only allowed when 'tools' are specified.")
    if name not in {t.name for t in tools}:
        raise invalid(f"{param}.function.name", f"no tool named {name!r} is in 'tools'.")
    return ForcedTool(name)


_JSON_SCHEMA_FIELDS = frozenset({"name", "description", "schema", "strict"})


def _schema_error(param: str, problem: SchemaProblem) -> ProxyError:
    """A schema the library would refuse (too deep, too large, not a JSON Schema): a 400 whose
    code says which (``schema_too_deep``, ``schema_too_large``, else ``invalid_value``)."""
    code = "invalid_value" if problem.code == "invalid_schema" else problem.code
    return bad_request(f"Invalid value for '{param}': {problem}.", param, code)


def _response_format(value: object, ignored: list[str]) -> ResponseFormat | None:
    """``json_object`` (any JSON object) or ``json_schema`` (``text`` is the default: None)."""
    if value is None:
        return None
    param = "response_format"
    fmt = object_field(param, value)
    kind = fmt.get("type")
    if kind is None:
        raise missing(f"{param}.type")
    if not isinstance(kind, str):
        raise wrong_type(f"{param}.type", "a string", kind)
    if kind in ("text", "json_object"):
        only_known(param, fmt, frozenset({"type"}), "response_format field")
        return None if kind == "text" else ResponseFormat(schema=None)
    if kind != "json_schema":
        raise unsupported(f"{param}.type", f"response_format of type {kind!r}")
    only_known(param, fmt, frozenset({"type", "json_schema"}), "response_format field")
    if "json_schema" not in fmt:
        raise missing(f"{param}.json_schema")
    spec = object_field(f"{param}.json_schema", fmt["json_schema"])
    where = f"{param}.json_schema"
    only_known(where, spec, _JSON_SCHEMA_FIELDS, "json_schema field")
    name = name_field(f"{where}.name", spec.get("name"))
    if spec.get("description") is not None:
        text_field(f"{where}.description", spec["description"])
        ignored.append(f"{where}.description")
    if "schema" not in spec or spec["schema"] is None:
        raise missing(f"{where}.schema")
    schema = object_field(f"{where}.schema", spec["schema"])
    problem = ResponseFormat(name, schema).schema_problem()  # the library's check, made here
    if problem is not None:
        raise _schema_error(f"{where}.schema", problem)
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise wrong_type(f"{where}.strict", "a boolean", strict)
    return ResponseFormat(name, schema, bool(strict))
