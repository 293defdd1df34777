"""Verifiers that make calls: self-consistency, logprob confidence and the LLM judge, through
the public Provider API and the real SDKs against the fake provider server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest
from google import genai
from google.genai import types

import orkestra as o
from orkestra.testing import FakeProviderServer, Reply
from orkestra.verifiers import (
    Answer,
    Request,
    agreement,
    judge,
    logprob_confidence,
    sampler,
    self_consistency,
    token_logprobs,
)

QUESTION = "Janet has 16 eggs, eats 3 and bakes with 4. She sells each for $2. How much?"
CHEAP = Answer("16 - 3 - 4 = 9\n9 * 2 = 18\n#### 18", cost=0.0001)


def test_two_samples_that_agree_pass_and_their_cost_counts(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, max_retries=0)
    fake.queue(Reply("9 eggs at $2 is 9 * 2 = 18 dollars.\n#### 18"), provider="openai")
    check = self_consistency(sampler(provider, model="gpt-4o-mini"))
    verdict = check.verify(Request.of(QUESTION), CHEAP)
    assert verdict.passed and verdict.score == 1.0
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent.model == "gpt-4o-mini"
    assert sent.body["messages"][-1]["content"] == QUESTION
    assert verdict.cost > 0  # what the extra sample billed, from its real usage
    assert verdict.verifier == "self_consistency"


def test_a_sample_that_disagrees_fails(fake: FakeProviderServer) -> None:
    provider = o.Provider("google", fake.api_key, max_retries=0)
    fake.queue(Reply("She sells 13 eggs: 13 * 2 = 26.\n#### 26"), provider="google")
    verdict = self_consistency(sampler(provider, model="gemini-2.5-flash-lite")).verify(
        Request.of(QUESTION), CHEAP
    )
    assert not verdict.passed and verdict.score == 0.0
    assert "0.00" in verdict.reason


def test_two_cheap_models_vote(fake: FakeProviderServer) -> None:
    openai_p = o.Provider("openai", fake.api_key, max_retries=0)
    claude = o.Provider("anthropic", fake.api_key, max_retries=0)
    fake.queue(Reply("#### 18"), provider="openai")
    fake.queue(Reply("That makes 9 * 2 = 20.\n#### 20"), provider="anthropic")
    check = self_consistency(
        [sampler(openai_p, model="gpt-4o-mini"), sampler(claude, model="claude-haiku-4-5")]
    )
    verdict = check.verify(Request.of(QUESTION), CHEAP)
    assert verdict.score == 0.5 and verdict.passed  # at the default threshold 0.5
    assert {r.provider for r in fake.requests} == {"openai", "anthropic"}
    assert [c.factor for c in verdict.checks] == [1.0, 0.0]


def test_several_samples_of_one_model(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, max_retries=0)
    for text in ("#### 18", "#### 18", "#### 17"):
        fake.queue(Reply(text), provider="openai")
    check = self_consistency(sampler(provider, model="gpt-4o-mini", temperature=1.0), samples=3)
    verdict = check.verify(Request.of(QUESTION), CHEAP)
    assert verdict.score == pytest.approx(2 / 3)
    assert [r.body.get("temperature") for r in fake.requests] == [1.0, 1.0, 1.0]


def test_agreement_per_kind_of_answer() -> None:
    mc = Request.of("Which is prime?\nA. 4\nB. 6\nC. 7\nD. 8\nAnswer:")
    assert agreement(mc, Answer("C"), Answer("The answer is C.")) == 1.0
    assert agreement(mc, Answer("C"), Answer("B) 6")) == 0.0
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    js = Request.of("Give a", response_format=schema)
    assert agreement(js, Answer('{"a": 1, "b": 2}'), Answer('{"b": 2, "a": 1}')) == 1.0
    text = Request.of("Describe the sea")
    same = agreement(text, Answer("The sea is blue and deep"), Answer("the sea is deep and blue"))
    other = agreement(text, Answer("The sea is blue and deep"), Answer("Mountains rise high"))
    assert same == 1.0 and other == 0.0
    call = o.ToolCall("1", "f", '{"x": 1}')
    assert agreement(text, Answer("", tool_calls=(call,)), Answer("", tool_calls=(call,))) == 1.0


@pytest.fixture
def oai(fake: FakeProviderServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=fake.api_key, base_url=fake.openai_base_url, max_retries=0
    ) as client:
        yield client


def test_logprob_confidence_from_openai_logprobs(
    fake: FakeProviderServer, oai: openai.OpenAI
) -> None:
    def ask(request: Request) -> Answer:  # a user's own SDK call that asks for logprobs
        completion = oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": request.text}],
            logprobs=True,
        )
        return Answer(
            completion.choices[0].message.content or "",
            logprobs=token_logprobs(completion),
            cost=0.00002,
        )

    fake.queue(Reply("#### 18", logprobs=[-0.01]), provider="openai")
    sure = ask(Request.of(QUESTION))
    verdict = logprob_confidence().verify(Request.of(QUESTION), sure)
    assert sure.logprobs == (-0.01, -0.01)
    assert verdict.passed and verdict.score == pytest.approx(0.99005, abs=1e-4)
    assert verdict.cost == 0.0  # the answer's own logprobs: nothing extra to pay

    fake.queue(Reply("#### 18", logprobs=[-2.0, -1.0]), provider="openai")
    unsure = logprob_confidence(ask).verify(Request.of(QUESTION), CHEAP)  # CHEAP has none
    assert not unsure.passed
    assert unsure.score == pytest.approx(0.2231, abs=1e-4)  # exp(-1.5)
    assert unsure.cost == 0.00002 and "second sample" in unsure.reason


def test_logprob_confidence_from_gemini_logprobs(fake: FakeProviderServer) -> None:
    http = types.HttpOptions(base_url=fake.google_base_url, api_version="v1beta")
    client = genai.Client(api_key=fake.api_key, http_options=http)
    try:
        fake.queue(Reply("Forty-two.", logprobs=[-0.3]), provider="google")
        reply = client.models.generate_content(
            model="gemini-2.5-flash-lite",
            contents="What is 6 times 7?",
            config=types.GenerateContentConfig(response_logprobs=True),
        )
    finally:
        client.close()
    answer = Answer(reply.text or "", logprobs=token_logprobs(reply))
    verdict = logprob_confidence(threshold=0.7).verify(Request.of("What is 6 times 7?"), answer)
    assert verdict.score == pytest.approx(0.7408, abs=1e-4) and verdict.passed


def test_logprob_confidence_says_when_it_cannot_check() -> None:
    with pytest.raises(o.ConfigurationError, match="no token logprobs"):
        logprob_confidence().verify(Request.of("Hi"), Answer("Hello"))


def test_token_logprobs_of_wire_json() -> None:
    openai_json = {"choices": [{"logprobs": {"content": [{"logprob": -0.5}, {"logprob": -1}]}}]}
    assert token_logprobs(openai_json) == (-0.5, -1.0)
    gemini_json = {"candidates": [{"avgLogprobs": -0.25}]}
    assert token_logprobs(gemini_json) == (-0.25,)
    assert token_logprobs({"choices": [{"logprobs": None}]}) is None


def test_the_judge_grades_on_a_budget_model(fake: FakeProviderServer) -> None:
    provider = o.Provider("anthropic", fake.api_key, max_retries=0)
    fake.queue(Reply("The arithmetic checks out.\nGRADE: 9"), provider="anthropic")
    verdict = judge(provider).verify(Request.of(QUESTION), CHEAP)
    assert verdict.passed
    assert verdict.score == pytest.approx(8 / 9)
    assert verdict.verifier == "judge"
    sent = fake.requests[-1]
    assert sent.model == "claude-haiku-4-5"  # the provider's budget tier
    prompt = sent.body["messages"][-1]["content"]
    assert QUESTION in str(prompt) and "#### 18" in str(prompt) and "GRADE:" in str(prompt)
    assert verdict.cost > 0 and "graded 9/10" in verdict.reason


def test_a_low_grade_or_no_grade_fails(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, max_retries=0)
    fake.queue(Reply("Wrong: she sells 9 eggs but the total is off.\nGRADE: 3"), provider="openai")
    low = judge(provider, model="gpt-4.1-mini").verify(Request.of(QUESTION), CHEAP)
    assert not low.passed and low.score == pytest.approx(2 / 9)
    assert fake.requests[-1].model == "gpt-4.1-mini"
    fake.queue(Reply("Looks fine to me."), provider="openai")
    none = judge(provider).verify(Request.of(QUESTION), CHEAP)
    assert not none.passed and none.score == 0.0 and "no grade" in none.reason
    assert none.cost > 0  # the judge's call is paid even when it is useless


def test_async_verification_runs_the_same_checks(fake: FakeProviderServer) -> None:
    provider = o.Provider("openai", fake.api_key, max_retries=0)
    fake.queue(Reply("#### 18"), provider="openai")
    check = self_consistency(sampler(provider, model="gpt-4o-mini"))
    verdict = asyncio.run(check.averify(Request.of(QUESTION), CHEAP))
    assert verdict.passed and len(fake.requests) == 1


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(o.ConfigurationError, match="Provider"):
        sampler(object())
    with pytest.raises(o.ConfigurationError, match="sampler"):
        self_consistency([])
    with pytest.raises(o.ConfigurationError, match="samples"):
        self_consistency(lambda r: CHEAP, samples=0)
    with pytest.raises(o.ConfigurationError, match="placeholders"):
        judge(o.Provider("openai", "sk-test"), rubric="Grade it.")
