"""Reading maths answers: final answers, arithmetic, the question's quantities."""

from __future__ import annotations

import pytest

from orkestra.verifiers import _maths


@pytest.mark.parametrize(
    ("token", "value"),
    [("$1,234.50", 1234.5), ("3/4", 0.75), ("12%", 12.0), ("-4", -4.0), ("x", None), ("1/0", None)],
)
def test_numbers_as_people_write_them(token: str, value: float | None) -> None:
    assert _maths.parse_number(token) == value


def test_numbers_in_text() -> None:
    assert _maths.numbers_in("She paid $1,200 for 3 items, 25% off, v2 aside.") == [1200, 3, 25]


@pytest.mark.parametrize(
    ("answer", "text", "value", "explicit"),
    [
        ("16 - 3 = 13\n13 - 4 = 9\n#### 18", "18", 18.0, True),
        ("So the total is \\boxed{42}.", "42", 42.0, True),
        ("Working...\nThe answer is: $7,425.", "$7,425.", 7425.0, True),
        ("Answer: 12 apples", "12 apples", 12.0, True),
        ("She has 5 cats.\nSo, Shondra has 9 plants.", "So, Shondra has 9 plants.", 9.0, False),
    ],
)
def test_final_answers(answer: str, text: str, value: float, explicit: bool) -> None:
    final = _maths.final_answer(answer)
    assert final is not None
    assert final.text == text
    assert final.value == value
    assert final.explicit is explicit


def test_no_final_answer_when_the_working_just_stops() -> None:
    assert _maths.final_answer("He buys 3 apples at $2 each, which is 3 * 2 = 6") is None
    assert _maths.final_answer("") is None


def test_a_final_answer_with_two_numbers_is_ambiguous() -> None:
    final = _maths.final_answer("#### 90 minutes or 1 hour and 30 minutes")
    assert final is not None and final.numbers == 3 and final.value == 90


def test_arithmetic_right_and_wrong() -> None:
    assert _maths.arithmetic_errors("3 x 60 = 180 and 180 * 3 = 540") == (2, 0)
    assert _maths.arithmetic_errors("5 * 75 + 120 = 795") == (1, 1)
    # A chain is checked link by link; GSM8K's calculator notes too.
    assert _maths.arithmetic_errors("10 + 0.6 * 10 = 10 + 6 = 16") == (2, 0)
    assert _maths.arithmetic_errors("<<5*75+120=675+120=795>>795") == (2, 1)
    # Rounded to the places shown is fine; rounded to a whole number is not.
    assert _maths.arithmetic_errors("8 / 3 = 2.67") == (1, 0)
    assert _maths.arithmetic_errors("8 / 3 = 3") == (1, 1)
    assert _maths.arithmetic_errors("$80,000 + $50,000 = $130,000") == (1, 0)


def test_no_arithmetic_is_made_up() -> None:
    assert _maths.arithmetic_errors("It was 1999 = a good year; version 2.0 = better") == (0, 0)
    assert _maths.arithmetic_errors("12 = 12") == (0, 0)  # a restatement is not a claim
    assert _maths._evaluate("__import__('os')") is None
    assert _maths._evaluate("9 ** 9 ** 9") is None  # too large to compute


def test_quantities_the_answer_never_used() -> None:
    prompt = "Tom has 12 apples, gives away 5 and buys 3 more. How many apples does he have?"
    assert _maths.unused_quantities(prompt, "12 - 5 = 7, 7 + 3 = 10. #### 10") == (3, 0)
    assert _maths.unused_quantities(prompt, "12 - 5 = 7. #### 7") == (3, 1)


def test_whether_the_final_answer_comes_out_of_the_working() -> None:
    prompt = "What is 6 times 7?"
    final = _maths.final_answer("6 * 7 = 42\n#### 42")
    assert final is not None and _maths.derived(final, prompt, "6 * 7 = 42\n#### 42")
    guess = _maths.final_answer("It is a well-known number.\n#### 41")
    assert guess is not None and not _maths.derived(guess, prompt, "It is a well-known number.")


@pytest.mark.parametrize(
    ("prompt", "maths"),
    [
        ("Janet's ducks lay 16 eggs per day. She eats 3. How many are left?", True),
        ("What is 17 * 23?", True),
        ("Kyle bought a book for $19.50 with a 25% discount. What was the original price?", True),
        ("Write a haiku about autumn", False),
        ("Who won the World Cup in 1998?", False),
        ("What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:", False),  # multiple choice
    ],
)
def test_what_counts_as_a_maths_question(prompt: str, maths: bool) -> None:
    assert _maths.looks_like_maths(prompt) is maths


def test_multiple_choice_options_and_choices() -> None:
    prompt = "Which is prime?\nI. 9\nA. 4\nB. 6\nC. 7\nD. 8\nAnswer:"
    assert _maths.choice_letters(prompt) == "ABCD"
    assert _maths.choice_letters("Pick one: A. yes") == ""
    assert _maths.chosen_options("The answer is C.", "ABCD") == ["C"]
    assert _maths.chosen_options("B) 6\nbecause...", "ABCD") == ["B"]
    assert _maths.chosen_options("Seven is prime, so I'd say so.", "ABCD") == []
