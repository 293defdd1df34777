"""Request pieces several test modules share: a weather tool (in the library's neutral form and
in OpenAI's wire form) and a tiny image."""

from __future__ import annotations

import base64
from typing import Any

from orkestra.providers.base import Tool

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
