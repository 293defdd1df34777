"""The real google-genai SDK (3.x) against the fake server, on v1beta and v1."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google import genai
from google.genai import errors, types

from orkestra.testing import FakeProviderServer, Reply

PROMPT = "Hello there, how are you doing today my friend?"


def test_generate_content_text_and_usage(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model="gemini-2.5-flash",
        contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2),
    )
    assert response.text == "[gemini-2.5-flash] Hello there, how are you doing today my friend?"
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == "gemini-2.5-flash"
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 15
    assert usage.candidates_token_count == 17
    assert usage.total_token_count == 32
    assert usage.thoughts_token_count is None


def test_stream_deltas_and_final_usage(gemini: genai.Client) -> None:
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-pro", contents=PROMPT))
    assert len(chunks) >= 3
    assert "".join(c.text or "" for c in chunks) == (
        "[gemini-2.5-pro] Hello there, how are you doing today my friend?"
    )
    middle, last = chunks[0].usage_metadata, chunks[-1].usage_metadata
    assert middle is not None and middle.candidates_token_count is None
    assert middle.prompt_token_count == 12
    assert last is not None and last.candidates_token_count == 16
    assert last.total_token_count == 12 + 16
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[0].candidates is not None
    assert chunks[0].candidates[0].finish_reason is None


def test_scripted_reply_usage_semantics(server: FakeProviderServer, gemini: genai.Client) -> None:
    server.queue(
        Reply(
            "Cached answer.",
            input_tokens=100,
            output_tokens=50,
            cached_tokens=40,
            cache_write_tokens=10,
            reasoning_tokens=20,
        )
    )
    usage = gemini.models.generate_content(model="gemini-3.5-flash", contents=PROMPT).usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == 100  # includes the cached tokens
    assert usage.cached_content_token_count == 40
    assert usage.candidates_token_count == 30  # visible output only
    assert usage.thoughts_token_count == 20
    assert usage.total_token_count == 150


def test_max_output_tokens_truncates(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents=PROMPT,
        config=types.GenerateContentConfig(
            max_output_tokens=4, thinking_config=types.ThinkingConfig(thinking_budget=0)
        ),
    )
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata is not None
    assert response.usage_metadata.candidates_token_count == 4


def test_max_output_tokens_above_limit(gemini: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(
            model="gemini-2.5-flash",
            contents=PROMPT,
            config=types.GenerateContentConfig(max_output_tokens=65_537),
        )
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"


def test_wrong_key_is_400_api_key_invalid(
    make_gemini: Callable[..., genai.Client],
) -> None:
    client = make_gemini(api_key="wrong-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    details = caught.value.details["error"]["details"]
    assert details[0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-1.5-flash", "gemini-9-ultra"])
def test_retired_or_unknown_model_is_404(gemini: genai.Client, model: str) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(model=model, contents=PROMPT)
    assert caught.value.code == 404
    assert caught.value.status == "NOT_FOUND"
    assert f"models/{model} is not found for API version v1beta" in str(caught.value.message)


def test_preview_model_on_v1_is_404(make_gemini: Callable[..., genai.Client]) -> None:
    v1 = make_gemini(api_version="v1")
    with pytest.raises(errors.ClientError) as caught:
        v1.models.generate_content(model="gemini-3-flash-preview", contents=PROMPT)
    assert caught.value.code == 404
    assert "is not found for API version v1," in str(caught.value.message)
    # The same id works on v1beta, and a stable id works on v1.
    assert make_gemini().models.generate_content(model="gemini-3-flash-preview", contents="x").text
    assert v1.models.generate_content(model="gemini-2.5-flash", contents="x").text


def test_thinking_budget_zero_rejected_by_pro(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    with pytest.raises(errors.ClientError):
        gemini.models.generate_content(model="gemini-2.5-pro", contents=PROMPT, config=config)
    gemini.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=config)


def test_multi_turn_contents_with_roles(server: FakeProviderServer, gemini: genai.Client) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="First question")]),
        types.Content(role="model", parts=[types.Part(text="First answer")]),
        types.Content(role="user", parts=[types.Part(text="Second question")]),
    ]
    response = gemini.models.generate_content(model="gemini-3.1-flash-lite", contents=contents)
    assert response.text == "[gemini-3.1-flash-lite] Second question"
    assert server.requests[-1].model == "gemini-3.1-flash-lite"


def test_count_tokens_and_models(gemini: genai.Client) -> None:
    counted = gemini.models.count_tokens(model="gemini-2.5-flash", contents=PROMPT)
    assert counted.total_tokens == 12
    names = {m.name for m in gemini.models.list()}
    assert "models/gemini-3.1-pro-preview" in names
    assert "models/gemini-3-pro-preview" not in names
    model = gemini.models.get(model="gemini-2.5-pro")
    assert model.output_token_limit == 65_536
