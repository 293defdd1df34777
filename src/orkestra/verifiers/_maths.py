"""Reading a maths answer: its final answer, its arithmetic, the quantities it used. Pure.

Arithmetic is evaluated by walking a parsed ``ast`` of numbers and ``+ - * / **`` only;
nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "FinalAnswer",
    "arithmetic_errors",
    "choice_letters",
    "chosen_options",
    "final_answer",
    "is_count_question",
    "looks_like_maths",
    "numbers_in",
    "parse_number",
    "unused_quantities",
]

# A number as people write it: 1,234.5 / $12 / 3.5% / -4 / .5
_NUMBER = r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?"
_NUMBER_RE = re.compile(r"(?<![\w.])(-?\$?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)(%?)")
_FRACTION_RE = re.compile(r"(?<![\w./])(\d+)\s*/\s*(\d+)(?![\w./])")

_MATHS_CUES = re.compile(
    r"(?i)\b(how (?:many|much|long|far|old|fast|often)|what(?:['’]s| is| was| will be) the "
    r"(?:total|sum|product|difference|value|number|cost|price|area|perimeter|volume|average|"
    r"percentage|ratio|probability|speed|distance|depth|amount)|calculate|compute|solve|evaluate|"
    r"what percent(?:age)?|find the (?:value|number|total|sum|area|sum|result))\b"
)
_EXPRESSION = re.compile(r"\d\s*[-+*/×÷^]\s*\d")
_NUMBER_WORDS = re.compile(
    r"(?i)\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|half|third|quarter|twice|double|triple)\b"
)
_QUANTITY_WORDS = re.compile(
    r"(?i)\b(total|altogether|combined|in all|remain(?:ing|s)?|left|each|per|profit|cost|"
    r"price|salary|pay|earn|spend|save|percent|discount|average|weigh|minutes|hours|days|"
    r"miles|dollars|number|maximum|minimum|final)\b|%|\$"
)

# Where an answer states its result, most explicit first.
_MARKERS = (
    re.compile(r"^\s*#{2,}\s*(?P<a>.+?)\s*$", re.M),
    re.compile(r"\\boxed\{(?P<a>[^{}]+)\}"),
    re.compile(r"(?i)\b(?:final answer|the answer)\s*(?:is\s*[:=]?|[:=])\s*(?P<a>[^\n]+)"),
    re.compile(r"(?im)^\s*\**answer\**\s*[:=]\s*(?P<a>.+?)\s*$"),
)
_CONCLUDING = re.compile(
    r"(?i)^\W*(so|therefore|thus|hence|in total|altogether|overall|in all|the total|in the end"
    r"|this means|that means|as a result|finally|in conclusion)\b"
)


def parse_number(token: str) -> float | None:
    """``"$1,234.50"`` → 1234.5, ``"3/4"`` → 0.75, ``"12%"`` → 12.0; None if not a number."""
    text = token.strip().replace("$", "").replace(",", "").rstrip("%").strip()
    fraction = re.fullmatch(r"(-?\d+)\s*/\s*(\d+)", text)
    if fraction:
        denominator = int(fraction.group(2))
        return int(fraction.group(1)) / denominator if denominator else None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text``, in order (``<<...>>`` calculator notes included)."""
    out = []
    for match in _NUMBER_RE.finditer(text):
        value = parse_number(match.group(1))
        if value is not None:
            out.append(value)
    return out


_OPTION = re.compile(r"(?m)^\s*\(?([A-J])[.)]\s+\S")


def choice_letters(prompt: str) -> str:
    """The option letters of a multiple-choice question ("ABCD"), or "" when it is not one:
    at least three consecutive options, each on its own line ("A. ...", "(B) ...")."""
    present = set(_OPTION.findall(prompt))
    run = ""
    for letter in "ABCDEFGHIJ":
        if letter not in present:
            break
        run += letter
    return run if len(run) >= 3 else ""


def chosen_options(answer: str, letters: str) -> list[str]:
    """The options an answer to a multiple-choice question commits to ("Answer: B", "(C)",
    "The answer is D", or a first line that is just a letter)."""
    pattern = rf"(?i)(?:answer\s*(?:is|:)?\s*\(?|^\s*\(?|\*\*\(?)([{letters}])\b[).:*]?"
    found = [m.group(1).upper() for m in re.finditer(pattern, answer, re.M)]
    return list(dict.fromkeys(found))


def looks_like_maths(prompt: str) -> bool:
    """A question with numbers that asks for a quantity (a word problem, a calculation), and
    not a multiple-choice question (whose answer is an option, see :func:`choice_letters`)."""
    if choice_letters(prompt):
        return False
    spelled = len(_NUMBER_WORDS.findall(prompt))
    if not re.search(r"\d", prompt) and spelled < 2:
        return False
    if _MATHS_CUES.search(prompt) or _EXPRESSION.search(prompt):
        return True
    # "What was the original price of the book?": a question about quantities, with several.
    asks = "?" in prompt or re.search(r"(?i)\b(find|determine|work out)\b", prompt)
    several = len(numbers_in(prompt)) + spelled >= 2
    return bool(asks and several and _QUANTITY_WORDS.search(prompt))


def is_count_question(prompt: str) -> bool:
    """The question asks how many of something (whole things: people, eggs, trips)."""
    return bool(re.search(r"(?i)\bhow many\b", prompt))


@dataclass(frozen=True)
class FinalAnswer:
    """The result an answer states: its text, its value (the first number in it) and whether an
    explicit marker (``####``, ``\\boxed{}``, "the answer is") introduced it."""

    text: str
    value: float | None
    explicit: bool
    numbers: int
    """How many distinct numbers the stated result contains (more than one is ambiguous)."""


