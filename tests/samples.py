"""Request pieces several test modules share: a weather tool (in the library's neutral form and
in OpenAI's wire form), a tiny image, and a conversation that uses every kind of turn."""

from __future__ import annotations

import base64
from typing import Any

from orkestra._types import ToolCall
from orkestra.providers.base import Image, Message, Tool

WEATHER = Tool(
    "get_weather",
    "The current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = Tool("get_time", None, {"type": "object", "properties": {"zone": {"type": "string"}}})
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": WEATHER.name,
        "description": WEATHER.description,
        "parameters": dict(WEATHER.parameters),
    },
}
"""``WEATHER`` as ``tools=[...]`` takes it (OpenAI's function-tool format)."""
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()

RICH_TURNS = (
    Message("system", "Be brief."),
    Message("user", "What is in these?", images=(Image(PNG),)),
    Message("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),)),
    Message("tool", "Sunny, 21 C", tool_call_id="call_1", name="get_weather"),
    Message("user", "And the time there? Answer in JSON."),
)
"""A system prompt, an image, a tool call and its result, and a last user turn."""
PLACE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "hour": {"type": "integer"}},
    "required": ["city", "hour"],
    "additionalProperties": False,
}
"""A strict JSON Schema for structured-output requests."""
