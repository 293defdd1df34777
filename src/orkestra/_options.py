"""A call's options beyond the text: tools, structured output, a sticky session.

``tools=`` takes OpenAI's function-tool format (``[{"type": "function", "function": {"name",
"description", "parameters"}}]``, or the inner ``{"name", ...}`` objects) as the common one;
each adapter translates it. ``response_format=`` takes a pydantic model class, a JSON Schema
dict, OpenAI's ``{"type": "json_schema", "json_schema": {...}}`` or ``{"type": "json_object"}``;
the answer is parsed and validated on return (``Response.parsed``).

A request's needs (tools, vision, JSON output, context length) are checked against the catalog's
capabilities before routing: the router only picks among models that can serve it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from orkestra._request import (
    PARAM_NAMES,
    REASONING_EFFORTS,
    ForcedTool,
    ModelParams,
    RequestOptions,
    ResponseFormat,
    Tool,
    ToolChoice,
)
from orkestra._schema import limits_problem
from orkestra.catalog import ModelInfo
from orkestra.errors import CapabilityError, InvalidRequestError, StructuredOutputError

__all__ = ["MAX_STOP_SEQUENCES", "RequestOptions", "parse_options", "parse_params", "structured"]

MAX_STOP_SEQUENCES = 4
"""OpenAI's limit (Gemini's is 5): a routed call may land on either."""

NAMED_CAPABILITIES = ("tools", "vision", "json")


def can_serve(model: ModelInfo, needs: frozenset[str], input_tokens: int) -> bool:
    """Whether ``model`` has every capability in ``needs`` and room for the prompt."""
    return needs <= model.capabilities and input_tokens < model.context_window


def refusal(what: str, needs: frozenset[str], input_tokens: int) -> CapabilityError:
    """The error for a request none of ``what``'s models can serve."""
    asked = [*sorted(needs), f"a context over {input_tokens:,} tokens"]
    return CapabilityError(
        f"no model of {what} can serve this request: it needs {', '.join(asked)}; "
        "see `orkestra models` for each model's capabilities",
        needs=needs | {"context"},
    )


def _tool(item: Any, index: int) -> Tool:
    if isinstance(item, Tool):
        return item
    if not isinstance(item, Mapping):
        raise InvalidRequestError(f"tools[{index}] must be a function-tool mapping")
    if "type" in item:
        if item["type"] != "function":
            raise InvalidRequestError(
                f"tools[{index}]: only function tools are supported, not {item['type']!r}"
            )
        item = item.get("function")
        if not isinstance(item, Mapping):
            raise InvalidRequestError(f"tools[{index}]: a function tool needs a 'function'")
    name = item.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidRequestError(f"tools[{index}]: a tool needs a name (1-64 characters)")
    if not all(c.isalnum() or c in "_-" for c in name):
        raise InvalidRequestError(
            f"tools[{index}]: tool name {name!r} may only use letters, digits, _ and -"
        )
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequestError(f"tools[{index}]: description must be a string")
    parameters = item.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise InvalidRequestError(
            f"tools[{index}]: parameters must be a JSON Schema of type 'object'"
        )
    problem = limits_problem(parameters)
    if problem is not None:
        raise InvalidRequestError(f"tools[{index}].parameters: {problem}")
    return Tool(name, description, dict(parameters))


def _tool_choice(value: Any, tools: tuple[Tool, ...]) -> ToolChoice:
    if value is None or value == "auto":
        return "auto"
    if value in ("none", "required"):
        if value == "required" and not tools:
            raise InvalidRequestError("tool_choice='required' needs tools=[...]")
        return value  # type: ignore[no-any-return]
    name = None
    if isinstance(value, ForcedTool):
        name = value.name
    elif isinstance(value, Mapping):
        function = value.get("function")
        name = function.get("name") if isinstance(function, Mapping) else value.get("name")
    if not isinstance(name, str):
        raise InvalidRequestError(
            "tool_choice must be 'auto', 'none', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}"
        )
    if name not in {t.name for t in tools}:
        raise InvalidRequestError(f"tool_choice names {name!r}, which is not in tools=[...]")
    return ForcedTool(name)


def _is_pydantic_model(value: Any) -> bool:
    return isinstance(value, type) and hasattr(value, "model_json_schema")


def _response_format(value: Any) -> tuple[ResponseFormat | None, Any]:
    if value is None:
        return None, None
    if isinstance(value, ResponseFormat):
        return value, None
    if _is_pydantic_model(value):
        return ResponseFormat(value.__name__, value.model_json_schema()), value
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            "response_format must be a pydantic model class, a JSON Schema dict, "
            "{'type': 'json_schema', 'json_schema': {...}} or {'type': 'json_object'}"
        )
    kind = value.get("type")
    if kind == "json_object":
        return ResponseFormat(schema=None), None
    if kind == "text":
        return None, None
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise InvalidRequestError("response_format json_schema needs a 'schema' object")
        name = spec.get("name") or "response"
        fmt = ResponseFormat(str(name), dict(spec["schema"]), bool(spec.get("strict", False)))
    else:
        fmt = ResponseFormat(schema=dict(value))
    problem = fmt.schema_problem()
    if problem is not None:
        raise InvalidRequestError(f"response_format: {problem}")
    return fmt, None


