"""The Gemini API's answers to a malformed request: its error body, and the checks of the
tools (function declarations, ``toolConfig``), of structured output and of the generation
config (sampling, stop sequences, candidates, thinking budget), with the messages the real API
sends."""

from __future__ import annotations

import re
from typing import Any

from ._common import HttpReply, JSONObject, dumps, format_number

__all__ = [
    "_JSON",
    "_STATUS",
    "_check_declaration",
    "_declarations",
    "_error",
    "_get",
    "_sampling_problem",
    "_status_name",
    "output_problem",
    "tools_problem",
]

_JSON = "application/json"
_MIME_TYPES = ("text/plain", _JSON, "application/xml", "application/yaml", "text/x.enum")
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_BAD_FUNCTION_NAME = (
    "Invalid function name. Must start with a letter or an underscore. Must be alphameric"
    " (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum"
    " length of 64."
)
_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more"
        " information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in"
        " https://developers.generativeai.google/guide/troubleshooting",
    ),
    501: ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


def _status_name(status: int) -> str:
    if status in _STATUS:
        return _STATUS[status][0]
    if status == 529:
        return "UNAVAILABLE"
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def _error(status: int, message: str, details: list[JSONObject] | None = None) -> HttpReply:
    error: JSONObject = {"code": status, "message": message, "status": _status_name(status)}
    if details:
        error["details"] = details
    # Google's front end pretty-prints its error bodies.
    return HttpReply(status, dumps({"error": error}, indent=2) + b"\n")


def _get(obj: object, camel: str) -> Any:
    """A field by its camelCase name or its snake_case twin (the REST API accepts both)."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


def _check_declaration(where: str, declaration: JSONObject) -> HttpReply | None:
    """One function declaration: a valid name, and parameters in one form that fits it."""
    name = declaration.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
        return _error(400, f"* GenerateContentRequest.{where}.name: {_BAD_FUNCTION_NAME}\n")
    parameters = _get(declaration, "parameters")
    json_schema = _get(declaration, "parametersJsonSchema")
    if parameters is not None and json_schema is not None:
        return _error(
            400,
            f"* GenerateContentRequest.{where}.parameters_json_schema:"
            " parameters_json_schema and parameters are mutually exclusive.\n",
        )
    # Google's OpenAPI subset has no JSON Schema keywords like $schema, $ref or const.
    unknown = (
        [k for k in parameters if k.startswith("$") or k == "const"]
        if isinstance(parameters, dict)
        else []
    )
    if unknown:
        return _error(
            400,
            f'Invalid JSON payload received. Unknown name "{unknown[0]}" at'
            f" '{where}.parameters': Cannot find field.",
        )
    if json_schema is not None and (
        not isinstance(json_schema, dict) or json_schema.get("type", "object") != "object"
    ):
        return _error(
            400,
            f"* GenerateContentRequest.{where}.parameters_json_schema: the schema must describe"
            ' an object ("type": "object") whose properties are the function\'s parameters.\n',
        )
    return None


MAX_STOP_SEQUENCES = 5
MAX_CANDIDATES = 8
MAX_THINKING_BUDGET = 32_768


def _out_of_range(name: str, value: float, low: str, high: str) -> HttpReply:
    return _error(
        400,
        f"Unable to submit request because it has a {name} value of {format_number(value)} but"
        f" the supported range is from {low} to {high}. Update the value and try again.",
    )


def _sampling_problem(config: object) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
    """``topP``, ``stopSequences``, ``seed``, ``candidateCount`` and the thinking budget."""
    top_p = _get(config, "topP")
    if isinstance(top_p, (int, float)) and not 0 <= top_p <= 1:
        return _out_of_range("topP", top_p, "0 (inclusive)", "1 (inclusive)")
    stops = _get(config, "stopSequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(x, str) for x in stops):
            return _error(
                400,
                "Invalid JSON payload received. Invalid value at"
                " 'generation_config.stop_sequences' (type.googleapis.com/"
                "google.protobuf.ListValue)",
            )
        if len(stops) > MAX_STOP_SEQUENCES:
            return _error(
                400,
                f"Unable to submit request because it has {len(stops)} stop sequences but at"
                f" most {MAX_STOP_SEQUENCES} are supported. Update the value and try again.",
            )
    seed = _get(config, "seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return _error(
            400,
            "Invalid JSON payload received. Invalid value at 'generation_config.seed' (TYPE_INT32)",
        )
    count = _get(config, "candidateCount")
    if isinstance(count, int) and not 1 <= count <= MAX_CANDIDATES:
        return _out_of_range(
            "candidateCount", count, "1 (inclusive)", f"{MAX_CANDIDATES + 1} (exclusive)"
        )
    budget = _get(_get(config, "thinkingConfig"), "thinkingBudget")
    if isinstance(budget, int) and not -1 <= budget <= MAX_THINKING_BUDGET:
        return _out_of_range(
            "thinking_budget", budget, "-1 (inclusive)", f"{MAX_THINKING_BUDGET} (inclusive)"
        )
    return None


def _declarations(body: JSONObject) -> list[tuple[int, int, JSONObject]]:
    """``(tool index, declaration index, declaration)`` for every function declaration."""
    found: list[tuple[int, int, JSONObject]] = []
    tools = body.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        declarations = _get(tool, "functionDeclarations")
        for j, declaration in enumerate(declarations if isinstance(declarations, list) else []):
            if isinstance(declaration, dict):
                found.append((i, j, declaration))
    return found


def tools_problem(body: JSONObject) -> HttpReply | None:
    """Function declarations and ``toolConfig``, the way the API validates them.

    The messages for a bad name, an unknown ``parameters`` field and a config without
    declarations are the API's; the ones about ``parametersJsonSchema`` and
    ``allowedFunctionNames`` are the fake's own, in the API's field-path style.
    """
    declared: set[str] = set()
    for i, j, declaration in _declarations(body):
        problem = _check_declaration(f"tools[{i}].function_declarations[{j}]", declaration)
        if problem is not None:
            return problem
        declared.add(str(declaration["name"]))
    calling = _get(_get(body, "toolConfig"), "functionCallingConfig")
    if not isinstance(calling, dict):
        return None
    if not declared:
        return _error(400, "Function calling config is set without function_declarations.")
    allowed = _get(calling, "allowedFunctionNames")
    for k, name in enumerate(allowed if isinstance(allowed, list) else []):
        if name not in declared:
            return _error(
                400,
                "* GenerateContentRequest.tool_config.function_calling_config"
                f".allowed_function_names[{k}]: {name!r} is not the name of a declared"
                " function.\n",
            )
    return None


def output_problem(config: object) -> HttpReply | None:
    """Structured output: a known ``responseMimeType``, JSON for a response schema."""
    mime = _get(config, "responseMimeType")
    if mime is not None and mime not in _MIME_TYPES:
        return _error(
            400,
            "* GenerateContentRequest.generation_config.response_mime_type: allowed"
            " mimetypes are `text/plain`, `application/json`, `application/xml`,"
            " `application/yaml` and `text/x.enum`.\n",
        )
    schema, json_schema = _get(config, "responseSchema"), _get(config, "responseJsonSchema")
    if schema is not None and json_schema is not None:
        return _error(
            400,
            "* GenerateContentRequest.generation_config.response_json_schema:"
            " response_json_schema and response_schema are mutually exclusive.\n",
        )
    if (schema is not None or json_schema is not None) and mime != _JSON:
        return _error(
            400,
            "* GenerateContentRequest.generation_config.response_mime_type: a response"
            " schema needs response_mime_type application/json.\n",
        )
    return None
