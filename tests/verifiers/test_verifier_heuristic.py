"""The default heuristic verifier: every check, on answers a cheap model really writes."""

from __future__ import annotations

import pytest

from orkestra import ConfigurationError, ToolCall
from orkestra.verifiers import FACTORS, Answer, Request, heuristic

check = heuristic()
DUCKS = (
    "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes with 4. "
    "She sells the rest for $2 each. How much does she make every day?"
)
RIGHT = "16 - 3 - 4 = 9 eggs are left.\nShe makes 9 * 2 = $18.\n#### 18"


def failed(verdict_checks: tuple[object, ...]) -> set[str]:
    return {c.name for c in verdict_checks if not c.passed}  # type: ignore[attr-defined]


def test_a_clean_maths_answer_passes() -> None:
    verdict = check.verify(Request.of(DUCKS), Answer(RIGHT, finish_reason="stop"))
    assert verdict.passed
    assert verdict.score > 0.95
    assert verdict.cost == 0.0
    assert verdict.verifier == "heuristic"
    assert failed(verdict.checks) == set()
    assert {"final_answer", "arithmetic", "unused_quantities"} <= {c.name for c in verdict.checks}


@pytest.mark.parametrize("reason", ["length", "max_tokens", "MAX_TOKENS"])
def test_a_truncated_answer_fails(reason: str) -> None:
    verdict = check.verify(Request.of("Explain quantum computing"), Answer("Quantum", reason))
    assert not verdict.passed
    assert "truncated" in failed(verdict.checks)
    assert verdict.score == pytest.approx(FACTORS["truncated"])
    assert reason in verdict.reason


@pytest.mark.parametrize("reason", ["content_filter", "SAFETY", "refusal"])
def test_a_withheld_answer_fails(reason: str) -> None:
    verdict = check.verify(Request.of("Tell me a story"), Answer("", finish_reason=reason))
    assert not verdict.passed and "withheld" in failed(verdict.checks)


def test_an_empty_answer_scores_zero() -> None:
    verdict = check.verify(Request.of("Tell me a story"), Answer("   "))
    assert verdict.score == 0.0 and not verdict.passed


def test_a_refusal_fails() -> None:
    verdict = check.verify(
        Request.of("Write a haiku about autumn"),
        Answer("I'm sorry, but I can't help with that request."),
    )
    assert not verdict.passed
    assert failed(verdict.checks) == {"refusal"}


def test_hedging_lowers_the_score() -> None:
    unsure = check.verify(
        Request.of("Who wrote Hamlet?"), Answer("I'm not sure, but it may be Marlowe.")
    )
    plain = check.verify(Request.of("Who wrote Hamlet?"), Answer("William Shakespeare."))
    assert "hedging" in failed(unsure.checks)
    assert unsure.score == pytest.approx(plain.score * FACTORS["hedging"])
    # In maths, an approximation is a hedge; in an essay "approximately" is just a word.
    approx = check.verify(Request.of(DUCKS), Answer(RIGHT.replace("$18", "approximately $18")))
    assert "hedging" in failed(approx.checks)
    essay = check.verify(
        Request.of("Describe Paris"), Answer("Paris has approximately two million people.")
    )
    assert essay.passed


def test_maths_without_a_final_answer_fails() -> None:
    verdict = check.verify(Request.of(DUCKS), Answer("16 - 3 - 4 = 9 eggs are left to sell"))
    assert not verdict.passed
    assert "final_answer" in failed(verdict.checks)


def test_wrong_arithmetic_fails() -> None:
    wrong = "16 - 3 - 4 = 9 eggs are left.\nShe makes 9 * 2 = $16.\n#### 16"
    verdict = check.verify(Request.of(DUCKS), Answer(wrong))
    assert not verdict.passed
    assert "arithmetic" in failed(verdict.checks)
    assert "1 of 2 written results wrong" in verdict.reason


def test_a_fraction_where_whole_things_are_counted_fails() -> None:
    prompt = "There are 8 gallons shared by 3 people. How many gallons does each get?"
    verdict = check.verify(Request.of(prompt), Answer("8 / 3 = 2.67\n#### 2.67"))
    assert "whole_number" in failed(verdict.checks)
    assert not verdict.passed


def test_an_unused_quantity_lowers_the_score_by_its_share() -> None:
    skipped = "16 - 3 = 13 eggs are left.\nShe makes 13 * 2 = $26.\n#### 26"
    verdict = check.verify(Request.of(DUCKS), Answer(skipped))
    unused = next(c for c in verdict.checks if c.name == "unused_quantities")
    assert not unused.passed
    assert "1 of 4" in unused.detail  # 16, 3, 4 and 2: the 4 is never used
    assert unused.factor == pytest.approx(FACTORS["unused_quantities"] ** 0.25)