def parse_options(
    tools: Sequence[Any] | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    session_id: str | None = None,
) -> RequestOptions:
    """Validate a call's options; raises :class:`InvalidRequestError` before anything is sent."""
    if tools is not None and (
        isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence)
    ):
        raise InvalidRequestError("tools must be a list of function tools")
    parsed_tools = tuple(_tool(t, i) for i, t in enumerate(tools or ()))
    names = [t.name for t in parsed_tools]
    if len(set(names)) != len(names):
        raise InvalidRequestError("tools: two tools have the same name")
    if tool_choice is not None and not parsed_tools and tool_choice not in ("none", "auto"):
        raise InvalidRequestError("tool_choice needs tools=[...]")
    fmt, model = _response_format(response_format)
    if session_id is not None and (not isinstance(session_id, str) or not session_id.strip()):
        raise InvalidRequestError("session_id must be a non-empty string")
    return RequestOptions(
        tools=parsed_tools,
        tool_choice=_tool_choice(tool_choice, parsed_tools),
        response_format=fmt,
        response_model=model,
        session=session_id,
    )


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{name} must be a number, not {type(value).__name__}")
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidRequestError(f"{name} must be in [{low:g}, {high:g}], not {value!r}")
    return float(value)


def _stop(value: object) -> tuple[str, ...]:
    stops = (value,) if isinstance(value, str) else value
    if not isinstance(stops, (list, tuple)):
        raise InvalidRequestError("stop must be a string or a list of strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequestError(
            f"stop takes at most {MAX_STOP_SEQUENCES} sequences (OpenAI's limit), not {len(stops)}"
        )
    for item in stops:
        if not isinstance(item, str) or not item:
            raise InvalidRequestError("each stop sequence must be a non-empty string")
    return tuple(stops)


def _logit_bias(value: object) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise InvalidRequestError("logit_bias must be a mapping of token ids to biases")
    out: dict[str, float] = {}
    for token, bias in value.items():
        if not str(token).isdigit():
            raise InvalidRequestError(f"logit_bias: {token!r} is not a token id")
        out[str(token)] = _number(f"logit_bias[{token!r}]", bias, -100, 100)
    return out


def parse_params(args: Mapping[str, Any]) -> ModelParams:  # noqa: PLR0912 (one branch per parameter)
    """Check a call's optional parameters (``stop=``, ``top_p=``...; see
    :class:`~orkestra._request.ParamArgs`). An unknown name is a :class:`TypeError`, as for any
    keyword argument; a bad value an :class:`InvalidRequestError`."""
    unknown = [name for name in args if name not in PARAM_NAMES]
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}; the optional parameters are "
            + ", ".join(PARAM_NAMES)
        )
    given = {name: value for name, value in args.items() if value is not None}
    if not given:
        return ModelParams()
    out: dict[str, Any] = {}
    if "stop" in given:
        out["stop"] = _stop(given["stop"])
    if "top_p" in given:
        out["top_p"] = _number("top_p", given["top_p"], 0, 1)
    for name in ("presence_penalty", "frequency_penalty"):
        if name in given:
            out[name] = _number(name, given[name], -2, 2)
    if "seed" in given:
        seed = given["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidRequestError(f"seed must be an integer, not {seed!r}")
        out["seed"] = seed
    if "parallel_tool_calls" in given:
        if not isinstance(given["parallel_tool_calls"], bool):
            raise InvalidRequestError("parallel_tool_calls must be True or False")
        if not given["parallel_tool_calls"]:  # True is what every provider does anyway
            out["parallel_tool_calls"] = False
    if "reasoning_effort" in given:
        if given["reasoning_effort"] not in REASONING_EFFORTS:
            raise InvalidRequestError(
                f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}, "
                f"not {given['reasoning_effort']!r}"
            )
        out["reasoning_effort"] = given["reasoning_effort"]
    if "logit_bias" in given:
        out["logit_bias"] = _logit_bias(given["logit_bias"])
    return ModelParams(**out)


def structured(text: str, options: RequestOptions) -> Any:
    """Parse and validate a ``response_format`` answer; raises :class:`StructuredOutputError`
    (without its response: the caller attaches it)."""
    fmt = options.response_format
    if fmt is None:
        return None
    try:
        value = json.loads(_strip_fence(text))
    except json.JSONDecodeError as e:
        raise StructuredOutputError(
            f"the answer is not valid JSON ({e.msg} at character {e.pos})",
            text=text,
            reason=f"invalid JSON: {e.msg}",
        ) from None
    if fmt.schema is None:
        if not isinstance(value, dict):
            raise StructuredOutputError(
                "the answer is JSON but not an object", text=text, reason="not a JSON object"
            )
        return value
    if options.response_model is not None:
        import pydantic

        try:
            return options.response_model.model_validate(value)
        except pydantic.ValidationError as e:
            raise StructuredOutputError(
                f"the answer does not match {fmt.name}: {e.errors()[0]['msg']}",
                text=text,
                reason=str(e),
            ) from None
    import jsonschema

    validator = jsonschema.validators.validator_for(fmt.schema)(fmt.schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise StructuredOutputError(
            f"the answer does not match the schema at {where}: {error.message}",
            text=text,
            reason=error.message,
        )
    return value


def _strip_fence(text: str) -> str:
    """Models in JSON mode sometimes wrap the object in a Markdown code fence anyway."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        if stripped.startswith("json"):
            stripped = stripped[4:]
    return stripped.strip()
