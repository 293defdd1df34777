"""The default verifier: format and consistency checks on the cheap answer, no model call.

Every check that finds a problem multiplies the score (which starts at 1.0) by its factor in
:data:`FACTORS`; the verdict lists every check that ran. What runs depends on the request:

- always: the answer was cut at the token limit or withheld (finish reason), is empty, opens
  with a refusal, hedges ("approximately", "I'm not sure", "assuming"...);
- ``response_format``: the text is valid JSON matching the schema;
- ``tools``: every call names a declared tool with arguments matching its schema;
- maths questions (numbers and a quantity asked for): a final answer is stated, is one number,
  is whole where whole things are counted, comes out of the working, the written arithmetic is
  right, the question's quantities are used, and the text is not cut mid-line; longer working
  lowers the score slightly (more steps, more chances to slip);
- multiple-choice questions: one option is chosen;
- Python asked for: the code parses, and when the prompt carries ``assert`` lines or doctest
  examples, the code passes them in a sandboxed subprocess (:func:`run_python`).

The factors were set from the train split of RouteLLM's GSM8K answers (Mixtral-8x7B, graded),
rounded, and from the checks' meaning elsewhere (a schema violation or a failing test is close
to certain failure). See docs/verifiers.md for what they measure on the test split.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from orkestra._options import structured
from orkestra.errors import ConfigurationError, StructuredOutputError
from orkestra.verifiers import _code, _maths, _text
from orkestra.verifiers._base import Answer, Assessment, Check, Request, ScoredVerifier
from orkestra.verifiers._sandbox import run_python

__all__ = ["FACTORS", "HeuristicVerifier", "heuristic"]

FACTORS: Mapping[str, float] = {
    # Any answer.
    "truncated": 0.05,
    "withheld": 0.05,
    "empty": 0.0,
    "refusal": 0.1,
    "hedging": 0.25,
    # Structured output and tools.
    "json": 0.02,
    "tool_calls": 0.05,
    # Maths.
    "final_answer": 0.15,
    "final_answer_implicit": 0.4,
    "final_answer_number": 0.1,
    "whole_number": 0.1,
    "derived": 0.5,
    "arithmetic": 0.1,
    "unused_quantities": 0.1,
    "cut_off": 0.4,
    # Multiple choice.
    "option_chosen": 0.3,
    # Code.
    "python_syntax": 0.05,
    "prompt_tests": 0.05,
}
"""What each failed check multiplies the score by. ``unused_quantities`` is raised to the share of
the question's numbers the answer never used."""

WORKING_CHARS = 6000
"""Maths working of this many characters halves the score (1 / (1 + chars / WORKING_CHARS))."""


