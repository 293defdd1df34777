"""The verifier contract: what was asked (:class:`Request`), what the cheap model answered
(:class:`Answer`), and what a verifier concluded (:class:`Verdict`).

A verifier is anything with ``verify(request, answer) -> Verdict`` (the :class:`Verifier`
protocol). The built-in ones derive from :class:`ScoredVerifier`: they compute a score in 0..1
(higher = more likely correct) and pass when it reaches their ``threshold``, which
:meth:`ScoredVerifier.calibrate` can set from your own traffic.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from orkestra._conversation import Messages, resolve_input
from orkestra._options import RequestOptions, parse_options
from orkestra._types import Check, Response, ToolCall, Usage, Verdict
from orkestra.errors import ConfigurationError
from orkestra.providers.base import Message

__all__ = [
    "AllOf",
    "Answer",
    "Check",
    "FunctionVerifier",
    "Request",
    "ScoredVerifier",
    "Verdict",
    "Verifier",
    "all_of",
    "as_verifier",
    "averify",
    "function",
]


@dataclass(frozen=True)
class Request:
    """What was asked, as a verifier sees it.

    ``text`` is what the answer must answer: the prompt, or a conversation's last user turn
    (with the turn before it when the last one is short, as the router reads it). Build one
    with :meth:`of`, which takes the arguments ``Provider.chat`` takes and checks them the
    same way.
    """

    text: str
    messages: tuple[Message, ...] | None = None
    options: RequestOptions = field(default_factory=RequestOptions)

    @classmethod
    def of(
        cls,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        response_format: Any = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
    ) -> Request:
        """>>> Request.of("What is 6 * 7?")  # doctest: +SKIP"""
        text, conversation = resolve_input(prompt, messages)
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError("a verifier's request needs a non-empty prompt")
        options = parse_options(tools, tool_choice, response_format)
        return cls(text, conversation, options)

    def call_arguments(self) -> dict[str, Any]:
        """The request as ``Provider.chat`` keyword arguments (prompt or messages, tools,
        response_format), to ask another model the same thing."""
        args: dict[str, Any] = {}
        if self.messages is None:
            args["prompt"] = self.text
        else:
            args["messages"] = list(self.messages)
        if self.options.tools:
            args["tools"] = list(self.options.tools)
            args["tool_choice"] = self.options.tool_choice
        if self.options.response_model is not None:
            args["response_format"] = self.options.response_model
        elif self.options.response_format is not None:
            args["response_format"] = self.options.response_format
        return args


@dataclass(frozen=True)
class Answer:
    """What a model answered: its text, how it finished, its tool calls, usage and cost.

    ``finish_reason`` is the provider's own (``"length"``, ``"max_tokens"``, ``"MAX_TOKENS"``
    all mean the answer was cut). ``logprobs``: the log probability of each answer token, when
    the provider's API returned them (OpenAI ``logprobs``, Gemini ``responseLogprobs``; see
    :func:`orkestra.verifiers.token_logprobs`).
    """

    text: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    model: str | None = None
    logprobs: tuple[float, ...] | None = None

    @classmethod
    def from_response(
        cls, response: Response, *, logprobs: Iterable[float] | None = None
    ) -> Answer:
        """The answer of an orkestra :class:`~orkestra.Response` (its cost is every attempt's)."""
        return cls(
            text=response.text,
            finish_reason=response.finish_reason,
            tool_calls=response.tool_calls,
            usage=response.usage,
            cost=response.total_cost,
            model=response.model,
            logprobs=None if logprobs is None else tuple(float(x) for x in logprobs),
        )


@runtime_checkable
class Verifier(Protocol):
    """Anything that checks a cheap answer: ``verify(request, answer) -> Verdict``."""

    def verify(self, request: Request, answer: Answer) -> Verdict: ...


@dataclass(frozen=True)
class Assessment:
    """What a :class:`ScoredVerifier` computes before its threshold is applied."""

    score: float
    reason: str
    cost: float = 0.0
    checks: tuple[Check, ...] = ()


def check_threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigurationError(f"threshold must be a number in [0, 1], not {value!r}")
    return float(value)


class ScoredVerifier(ABC):
    """A verifier that scores an answer and passes it when ``score >= threshold``.

    Subclasses implement :meth:`assess`. ``verify`` is the sync entry point; ``averify`` runs
    it in a worker thread (verifiers may run code or make calls).
    """

    name: str = "verifier"

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = check_threshold(threshold)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threshold={self.threshold:g})"

    @abstractmethod
    def assess(self, request: Request, answer: Answer) -> Assessment:
        """Score ``answer`` (0..1, higher = more likely correct), with reason and cost."""

    def verify(self, request: Request, answer: Answer) -> Verdict:
        found = self.assess(request, answer)
        score = min(1.0, max(0.0, float(found.score)))
        return Verdict(
            passed=score >= self.threshold,
            score=score,
            reason=found.reason,
            cost=found.cost,
            verifier=self.name,
            checks=found.checks,
        )

    async def averify(self, request: Request, answer: Answer) -> Verdict:
        return await asyncio.to_thread(self.verify, request, answer)

    def calibrate(
        self,
        samples: Iterable[tuple[Request, Answer]],
        *,
        premium_share: float | None = None,
        quality: float | None = None,
        correct: Sequence[float] | None = None,
        premium_correct: Sequence[float] | None = None,
    ) -> float:
        """Set (and return) the threshold from cheap answers of your own traffic.

        ``premium_share``: the share of answers that should fail (and so escalate), like the
        router's ``calibrate(prompts, premium_share)``. ``quality``: with ``correct`` (the
        quality 0..1 of each cheap answer), the fewest escalations that keep the cascade's mean
        quality at ``quality`` × that of always escalating (``premium_correct``, default 1.0
        per prompt: then ``quality`` is plain accuracy). Verifying makes any calls the verifier
        makes, once per sample.
        """
        from orkestra.verifiers._calibrate import calibrate_threshold

        pairs = list(samples)
        scores = [self.verify(request, answer).score for request, answer in pairs]
        self.threshold = calibrate_threshold(
            scores,
            premium_share=premium_share,
            quality=quality,
            correct=correct,
            premium_correct=premium_correct,
        )
        return self.threshold


