"""The real openai SDK against the fake server: chat, responses, models, validation."""

from __future__ import annotations

import openai
import pytest

from orkestra.testing import FakeProviderServer, Reply

USER = [{"role": "user", "content": "Hello there, how are you doing today my friend?"}]


def test_chat_completion_text_usage_and_snapshot_model(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
    )
    choice = completion.choices[0]
    assert choice.message.content == "[gpt-4o-mini] Hello there, how are you doing today my friend?"
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    usage = completion.usage
    assert usage is not None
    # ceil(chars / 4) of "Be brief." + "\n" + the user text; the reply likewise.
    assert usage.prompt_tokens == 15
    assert usage.completion_tokens == 16
    assert usage.total_tokens == 31


def test_chat_is_deterministic(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="gpt-4.1", messages=USER)
    second = oai.chat.completions.create(model="gpt-4.1", messages=USER)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage


def test_chat_stream_with_usage_chunk(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) >= 3
    assert "".join(deltas) == "[gpt-4o-mini] Hello there, how are you doing today my friend?"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None and final.usage.completion_tokens == 16
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_scripted_reply_usage_semantics(server: FakeProviderServer, oai: openai.OpenAI) -> None:
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
    completion = oai.chat.completions.create(model="gpt-5-mini", messages=USER)
    assert completion.choices[0].message.content == "Cached answer."
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 100  # includes the cached tokens
    assert usage.completion_tokens == 50  # includes the reasoning tokens
    assert usage.total_tokens == 150
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 40
    assert usage.prompt_tokens_details.cache_write_tokens == 10
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 20


def test_max_completion_tokens_truncates_with_length(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-5-nano", messages=USER, max_completion_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert completion.choices[0].message.content == "[gpt-5-nano]"  # 3 tokens = 12 chars


def test_reasoning_model_rejects_max_tokens(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="o3", messages=USER, max_tokens=100)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "max_tokens"
    assert "Use 'max_completion_tokens' instead." in caught.value.message


def test_reasoning_model_rejects_non_default_temperature(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-5.6-sol", messages=USER, temperature=0.2)
    assert caught.value.code == "unsupported_value"
    oai.chat.completions.create(model="gpt-5.6-sol", messages=USER, temperature=1)
    oai.chat.completions.create(model="gpt-4o", messages=USER, temperature=0.2, max_tokens=50)


def test_max_tokens_above_the_model_limit(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=32000)
    assert caught.value.body["message"] == (  # type: ignore[index]
        "max_tokens is too large: 32000. This model supports at most 16384 completion tokens,"
        " whereas you provided 32000."
    )
    assert caught.value.param == "max_tokens"
    oai.chat.completions.create(model="gpt-5", messages=USER, max_completion_tokens=128_000)


def test_empty_messages(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.param == "messages"


@pytest.mark.parametrize("model", ["o4-mini", "gpt-4.1-nano", "gpt-9-imaginary"])
def test_retired_or_unknown_model_is_404(oai: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model=model, messages=USER)
    assert caught.value.code == "model_not_found"
    assert f"The model `{model}` does not exist" in caught.value.message


def test_wrong_key_is_authentication_error(server: FakeProviderServer) -> None:
    with (
        openai.OpenAI(api_key="sk-wrong-key-123456", base_url=server.openai_base_url) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in caught.value.message


def test_responses_reasoning_model(server: FakeProviderServer, oai: openai.OpenAI) -> None:
    server.queue(Reply("Sure.", cached_tokens=3, reasoning_tokens=64))
    response = oai.responses.create(
        model="gpt-5-mini", instructions="Be brief.", input="Hello", reasoning={"effort": "low"}
    )
    assert response.output_text == "Sure."
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.status == "completed"
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == 4  # ceil(len("Be brief.\nHello") / 4), cache included
    assert usage.input_tokens_details.cached_tokens == 3
    assert usage.output_tokens == 2 + 64
    assert usage.output_tokens_details.reasoning_tokens == 64


def test_responses_stream_events(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-4.1-mini", input="Stream this text", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 3
    assert "".join(deltas) == "[gpt-4.1-mini] Stream this text"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "[gpt-4.1-mini] Stream this text"
    assert final.usage is not None and final.usage.output_tokens == 8


def test_responses_stream_helper_and_incomplete(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="gpt-4o", input="Hi", max_output_tokens=16) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "[gpt-4o] Hi"
    long = oai.responses.create(model="gpt-4o", input="word " * 200, max_output_tokens=16)
    assert long.status == "incomplete"
    assert long.incomplete_details is not None
    assert long.incomplete_details.reason == "max_output_tokens"
    assert long.usage is not None and long.usage.output_tokens == 16


def test_responses_validation(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="gpt-5", input="Hi", temperature=0.3)
    assert caught.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="gpt-4o", input="Hi", reasoning={"effort": "low"})
    assert caught.value.param == "reasoning.effort"
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="gpt-4o", input="Hi", max_output_tokens=5)
    assert caught.value.code == "integer_below_min_value"


def test_models_list_and_retrieve(oai: openai.OpenAI) -> None:
    ids = {m.id for m in oai.models.list()}
    assert {"gpt-4o-mini", "gpt-5", "o3", "gpt-5.6-luna"} <= ids
    assert "o4-mini" not in ids
    assert oai.models.retrieve("gpt-4.1").id == "gpt-4.1"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("gpt-4.1-nano")
