"""Checking one JSON value of a Chat Completions request the way OpenAI does, with OpenAI's
error messages (``invalid_type``, ``invalid_value``, ``missing_required``,
``unknown_parameter``), so a client's mistake reads as it would from OpenAI itself."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from orkestra import Tool
from orkestra.server.errors import ProxyError, bad_request

__all__ = [
    "MAX_TOOLS",
    "NAME",
    "check_unique_tool",
    "invalid",
    "is_int",
    "is_number",
    "kind_of",
    "missing",
    "name_field",
    "object_field",
    "only_known",
    "text_field",
    "tools_array",
    "unknown",
    "wrong_type",
]

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""A function's (tool's, schema's) name, as OpenAI allows it."""

MAX_TOOLS = 128
"""The most tools one request may declare (OpenAI's limit, kept on every API the proxy serves)."""

_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def kind_of(value: object) -> str:
    """How OpenAI's errors name a JSON value's type."""
    if value is None:
        return "null"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def wrong_type(param: str, expected: str, value: object) -> ProxyError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {kind_of(value)} instead.",
        param,
        "invalid_type",
    )


def invalid(param: str, message: str) -> ProxyError:
    return bad_request(f"Invalid value for '{param}': {message}", param, "invalid_value")


def missing(param: str) -> ProxyError:
    return bad_request(f"Missing required parameter: '{param}'.", param, "missing_required")


def unknown(param: str, what: str = "request argument") -> ProxyError:
    name = param.rpartition(".")[2]
    return bad_request(f"Unrecognized {what} supplied: {name}", param, "unknown_parameter")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text_field(param: str, value: object) -> str:
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(param, "the text is not valid Unicode (a lone surrogate).") from None
    return value


def object_field(param: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    return value


def only_known(param: str, value: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    """Refuse a field OpenAI does not define in this object (never dropped)."""
    for name in value:
        if name not in allowed:
            raise unknown(f"{param}.{name}", what)


def name_field(param: str, value: object) -> str:
    if value is None:
        raise missing(param)
    name = text_field(param, value)
    if not NAME.match(name):
        raise invalid(
            param, f"{name!r} does not match '^[a-zA-Z0-9_-]{{1,64}}$' (letters, digits, _ and -)."
        )
    return name


def tools_array(value: object) -> list[Any]:
    """A request's ``tools``: absent is none; else an array of at most :data:`MAX_TOOLS`
    (each wire checks its items in its own shape)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise wrong_type("tools", "an array", value)
    if len(value) > MAX_TOOLS:
        raise invalid("tools", f"{len(value)} tools; at most {MAX_TOOLS} are allowed.")
    return value


def check_unique_tool(name: str, tools: Sequence[Tool]) -> None:
    """A 400 if a tool already read is named ``name``."""
    if any(t.name == name for t in tools):
        raise invalid("tools", f"two tools are named {name!r}; tool names must be unique.")
