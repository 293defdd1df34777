"""Token logprobs on the wire, as OpenAI chat and Gemini send them when asked."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from google import genai
from google.genai import types

from orkestra.testing import FakeProviderServer, Reply

USER = [{"role": "user", "content": "What is 6 times 7?"}]


def test_openai_sends_logprobs_only_when_asked(
    server: FakeProviderServer, oai: openai.OpenAI
) -> None:
    server.queue(Reply("The answer is 42.", logprobs=[-0.25, -1.5]), provider="openai")
    asked = oai.chat.completions.create(
        model="gpt-4.1-mini",
        messages=USER,
        logprobs=True,
        top_logprobs=2,  # type: ignore[arg-type]
    )
    content = asked.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None
    assert "".join(t.token for t in content) == "The answer is 42."
    assert [t.logprob for t in content] == [-0.25, -1.5, -0.25, -1.5, -0.25]
    assert content[0].bytes == list(b"The ")
    assert content[0].top_logprobs[0].token == "The "  # the chosen token leads its top list

    plain = oai.chat.completions.create(model="gpt-4.1-mini", messages=USER)  # type: ignore[arg-type]
    assert plain.choices[0].logprobs is None


def test_gemini_sends_average_and_chosen_candidates_when_asked(
    server: FakeProviderServer, make_gemini: Callable[..., genai.Client]
) -> None:
    client = make_gemini()
    server.queue(Reply("Forty-two.", logprobs=[-0.5]), provider="google")
    config = types.GenerateContentConfig(response_logprobs=True, logprobs=2)
    answer = client.models.generate_content(
        model="gemini-3-flash-preview", contents="What is 6 times 7?", config=config
    )
    candidate = answer.candidates[0]  # type: ignore[index]
    result = candidate.logprobs_result
    assert result is not None and result.chosen_candidates is not None
    assert "".join(c.token or "" for c in result.chosen_candidates) == "Forty-two."
    assert candidate.avg_logprobs == pytest.approx(-0.5)
    assert result.log_probability_sum == pytest.approx(-0.5 * 3)
    assert result.top_candidates is not None and len(result.top_candidates) == 3

    plain = client.models.generate_content(model="gemini-3-flash-preview", contents="Hi")
    assert plain.candidates[0].avg_logprobs is None  # type: ignore[index]
    assert plain.candidates[0].logprobs_result is None  # type: ignore[index]


def test_a_reply_refuses_impossible_logprobs() -> None:
    with pytest.raises(ValueError, match="logprobs"):
        Reply("x", logprobs=[0.5])
    with pytest.raises(ValueError, match="logprobs"):
        Reply("x", logprobs=[])