class HeuristicVerifier(ScoredVerifier):
    """Format and consistency checks, no model call, no cost (see the module docstring).

    Args:
        threshold: the score an answer needs to pass (``calibrate`` sets it from your traffic).
        run_tests: run a code answer against the ``assert``/doctest lines of its prompt.
        timeout: seconds the sandboxed test run may take.
        factors: override some of :data:`FACTORS`, e.g. ``{"hedging": 1.0}`` to ignore hedges.
    """

    name = "heuristic"

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        run_tests: bool = True,
        timeout: float = 5.0,
        factors: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(threshold)
        unknown = set(factors or {}) - set(FACTORS)
        if unknown:
            raise ConfigurationError(
                f"unknown check(s) {sorted(unknown)}; the checks are {sorted(FACTORS)}"
            )
        for name, value in (factors or {}).items():
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ConfigurationError(f"factor of {name!r} must be in [0, 1], not {value!r}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
        self.factors = {**FACTORS, **(factors or {})}
        self.run_tests = run_tests
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return (
            f"HeuristicVerifier(threshold={self.threshold:g}, run_tests={self.run_tests}, "
            f"timeout={self.timeout:g})"
        )

    def _check(self, name: str, failed: bool, detail: str, weight: float = 1.0) -> Check:
        factor = self.factors[name] ** weight if failed else 1.0
        return Check(name, not failed, detail, factor)

    def assess(self, request: Request, answer: Answer) -> Assessment:
        checks = self._general(answer)
        prompt, text = request.text, answer.text
        if request.options.response_format is not None:
            checks.append(self._json(request, answer))
        if request.options.tools or answer.tool_calls:
            checks.append(self._tools(request, answer))
        if text.strip() and not answer.tool_calls:
            maths = _maths.looks_like_maths(prompt)
            found = _text.hedges(text, maths=maths)
            detail = f"hedges: {', '.join(found[:3])}" if found else "no hedging"
            checks.append(self._check("hedging", bool(found), detail))
            if maths:
                checks += self._maths(prompt, text)
            elif letters := _maths.choice_letters(prompt):
                chosen = _maths.chosen_options(text, letters)
                detail = f"chose {', '.join(chosen)}" if chosen else "no option chosen"
                checks.append(self._check("option_chosen", len(chosen) != 1, detail))
            if _code.asks_for_python(prompt) or "```python" in text:
                checks += self._python(prompt, text)
        score = math.prod(c.factor for c in checks)
        failed = [c for c in checks if not c.passed]
        if failed:
            reason = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        else:
            reason = f"no problem found ({len(checks)} checks)"
        return Assessment(score, reason, 0.0, tuple(checks))

    # -- checks -----------------------------------------------------------------------------

    def _general(self, answer: Answer) -> list[Check]:
        reason = answer.finish_reason
        checks = [
            self._check(
                "truncated",
                reason in _text.TRUNCATED_FINISH,
                f"finish reason {reason!r}: the answer hit its token limit",
            ),
            self._check(
                "withheld",
                reason in _text.REFUSAL_FINISH,
                f"finish reason {reason!r}: the provider withheld the answer",
            ),
            self._check(
                "empty",
                not answer.text.strip() and not answer.tool_calls,
                "no text and no tool call",
            ),
        ]
        if answer.text.strip():
            checks.append(self._check("refusal", _text.refuses(answer.text), "the answer declines"))
        return checks

    def _json(self, request: Request, answer: Answer) -> Check:
        try:
            structured(answer.text, request.options)
        except StructuredOutputError as e:
            return self._check("json", True, str(e))
        return self._check("json", False, "valid JSON for the response format")

    def _tools(self, request: Request, answer: Answer) -> Check:
        declared = {t.name: t for t in request.options.tools}
        for call in answer.tool_calls:
            tool = declared.get(call.name)
            if tool is None:
                return self._check("tool_calls", True, f"calls undeclared tool {call.name!r}")
            try:
                args = json.loads(call.arguments or "{}")
            except json.JSONDecodeError as e:
                return self._check(
                    "tool_calls", True, f"{call.name}: arguments are not JSON ({e.msg})"
                )
            problem = _schema_problem(args, tool.parameters)
            if problem:
                return self._check("tool_calls", True, f"{call.name}: {problem}")
        if request.options.tool_choice == "required" and not answer.tool_calls:
            return self._check("tool_calls", True, "a tool call was required and none was made")
        return self._check("tool_calls", False, f"{len(answer.tool_calls)} valid call(s)")

    def _maths(self, prompt: str, text: str) -> list[Check]:
        final = _maths.final_answer(text)
        checks = [self._check("final_answer", final is None, "no final answer stated")]
        if final is not None:
            checks.append(
                self._check(
                    "final_answer_implicit",
                    not final.explicit,
                    f"final answer only implied: {final.text[:60]!r}",
                )
            )
            single = final.value is not None and final.numbers == 1
            checks.append(
                self._check(
                    "final_answer_number",
                    not single,
                    f"final answer is not one number: {final.text[:60]!r}",
                )
            )
            if final.value is not None:
                whole = _maths.is_count_question(prompt) or all(
                    v.is_integer() for v in _maths.numbers_in(prompt)
                )
                fractional = not float(final.value).is_integer()
                checks.append(
                    self._check(
                        "whole_number",
                        whole and fractional,
                        f"{final.value:g} where whole numbers are expected",
                    )
                )
                checks.append(
                    self._check(
                        "derived",
                        not _maths.derived(final, prompt, text),
                        f"{final.value:g} does not come out of the working",
                    )
                )
        checked, wrong = _maths.arithmetic_errors(text)
        checks.append(
            self._check("arithmetic", wrong > 0, f"{wrong} of {checked} written results wrong")
        )
        given, unused = _maths.unused_quantities(prompt, text)
        checks.append(
            self._check(
                "unused_quantities",
                unused > 0,
                f"{unused} of {given} given quantities never used",
                weight=unused / given if given else 0.0,
            )
        )
        checks.append(self._check("cut_off", _text.looks_cut_off(text), "the text stops mid-line"))
        working = 1.0 / (1.0 + len(text) / WORKING_CHARS)
        checks.append(Check("working_length", True, f"{len(text)} characters", working))
        return checks

    def _python(self, prompt: str, text: str) -> list[Check]:
        blocks = _code.python_blocks(text)
        if not blocks:
            return []
        code = "\n\n".join(blocks)
        error = _code.syntax_error(code)
        checks = [self._check("python_syntax", error is not None, error or "parses")]
        tests = _code.prompt_tests(prompt)
        if error is None and tests and self.run_tests:
            program = _code.program_with_tests(prompt, code, tests)
            result = run_python(program, timeout=self.timeout)
            if result.timed_out:
                detail = f"the prompt's tests did not finish in {self.timeout:g} s"
            elif not result.ok:
                last = (result.stderr.strip().splitlines() or ["exit status != 0"])[-1]
                detail = f"the prompt's tests fail: {last[:120]}"
            else:
                detail = f"passes the prompt's {tests.count} test(s)"
            checks.append(self._check("prompt_tests", not result.ok, detail))
        return checks


def _schema_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    import jsonschema  # only requests with tools pay for the import

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"arguments do not match the schema at {where}: {error.message}"


def heuristic(
    threshold: float = 0.5,
    *,
    run_tests: bool = True,
    timeout: float = 5.0,
    factors: Mapping[str, float] | None = None,
) -> HeuristicVerifier:
    """The default verifier: format and consistency checks (see :class:`HeuristicVerifier`)."""
    return HeuristicVerifier(threshold, run_tests=run_tests, timeout=timeout, factors=factors)