def _stated(text: str, explicit: bool) -> FinalAnswer:
    values = [v for v in numbers_in(text)]
    value = values[0] if values else None
    return FinalAnswer(text.strip(), value, explicit, len(set(values)))


def final_answer(answer: str) -> FinalAnswer | None:
    """The final answer an answer states, or None when it states none.

    Explicit markers are searched from the end; failing those, the last line counts when it
    concludes ("So, ...", "Therefore ...", "In total ...") and contains a number.
    """
    for marker in _MARKERS:
        found = list(marker.finditer(answer))
        if found:
            return _stated(found[-1].group("a"), True)
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if lines:
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", lines[-1])
        last = sentences[-1] if sentences[-1].strip(" .") else lines[-1]
        for candidate in (last, lines[-1]):
            if _CONCLUDING.search(candidate) and numbers_in(candidate):
                return _stated(candidate, False)
    return None


# ----------------------------------------------------------------------------- arithmetic

_OPERATORS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_TERM = r"\(*\s*-?\$?\d[\d,]*(?:\.\d+)?\s*\)*"
_OP = r"\s*(?:[-+*/×÷^]|\\\*|x(?=\s))\s*"
_EXPR = rf"{_TERM}(?:{_OP}{_TERM})*"
_CHAIN = re.compile(rf"(?<![\w.,/]){_EXPR}(?:\s*=\s*{_EXPR})+(?![\w/]|[.,]\d)")
_NOTE = re.compile(r"<<([^<>]*)>>")


def _evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression, or None if it is anything else."""
    text = (
        expression.replace("$", "")
        .replace(",", "")
        .replace("\\*", "*")
        .replace("×", "*")
        .replace("÷", "/")
        .replace("^", "**")
    )
    text = re.sub(r"(?<=[\d)\s])x(?=[\s(\d])", "*", text).strip()
    if not text or len(text) > 200:
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            if isinstance(node.value, bool):
                raise ValueError("not a number")
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = walk(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 12 or abs(left) > 1e6):
                raise ValueError("too large")
            return _OPERATORS[type(node.op)](left, right)
        raise ValueError("not arithmetic")

    try:
        value = walk(tree.body)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _decimals(shown: str) -> int | None:
    """Decimal places of a side that is a single written number (None for an expression)."""
    match = re.fullmatch(r"\s*\(*\s*-?\$?\d[\d,]*(?:\.(\d+))?\s*\)*\s*", shown)
    if not match:
        return None
    return len(match.group(1) or "")


def _agrees(value: float, shown_value: float, shown: str) -> bool:
    if abs(value - shown_value) <= 1e-9 * max(1.0, abs(value)):
        return True
    places = _decimals(shown)
    # A written result may be rounded to the places it shows (8/3 = 2.67), but not to a whole.
    return places is not None and places > 0 and abs(value - shown_value) <= 0.5 * 10**-places
    # (An integer shown for a fractional value, 8/3 = 3, is a wrong result.)


def _check_chain(chain: str) -> tuple[int, int]:
    """(checked, wrong) equalities in one ``a = b = c`` chain."""
    sides = chain.split("=")
    values = [_evaluate(side) for side in sides]
    checked = wrong = 0
    for i in range(1, len(sides)):
        left, right = values[i - 1], values[i]
        if left is None or right is None:
            continue
        # Only claims with an operator on the left are checked ("3 * 4 = 12", not "12 = 12").
        if _decimals(sides[i - 1]) is not None and i == 1:
            continue
        checked += 1
        if not _agrees(left, right, sides[i]):
            wrong += 1
    return checked, wrong


def arithmetic_errors(answer: str) -> tuple[int, int]:
    """(checked, wrong): the equalities ``expression = value`` written in ``answer`` (and in
    its ``<<expression=value>>`` calculator notes) that could be recomputed, and how many of
    them are wrong."""
    checked = wrong = 0
    for note in _NOTE.findall(answer):
        c, w = _check_chain(note)
        checked, wrong = checked + c, wrong + w
    prose = _NOTE.sub(" ", answer)
    for match in _CHAIN.finditer(prose):
        c, w = _check_chain(match.group(0))
        checked, wrong = checked + c, wrong + w
    return checked, wrong


def unused_quantities(prompt: str, answer: str) -> tuple[int, int]:
    """(given, unused): the distinct numbers written in the question, and how many of them the
    answer never mentions. A solution that ignores a given quantity has usually missed a step."""
    given = set(numbers_in(prompt))
    used = set(numbers_in(answer))
    used |= {v * 100 for v in used} | {v / 100 for v in used}  # 25% written as 0.25, or back
    unused = [v for v in given if not any(abs(v - u) <= 1e-9 * max(1.0, abs(v)) for u in used)]
    return len(given), len(unused)


def derived(final: FinalAnswer, prompt: str, answer: str) -> bool:
    """Whether the final value is the result of a step the answer shows (it appears after an
    ``=`` or in the working before the final line), or is a quantity of the question."""
    if final.value is None:
        return False
    value = final.value
    body = answer.replace(final.text, " ") if final.text else answer
    results = [
        parse_number(m.group(1)) for m in re.finditer(r"=\s*\$?(-?\d[\d,]*(?:\.\d+)?)", answer)
    ]
    pool = [v for v in results if v is not None] + numbers_in(body) + numbers_in(prompt)
    return any(abs(value - v) <= 1e-6 * max(1.0, abs(value)) for v in pool)