VerifierFunction = Callable[[Request, Answer], Any]


class FunctionVerifier(ScoredVerifier):
    """Your own check as a verifier. ``fn(request, answer)`` returns a bool (passed or not),
    a score in 0..1, a ``(score, reason)`` pair or a :class:`Verdict` (its ``cost`` counts)."""

    def __init__(self, fn: VerifierFunction, *, threshold: float = 0.5, name: str | None = None):
        if not callable(fn):
            raise ConfigurationError(f"a verifier function must be callable, not {fn!r}")
        if inspect.iscoroutinefunction(fn):
            raise ConfigurationError("a verifier function must be synchronous (def, not async)")
        super().__init__(threshold)
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "function"))

    def __repr__(self) -> str:
        return f"FunctionVerifier({self.name!r}, threshold={self.threshold:g})"

    def assess(self, request: Request, answer: Answer) -> Assessment:
        result = self.fn(request, answer)
        if isinstance(result, Verdict):
            return Assessment(result.score, result.reason, result.cost, result.checks)
        if isinstance(result, bool):
            return Assessment(1.0 if result else 0.0, f"{self.name} returned {result}")
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            return Assessment(_score(result[0], self.name), result[1])
        return Assessment(_score(result, self.name), f"{self.name} scored {result}")


def _score(value: object, name: str) -> float:
    if isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1:
        return float(value)
    raise ConfigurationError(
        f"verifier function {name!r} returned {value!r}: return a bool, a score in [0, 1], "
        "a (score, reason) pair or a Verdict"
    )


def function(
    fn: VerifierFunction, *, threshold: float = 0.5, name: str | None = None
) -> FunctionVerifier:
    """Your own check as a verifier (see :class:`FunctionVerifier`).

    >>> no_apology = function(lambda req, ans: "sorry" not in ans.text.lower())
    """
    return FunctionVerifier(fn, threshold=threshold, name=name)


def as_verifier(value: Verifier | VerifierFunction | str) -> Verifier:
    """A verifier from what a user passed: a verifier, a function, or a built-in's name
    (``"heuristic"``)."""
    if isinstance(value, Verifier):
        return value
    if isinstance(value, str):
        if value == "heuristic":
            from orkestra.verifiers._heuristic import HeuristicVerifier

            return HeuristicVerifier()
        raise ConfigurationError(
            f"unknown verifier {value!r}: pass 'heuristic', a verifier or a function"
        )
    if callable(value):
        return FunctionVerifier(value)
    raise ConfigurationError(
        f"not a verifier: {value!r} (give an object with verify(request, answer) or a function)"
    )


class AllOf:
    """Several verifiers in order, cheapest first: the first that fails decides (the later,
    costlier ones are not run); the answer passes when every one passes. The verdict's score
    is the lowest score seen, its cost what the verifiers that ran cost."""

    name = "all_of"

    def __init__(self, *verifiers: Verifier | VerifierFunction | str) -> None:
        if not verifiers:
            raise ConfigurationError("all_of() needs at least one verifier")
        self.verifiers = tuple(as_verifier(v) for v in verifiers)

    def __repr__(self) -> str:
        return f"AllOf({', '.join(map(repr, self.verifiers))})"

    def verify(self, request: Request, answer: Answer) -> Verdict:
        verdicts: list[Verdict] = []
        for verifier in self.verifiers:
            verdicts.append(verifier.verify(request, answer))
            if not verdicts[-1].passed:
                break
        last = verdicts[-1]
        return Verdict(
            passed=last.passed,
            score=min(v.score for v in verdicts),
            reason="; ".join(f"{v.verifier or 'verifier'}: {v.reason}" for v in verdicts),
            cost=sum(v.cost for v in verdicts),
            verifier=self.name,
            checks=tuple(c for v in verdicts for c in v.checks),
        )

    async def averify(self, request: Request, answer: Answer) -> Verdict:
        return await asyncio.to_thread(self.verify, request, answer)


def all_of(*verifiers: Verifier | VerifierFunction | str) -> AllOf:
    """Run ``verifiers`` in order until one fails (see :class:`AllOf`).

    >>> check = all_of("heuristic", judge(provider))  # free checks first  # doctest: +SKIP
    """
    return AllOf(*verifiers)


async def averify(verifier: Verifier, request: Request, answer: Answer) -> Verdict:
    """``verifier.verify`` for async code: its own ``averify`` when it has one, else in a
    worker thread (verifiers may run code or make calls)."""
    own = getattr(verifier, "averify", None)
    if own is not None and inspect.iscoroutinefunction(own):
        result: Verdict = await own(request, answer)
        return result
    return await asyncio.to_thread(verifier.verify, request, answer)
