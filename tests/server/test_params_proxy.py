"""The optional parameters through the proxy: passed to the library, translated per provider,
dropped and named in ``x-orkestra-ignored-params`` where the answering model cannot take them,
refused (400, nothing sent) in strict mode."""

from __future__ import annotations

from typing import Any

import pytest
from proxy_helpers import AppClient, chat_body, is_openai_error

from orkestra.testing import FakeProviderServer, Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

pytestmark = pytest.mark.filterwarnings("ignore::orkestra.errors.OrkestraWarning")


def test_what_the_answering_model_cannot_take_is_dropped_and_named(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    fake.queue(Reply(text="first second STOP third"))
    body = chat_body(model="orkestra/anthropic", stop=["STOP"], top_p=0.5, seed=3)
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-orkestra-ignored-params"] == "top_p,seed"
    answer = response.json()
    assert answer["orkestra"]["ignored_params"] == ["top_p", "seed"]
    assert answer["choices"][0]["message"]["content"] == "first second "
    assert answer["choices"][0]["finish_reason"] == "stop"
    sent = fake.requests[-1].body
    assert sent["stop_sequences"] == ["STOP"] and "top_p" not in sent and "seed" not in sent


def test_a_model_that_takes_everything_gets_everything(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    body = chat_body(
        model="gpt-4o-mini",
        stop="END",
        top_p=0.2,
        seed=9,
        presence_penalty=0.1,
        tools=[WEATHER],
        parallel_tool_calls=False,
    )
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert "x-orkestra-ignored-params" not in response.headers
    sent = fake.requests[-1].body
    assert (sent["stop"], sent["top_p"], sent["seed"]) == (["END"], 0.2, 9)
    assert sent["parallel_tool_calls"] is False and sent["presence_penalty"] == 0.1


def test_reasoning_effort_reaches_gemini_as_a_thinking_budget(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    body = chat_body(model="gemini-3.5-flash", reasoning_effort="high")
    response = app_client().post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    config = fake.requests[-1].body["generationConfig"]
    assert list(config["thinkingConfig"].values()) == [24576]


def test_logprobs_are_answered_without_and_said_so(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    response = app_client().post("/v1/chat/completions", json=chat_body(logprobs=True))
    assert response.status_code == 200
    assert response.headers["x-orkestra-ignored-params"] == "logprobs"
    assert response.json()["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(
    ("config", "headers", "extra", "param"),
    [
        ({}, {"x-orkestra-strict-params": "true"}, {"seed": 1}, "seed"),
        ({"strict_params": True}, {}, {"top_p": 0.5}, "top_p"),
        ({"strict_params": True}, {}, {"logprobs": True}, "logprobs"),
        (
            {"strict_params": True},
            {},
            {"tools": [WEATHER], "parallel_tool_calls": False},
            "parallel_tool_calls",
        ),
    ],
)
def test_strict_mode_refuses_what_a_possible_model_cannot_take(
    app_client: AppClient,
    fake: FakeProviderServer,
    config: dict[str, Any],
    headers: dict[str, str],
    extra: dict[str, Any],
    param: str,
) -> None:
    response = app_client(**config).post(
        "/v1/chat/completions", json=chat_body(**extra), headers=headers
    )
    assert response.status_code == 400 and is_openai_error(response)
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "unsupported_parameter")
    assert fake.requests == []


def test_strict_mode_serves_a_destination_whose_models_all_take_it(
    app_client: AppClient, fake: FakeProviderServer
) -> None:
    client = app_client(strict_params=True)
    response = client.post("/v1/chat/completions", json=chat_body(model="gpt-4o-mini", seed=1))
    assert response.status_code == 200 and fake.requests[-1].body["seed"] == 1
    # o3 refuses top_p: naming it is refused in strict mode...
    refused = client.post("/v1/chat/completions", json=chat_body(model="o3", top_p=0.5))
    assert refused.status_code == 400 and "openai/o3" in refused.json()["error"]["message"]
    # ...and the header turns strict mode off for one request.
    relaxed = client.post(
        "/v1/chat/completions",
        json=chat_body(model="o3", top_p=0.5),
        headers={"x-orkestra-strict-params": "false"},
    )
    assert relaxed.status_code == 200
    assert relaxed.headers["x-orkestra-ignored-params"] == "top_p"
