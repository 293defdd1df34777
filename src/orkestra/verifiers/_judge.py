"""An LLM judge: a budget model grades the cheap answer against a fixed rubric."""

from __future__ import annotations

import re
from typing import Any

from orkestra.errors import ConfigurationError
from orkestra.verifiers._base import Answer, Assessment, Check, Request, ScoredVerifier

__all__ = ["RUBRIC", "LLMJudge", "judge", "parse_grade"]

RUBRIC = """\
You are a strict grader. Decide whether the ANSWER correctly and completely answers the \
QUESTION. Work through it yourself first: check every fact, every step of reasoning and every \
calculation. An answer that is wrong in any part that matters, cut off, evasive or that does \
not answer what was asked gets a low grade, however well written it is.

QUESTION:
<<<
{question}
>>>

ANSWER:
<<<
{answer}
>>>

Grade from 1 (wrong) to 10 (certainly correct and complete). Give one or two sentences of \
justification, then end with a line of the form
GRADE: <1-10>"""
"""The fixed rubric; ``{question}`` and ``{answer}`` are filled in."""

_GRADE = re.compile(r"(?i)\bgrade\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?")


def parse_grade(text: str) -> float | None:
    """The judge's grade (1..10) as a score in 0..1, from its last ``GRADE: n`` line."""
    found = _GRADE.findall(text)
    if not found:
        return None
    grade = float(found[-1])
    if not 1.0 <= grade <= 10.0:
        return None
    return (grade - 1.0) / 9.0


def _shown(answer: Answer) -> str:
    calls = "\n".join(f"[calls tool {c.name} with {c.arguments}]" for c in answer.tool_calls)
    return "\n".join(part for part in (answer.text, calls) if part) or "(empty)"


class LLMJudge(ScoredVerifier):
    """A budget model grades the answer with :data:`RUBRIC`; the score is (grade − 1) / 9.

    ``provider``: an :class:`orkestra.Provider`; the judge calls its public ``chat`` on
    ``model`` (default: the provider's budget-tier model). The judge's call is the verdict's
    cost. A reply without a grade fails the answer (score 0): an unchecked answer is not a
    passed one.
    """

    name = "judge"

    def __init__(
        self,
        provider: Any,
        *,
        model: str | None = None,
        rubric: str = RUBRIC,
        threshold: float = 0.7,
        max_tokens: int = 400,
    ) -> None:
        super().__init__(threshold)
        if not callable(getattr(provider, "chat", None)):
            raise ConfigurationError(f"judge() needs a Provider (with .chat), not {provider!r}")
        if "{question}" not in rubric or "{answer}" not in rubric:
            raise ConfigurationError("a rubric needs the {question} and {answer} placeholders")
        self.provider = provider
        self.model = model
        self.rubric = rubric
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"LLMJudge(model={self.judge_model!r}, threshold={self.threshold:g})"

    @property
    def judge_model(self) -> str:
        if self.model is not None:
            return self.model
        tiers = getattr(self.provider, "tier_models", None)
        if callable(tiers):
            return str(tiers()["budget"].id)
        raise ConfigurationError("name the judge's model: judge(provider, model=...)")

    def assess(self, request: Request, answer: Answer) -> Assessment:
        # str.replace, not format: the question and answer may hold braces of their own.
        prompt = self.rubric.replace("{question}", request.text).replace("{answer}", _shown(answer))
        reply = self.provider.chat(prompt, model=self.judge_model, max_tokens=self.max_tokens)
        cost = float(reply.total_cost)
        score = parse_grade(reply.text)
        if score is None:
            detail = f"the judge ({reply.model}) gave no grade"
            return Assessment(0.0, detail, cost, (Check("grade", False, detail, 0.0),))
        detail = f"{reply.model} graded {1 + 9 * score:g}/10"
        check = Check("grade", score >= self.threshold, detail, score)
        return Assessment(score, detail, cost, (check,))


def judge(
    provider: Any,
    *,
    model: str | None = None,
    rubric: str = RUBRIC,
    threshold: float = 0.7,
    max_tokens: int = 400,
) -> LLMJudge:
    """An LLM judge on a budget model (see :class:`LLMJudge`)."""
    return LLMJudge(
        provider, model=model, rubric=rubric, threshold=threshold, max_tokens=max_tokens
    )
