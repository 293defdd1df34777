"""JSON "\\ud800" escapes (lone surrogates) anywhere in a body: a typed 400 naming the place,
and nothing is sent upstream (they used to reach the SDK and be retried as connection errors)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orkestra.testing import FakeProviderServer
from tests.server.proxy_helpers import AppClient, chat_body, is_openai_error

MARK = "SURROGATE"


def tool(description: str = "a city", key: str = "city") -> dict[str, Any]:
    schema = {"type": "object", "properties": {key: {"type": "string", "description": description}}}
    return {"type": "function", "function": {"name": "weather", "parameters": schema}}


# (body with MARK where "\ud800" goes, the param reported, whether it is a key)
BODIES: list[tuple[dict[str, Any], str, bool]] = [
    (
        chat_body(tools=[tool(MARK)]),
        "tools[0].function.parameters.properties.city.description",
        False,
    ),
    (chat_body(tools=[tool(key=MARK)]), "tools[0].function.parameters.properties", True),
    (
        chat_body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object", "description": MARK}},
            }
        ),
        "response_format.json_schema.schema.description",
        False,
    ),
    (chat_body(f"hi {MARK}", stream=True), "messages[0].content", False),
    (chat_body(metadata={MARK: "x"}), "metadata", True),
    (chat_body(user=MARK), "user", False),
]


@pytest.mark.parametrize(("body", "param", "in_key"), BODIES)
def test_a_lone_surrogate_anywhere_in_the_body_is_a_400_naming_it(
    body: dict[str, Any], param: str, in_key: bool, app_client: AppClient, fake: FakeProviderServer
) -> None:
    raw = json.dumps(body).replace(MARK, "\\ud800").encode()
    response = app_client().post(
        "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert is_openai_error(response)
    error = response.json()["error"]
    assert error["param"] == param
    assert error["code"] == "invalid_value"
    where = f"a key of '{param}'" if in_key else f"'{param}'"
    assert error["message"].startswith(f"Invalid value for {where}: the text is not valid Unicode")
    assert "U+D800" in error["message"]
    assert fake.requests == []
