"""The Messages API's checks of a malformed request (stop sequences, tools, tool choice, tool
turns, images, structured output, cache breakpoints), each returning the message the real API
sends with its 400, or None."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._common import JSONObject

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "MAX_BREAKPOINTS",
    "TOOL_NAME",
    "content_blocks",
    "custom_tools",
    "dicts",
    "marked",
    "request_problem",
]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_BREAKPOINTS = 4  # blocks with cache_control in one request


def content_blocks(content: object) -> list[JSONObject]:
    """A message's (or the system prompt's) content as blocks: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def marked(block: JSONObject) -> bool:
    return isinstance(block.get("cache_control"), dict)


def dicts(value: object) -> list[JSONObject]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def custom_tools(body: JSONObject) -> Iterator[tuple[int, JSONObject]]:
    """The request's own (client) tools with their index; server tools have a versioned
    ``type`` such as ``web_search_20250305`` and are not described by a schema."""
    for index, tool in enumerate(dicts(body.get("tools"))):
        if tool.get("type") in (None, "custom"):
            yield index, tool


# ---------------------------------------------------------------- request validation


def request_problem(body: JSONObject) -> str | None:
    """The real API's 400 message for a malformed tools / tool turns / structured output /
    image / cache request, or None."""
    return (
        _stop_problem(body)
        or _tools_problem(body)
        or _tool_choice_problem(body)
        or _turns_problem(body)
        or _output_config_problem(body)
        or _breakpoints_problem(body)
    )


def _tools_problem(body: JSONObject) -> str | None:  # noqa: PLR0911 (one return per API rule)
    names: list[str] = []
    for index, tool in custom_tools(body):
        where = f"tools.{index}.custom"
        name = tool.get("name")
        if not isinstance(name, str):
            return f"{where}.name: Field required"
        if not TOOL_NAME.match(name):
            return f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        names.append(name)
        schema = tool.get("input_schema")
        if schema is None:
            return f"{where}.input_schema: Field required"
        if not isinstance(schema, dict):
            return f"{where}.input_schema: Input should be a valid dictionary"
        if schema.get("type") != "object":
            return f"{where}.input_schema.type: Input should be 'object'"
        if not _valid_schema(schema):
            return (
                f"{where}.input_schema: JSON schema is invalid. It must match JSON Schema draft"
                " 2020-12 (https://json-schema.org/draft/2020-12)."
            )
    if len(set(names)) != len(names):
        return "tools: Tool names must be unique."
    return None


def _valid_schema(schema: JSONObject) -> bool:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return False
    return True


def _stop_problem(body: JSONObject) -> str | None:
    stops = body.get("stop_sequences")
    if stops is None:
        return None
    if not isinstance(stops, list):
        return "stop_sequences: Input should be a valid list"
    for index, stop in enumerate(stops):
        if not isinstance(stop, str):
            return f"stop_sequences.{index}: Input should be a valid string"
        if not stop.strip():
            return "stop_sequences: each stop sequence must contain non-whitespace"
    return None


def _tool_choice_problem(body: JSONObject) -> str | None:  # noqa: PLR0911 (one return per API rule)
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return (
            "tool_choice: Input tag does not match any of the expected tags:"
            " 'auto', 'any', 'tool', 'none'"
        )
    one_at_most = choice.get("disable_parallel_tool_use")
    if one_at_most is not None and not isinstance(one_at_most, bool):
        where = f"tool_choice.{choice['type']}.disable_parallel_tool_use"
        return f"{where}: Input should be a valid boolean"
    if one_at_most is not None and choice["type"] == "none":
        return "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"
    if choice["type"] != "tool":
        return None
    name = choice.get("name")
    if not isinstance(name, str):
        return "tool_choice.tool.name: Field required"
    if name not in {tool.get("name") for _, tool in custom_tools(body)}:
        return f"tool_choice.tool.name: Tool '{name}' not found in tools"
    return None


def _turns_problem(body: JSONObject) -> str | None:
    """``tool_use`` blocks must be answered by ``tool_result`` blocks in the very next
    message, and every ``tool_result`` must answer a ``tool_use`` of the message before it."""
    messages = dicts(body.get("messages"))
    called: set[str] = set()  # the previous message's tool_use ids
    for i, message in enumerate(messages):
        blocks = content_blocks(message.get("content"))
        results = {str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"}
        if message.get("role") == "user":
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in called:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in"
                        f" `tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result`"
                        " block must have a corresponding `tool_use` block in the previous message."
                    )
            problem = _image_problem(i, blocks)
            if problem is not None:
                return problem
        if called - results:
            missing = ", ".join(sorted(called - results))
            return (
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks"
                f" immediately after: {missing}. Each `tool_use` block must have a corresponding"
                " `tool_result` block in the next message."
            )
        called = set()
        if message.get("role") == "assistant":
            called = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
    if called:
        return (
            f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result`"
            f" blocks immediately after: {', '.join(sorted(called))}. Each `tool_use` block must"
            " have a corresponding `tool_result` block in the next message."
        )
    return None


def _image_problem(i: int, blocks: list[JSONObject]) -> str | None:
    for j, block in enumerate(blocks):
        source = block.get("source") if block.get("type") == "image" else None
        if not isinstance(source, dict):
            continue
        if source.get("type") == "base64" and source.get("media_type") not in IMAGE_MEDIA_TYPES:
            return (
                f"messages.{i}.content.{j}.image.source.base64.media_type: Input should be"
                " 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        if source.get("type") == "url" and not isinstance(source.get("url"), str):
            return f"messages.{i}.content.{j}.image.source.url.url: Field required"
    return None


def _output_config_problem(body: JSONObject) -> str | None:  # noqa: PLR0911 (one return per API rule)
    config = body.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        return "output_config: Input should be a valid dictionary"
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return "output_config.format.type: Input should be 'json_schema'"
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        return "output_config.format.schema: Field required"
    if any(
        node.get("additionalProperties") is not False
        for node in _schema_nodes(schema)
        if node.get("type") == "object"
    ):
        return (
            "output_config.format.schema: For 'object' type, 'additionalProperties' must be"
            " explicitly set to false"
        )
    return None


def _schema_nodes(schema: object) -> Iterator[JSONObject]:
    """Every subschema (objects' properties, array items, definitions, combinators)."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            if isinstance(value, (dict, list)):
                yield from _schema_nodes(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_nodes(item)


def _breakpoints_problem(body: JSONObject) -> str | None:
    blocks = [tool for _, tool in custom_tools(body)] + content_blocks(body.get("system"))
    for message in dicts(body.get("messages")):
        blocks += content_blocks(message.get("content"))
    found = sum(1 for block in blocks if marked(block))
    if found > MAX_BREAKPOINTS:
        return (
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided."
            f" Found {found}."
        )
    return None
