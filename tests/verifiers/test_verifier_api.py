"""The verifier contract: requests, answers, verdicts, your own functions, combinations, and
``o.verifiers`` staying out of ``import orkestra``."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import orkestra as o
from orkestra.testing import FakeProviderServer
from orkestra.verifiers import (
    Answer,
    Request,
    Verdict,
    Verifier,
    all_of,
    as_verifier,
    averify,
    function,
    heuristic,
)


def test_a_request_is_checked_like_a_call() -> None:
    request = Request.of(messages=[{"role": "user", "content": "What is 2+2?"}])
    assert request.text == "What is 2+2?"
    assert request.messages is not None and request.messages[0].role == "user"
    with pytest.raises(o.InvalidRequestError):
        Request.of("hi", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(o.InvalidRequestError):
        Request.of("hi", response_format={"type": "array"})
    with pytest.raises(o.ConfigurationError):
        Request.of("   ")


def test_a_request_asks_again_with_the_same_arguments(fake: FakeProviderServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    request = Request.of("Give me a", response_format=schema)
    response = o.Provider("openai", fake.api_key).chat(
        **request.call_arguments(), model="gpt-4o-mini"
    )
    assert response.parsed == {"a": 1}  # the fake answers with JSON sampled from the schema
    assert fake.requests[-1].body["response_format"]["type"] == "json_schema"


def test_an_answer_from_a_response_carries_its_cost(fake: FakeProviderServer) -> None:
    response = o.Provider("google", fake.api_key).chat("Hello there", model="gemini-2.5-flash-lite")
    answer = Answer.from_response(response, logprobs=[-0.1])
    assert answer.text == response.text
    assert answer.cost == response.total_cost > 0
    assert answer.finish_reason == "STOP"
    assert answer.usage == response.usage
    assert answer.model == "gemini-2.5-flash-lite"
    assert answer.logprobs == (-0.1,)


def test_a_verdict_is_validated_and_reads_well() -> None:
    verdict = Verdict(False, 0.25, "no final answer", cost=0.001, verifier="heuristic")
    assert str(verdict) == "heuristic failed (score 0.25, $0.001000): no final answer"
    with pytest.raises(o.ConfigurationError, match="score"):
        Verdict(True, 1.5, "")
    with pytest.raises(o.ConfigurationError, match="cost"):
        Verdict(True, 0.5, "", cost=-1.0)


def test_your_own_function_in_every_shape() -> None:
    req, ans = Request.of("Say hi"), Answer("Hello, sorry!")
    assert not function(lambda r, a: "sorry" not in a.text.lower()).verify(req, ans).passed
    assert function(lambda r, a: 0.8).verify(req, ans).score == 0.8
    pair = function(lambda r, a: (0.2, "too apologetic"), name="tone").verify(req, ans)
    assert (pair.score, pair.reason, pair.verifier, pair.passed) == (
        0.2,
        "too apologetic",
        "tone",
        False,
    )
    own = function(lambda r, a: Verdict(True, 0.9, "checked", cost=0.002)).verify(req, ans)
    assert own.cost == 0.002 and own.passed
    with pytest.raises(o.ConfigurationError, match="returned"):
        function(lambda r, a: "yes").verify(req, ans)
    with pytest.raises(o.ConfigurationError, match="synchronous"):

        async def later(r: Request, a: Answer) -> bool:
            return True

        function(later)


def test_as_verifier_takes_verifiers_functions_and_names() -> None:
    built = heuristic()
    assert as_verifier(built) is built
    assert isinstance(as_verifier("heuristic"), Verifier)
    assert as_verifier(lambda r, a: True).verify(Request.of("x"), Answer("y")).passed
    with pytest.raises(o.ConfigurationError, match="unknown verifier"):
        as_verifier("oracle")
    with pytest.raises(o.ConfigurationError, match="not a verifier"):
        as_verifier(42)  # type: ignore[arg-type]


def test_all_of_stops_at_the_first_failure() -> None:
    called: list[str] = []

    def expensive(r: Request, a: Answer) -> Verdict:
        called.append("expensive")
        return Verdict(True, 0.9, "fine", cost=0.01)

    check = all_of("heuristic", expensive)
    refused = check.verify(Request.of("Write a poem"), Answer("I'm sorry, but I can't do that."))
    assert not refused.passed and called == []  # the free check failed: no paid call
    assert refused.verifier == "all_of" and "refusal" in refused.reason
    poem = check.verify(Request.of("Write a poem"), Answer("Roses are red."))
    assert poem.passed and called == ["expensive"]
    assert poem.cost == 0.01 and poem.score == 0.9
    with pytest.raises(o.ConfigurationError):
        all_of()


def test_averify_works_for_any_verifier() -> None:
    class Plain:
        def verify(self, request: Request, answer: Answer) -> Verdict:
            return Verdict(True, 1.0, "plain")

    assert asyncio.run(averify(Plain(), Request.of("x"), Answer("y"))).reason == "plain"
    scored = asyncio.run(averify(heuristic(), Request.of("x"), Answer("")))
    assert not scored.passed


def test_import_orkestra_stays_light_and_verifiers_load_on_use() -> None:
    code = (
        "import sys, orkestra as o\n"
        "heavy = ('orkestra.verifiers', 'jsonschema', 'pydantic', 'openai', 'anthropic',"
        " 'google.genai')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
        "check = o.verifiers.heuristic()\n"
        "print(type(check).__name__, ','.join(m for m in heavy[1:] if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert before == ""
    assert after == "HeuristicVerifier "  # still no jsonschema, pydantic or SDK
    assert "verifiers" in o.__all__
    with pytest.raises(AttributeError):
        o.not_a_thing  # type: ignore[attr-defined]  # noqa: B018