def test_a_final_answer_that_is_not_one_number_fails() -> None:
    verdict = check.verify(
        Request.of("A potato takes 1.5 minutes to peel. How long do 60 potatoes take?"),
        Answer("60 * 1.5 = 90\n#### 90 minutes or 1 hour and 30 minutes"),
    )
    assert "final_answer_number" in failed(verdict.checks)


def test_json_is_checked_against_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    request = Request.of("Extract the person: Ada, 36", response_format=schema)
    good = check.verify(request, Answer('{"name": "Ada", "age": 36}'))
    assert good.passed and "json" not in failed(good.checks)
    missing = check.verify(request, Answer('{"name": "Ada"}'))
    assert not missing.passed and "age" in missing.reason
    broken = check.verify(request, Answer('{"name": "Ada", "age": 3'))
    assert not broken.passed and "not valid JSON" in broken.reason
    assert broken.score == pytest.approx(FACTORS["json"])


WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_tool_calls_are_checked_against_their_schemas() -> None:
    request = Request.of("Weather in Paris?", tools=WEATHER)
    good = Answer("", tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),))
    assert check.verify(request, good).passed
    bad_args = Answer("", tool_calls=(ToolCall("c1", "get_weather", '{"town": "Paris"}'),))
    verdict = check.verify(request, bad_args)
    assert not verdict.passed and "city" in verdict.reason
    unknown = Answer("", tool_calls=(ToolCall("c1", "get_time", "{}"),))
    assert "undeclared tool" in check.verify(request, unknown).reason
    not_json = Answer("", tool_calls=(ToolCall("c1", "get_weather", "{city: Paris"),))
    assert "not JSON" in check.verify(request, not_json).reason
    required = Request.of("Weather in Paris?", tools=WEATHER, tool_choice="required")
    assert not check.verify(required, Answer("It is sunny.")).passed


def test_a_multiple_choice_answer_must_choose_one_option() -> None:
    request = Request.of("Which is prime?\nA. 4\nB. 6\nC. 7\nD. 8\nAnswer:")
    assert check.verify(request, Answer("C. 7 is prime.")).passed
    assert "option_chosen" in failed(check.verify(request, Answer("Seven is.")).checks)


MBPP = """Write a python function to add two numbers.
Your code should pass these tests:

assert add(2, 3) == 5
assert add(-1, 1) == 0"""


def test_python_that_does_not_parse_fails() -> None:
    broken = Answer("```python\ndef add(a, b)\n    return a+b\n```")
    verdict = check.verify(Request.of(MBPP), broken)
    assert not verdict.passed
    assert "python_syntax" in failed(verdict.checks)


def test_python_runs_the_prompts_asserts_in_the_sandbox() -> None:
    code = "```python\ndef add(a, b):\n    return a + b\n```"
    right = check.verify(Request.of(MBPP), Answer(code))
    assert right.passed
    tested = next(c for c in right.checks if c.name == "prompt_tests")
    assert tested.passed and "2 test(s)" in tested.detail
    wrong = check.verify(Request.of(MBPP), Answer(code.replace("a + b", "a * b")))
    assert not wrong.passed
    assert "prompt_tests" in failed(wrong.checks)
    assert "AssertionError" in wrong.reason


def test_python_runs_the_prompts_doctests() -> None:
    prompt = 'def double(x):\n    """Twice x.\n\n    >>> double(4)\n    8\n    """\n'
    body = "```python\ndef double(x):\n    return x * 2\n```"
    assert check.verify(Request.of(prompt), Answer(body)).passed
    wrong = check.verify(Request.of(prompt), Answer(body.replace("x * 2", "x + 2")))
    assert "prompt_tests" in failed(wrong.checks)


def test_code_that_never_ends_fails_on_timeout() -> None:
    slow = heuristic(timeout=1.0)
    verdict = slow.verify(
        Request.of(MBPP), Answer("```python\ndef add(a, b):\n    while True:\n        pass\n```")
    )
    assert not verdict.passed
    assert "did not finish in 1 s" in verdict.reason


def test_tests_are_not_run_when_asked_not_to() -> None:
    quick = heuristic(run_tests=False)
    verdict = quick.verify(
        Request.of(MBPP), Answer("```python\ndef add(a, b):\n    return a * b\n```")
    )
    assert verdict.passed
    assert "prompt_tests" not in {c.name for c in verdict.checks}


def test_factors_and_threshold_can_be_set() -> None:
    lenient = heuristic(factors={"hedging": 1.0})
    answer = Answer("I'm not sure, but it may be Marlowe.")
    assert lenient.verify(Request.of("Who wrote Hamlet?"), answer).passed
    strict = heuristic(threshold=0.99)
    assert not strict.verify(Request.of(DUCKS), Answer(RIGHT * 3)).passed  # long working
    with pytest.raises(ConfigurationError, match="unknown check"):
        heuristic(factors={"spelling": 0.5})
    with pytest.raises(ConfigurationError, match="in \\[0, 1\\]"):
        heuristic(factors={"hedging": 2})
    with pytest.raises(ConfigurationError, match="threshold"):
        heuristic(threshold=1.5)
