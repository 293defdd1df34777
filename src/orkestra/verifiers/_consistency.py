"""Verifiers that ask again: self-consistency (another sample, or another cheap model, agrees)
and the model's own confidence (token log probabilities).

They need calls, which they take as an injected *sampler*: a function ``request -> Answer``.
:func:`sampler` builds one from a :class:`orkestra.Provider` (public API); anything else that
returns an :class:`Answer` works too (e.g. an SDK call of your own that asks for logprobs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from orkestra.errors import ConfigurationError
from orkestra.verifiers import _maths, _text
from orkestra.verifiers._base import Answer, Assessment, Check, Request, ScoredVerifier

__all__ = [
    "LogprobConfidence",
    "Sampler",
    "SelfConsistency",
    "agreement",
    "logprob_confidence",
    "sampler",
    "self_consistency",
    "token_logprobs",
]

Sampler = Callable[[Request], Answer]
"""Asks a model the request again and returns its :class:`Answer` (with its cost)."""


def sampler(
    provider: Any,
    *,
    model: str | None = None,
    max_tokens: int = 1024,
    temperature: float | None = None,
) -> Sampler:
    """A sampler that asks ``provider`` (an :class:`orkestra.Provider`) the same request through
    its public ``chat`` — on ``model`` (e.g. a second cheap model), else wherever it routes.

    >>> again = sampler(o.Provider("openai"), model="gpt-4.1-mini")  # doctest: +SKIP
    """
    if not callable(getattr(provider, "chat", None)):
        raise ConfigurationError(f"sampler() needs a Provider (with .chat), not {provider!r}")

    def ask(request: Request) -> Answer:
        kwargs = request.call_arguments()
        kwargs["max_tokens"] = max_tokens
        if model is not None:
            kwargs["model"] = model
        if temperature is not None:
            kwargs["temperature"] = temperature
        return Answer.from_response(provider.chat(**kwargs))

    return ask


def _canonical_json(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text.strip().strip("`").removeprefix("json")), sort_keys=True)
    except (json.JSONDecodeError, ValueError):
        return None


def agreement(request: Request, a: Answer, b: Answer) -> float:
    """How far two answers to ``request`` agree, 0..1: the same final number for a maths
    question, the same option for a multiple-choice one, the same calls for tool calls, the
    same JSON for structured output, else the word overlap of the texts."""
    if a.tool_calls or b.tool_calls:
        calls = [
            sorted((c.name, _canonical_json(c.arguments) or c.arguments) for c in x.tool_calls)
            for x in (a, b)
        ]
        return 1.0 if calls[0] == calls[1] else 0.0
    if request.options.response_format is not None:
        left, right = _canonical_json(a.text), _canonical_json(b.text)
        if left is not None and right is not None:
            return 1.0 if left == right else _text.similarity(left, right)
    prompt = request.text
    if _maths.looks_like_maths(prompt):
        first, second = _maths.final_answer(a.text), _maths.final_answer(b.text)
        if first is None or second is None or first.value is None or second.value is None:
            return 0.0
        close = abs(first.value - second.value) <= 1e-6 * max(1.0, abs(first.value))
        return 1.0 if close else 0.0
    letters = _maths.choice_letters(prompt)
    if letters:
        chosen = _maths.chosen_options(a.text, letters), _maths.chosen_options(b.text, letters)
        return 1.0 if chosen[0] and chosen[0] == chosen[1] else 0.0
    return _text.similarity(a.text, b.text)


def _samplers(value: Sampler | Sequence[Sampler]) -> tuple[Sampler, ...]:
    found = (value,) if callable(value) else tuple(value)
    if not found or not all(callable(s) for s in found):
        raise ConfigurationError("give a sampler (request -> Answer), or a list of them")
    return found


class SelfConsistency(ScoredVerifier):
    """The cheap answer is right when other samples agree with it.

    ``samplers``: one or more functions ``request -> Answer`` (:func:`sampler`); each is called
    ``samples`` times. Two samplers on two cheap models make "two cheap models agree". The score
    is the mean :func:`agreement` of the extra answers with the cheap one; the verdict's cost is
    what they cost.
    """

    name = "self_consistency"

    def __init__(
        self,
        samplers: Sampler | Sequence[Sampler],
        *,
        samples: int = 1,
        threshold: float = 0.5,
        agree: Callable[[Request, Answer, Answer], float] = agreement,
    ) -> None:
        super().__init__(threshold)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigurationError(f"samples must be an integer ≥ 1, not {samples!r}")
        self.samplers = _samplers(samplers)
        self.samples = samples
        self.agree = agree

    def __repr__(self) -> str:
        return (
            f"SelfConsistency(samplers={len(self.samplers)}, samples={self.samples}, "
            f"threshold={self.threshold:g})"
        )

    def assess(self, request: Request, answer: Answer) -> Assessment:
        others = [ask(request) for ask in self.samplers for _ in range(self.samples)]
        scores = [min(1.0, max(0.0, float(self.agree(request, answer, o)))) for o in others]
        checks = tuple(
            Check(
                "agreement",
                s >= self.threshold,
                f"{o.model or 'sample'} agrees {s:.2f}",
                s,
            )
            for o, s in zip(others, scores, strict=True)
        )
        score = sum(scores) / len(scores)
        reason = f"{len(others)} other answer(s) agree {score:.2f} on average"
        return Assessment(score, reason, sum(o.cost for o in others), checks)


def self_consistency(
    samplers: Sampler | Sequence[Sampler], *, samples: int = 1, threshold: float = 0.5
) -> SelfConsistency:
    """Self-consistency: other samples (or other cheap models) must agree with the cheap answer
    (see :class:`SelfConsistency`)."""
    return SelfConsistency(samplers, samples=samples, threshold=threshold)


# ----------------------------------------------------------------------------- logprobs


def _get(obj: Any, *names: str) -> Any:
    """The first of ``names`` present on an SDK object or in a wire dict."""
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def token_logprobs(response: Any) -> tuple[float, ...] | None:
    """The answer tokens' log probabilities from an SDK response (or its wire JSON): OpenAI
    Chat Completions ``choices[0].logprobs.content[].logprob``, Gemini
    ``candidates[0].logprobsResult.chosenCandidates[].logProbability`` (or its
    ``avgLogprobs`` alone). None when the response carries none (not asked, or not offered)."""
    choices = _get(response, "choices")
    if choices:
        content = _get(_get(choices[0], "logprobs") or {}, "content")
        if content:
            return tuple(float(_get(t, "logprob")) for t in content)
    candidates = _get(response, "candidates")
    if candidates:
        result = _get(candidates[0], "logprobs_result", "logprobsResult") or {}
        chosen = _get(result, "chosen_candidates", "chosenCandidates")
        if chosen:
            return tuple(float(_get(c, "log_probability", "logProbability") or 0.0) for c in chosen)
        average = _get(candidates[0], "avg_logprobs", "avgLogprobs")
        if average is not None:
            return (float(average),)
    return None


class LogprobConfidence(ScoredVerifier):
    """The model's own confidence: exp(mean token log probability) of the answer, the geometric
    mean probability of its tokens (Gemini's ``avgLogprobs``, exponentiated).

    Reads ``answer.logprobs``; when the cheap answer has none and a ``sampler`` is given, it
    asks again and reads the new answer's (its cost counts). Anthropic's API gives no logprobs:
    this verifier cannot check such answers and says so with a :class:`ConfigurationError`.
    """

    name = "logprobs"

    def __init__(self, sampler: Sampler | None = None, *, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        if sampler is not None and not callable(sampler):
            raise ConfigurationError("sampler must be a function request -> Answer")
        self.sampler = sampler

    def assess(self, request: Request, answer: Answer) -> Assessment:
        values, cost, source = answer.logprobs, 0.0, "the answer"
        if not values and self.sampler is not None:
            again = self.sampler(request)
            values, cost, source = again.logprobs, again.cost, "a second sample"
        if not values:
            raise ConfigurationError(
                "no token logprobs to check: the answer carries none (ask the API for them: "
                "OpenAI logprobs=True, Gemini response_logprobs=True) and no sampler gave any"
            )
        mean = _finite_mean(values)
        score = math.exp(mean)
        return Assessment(
            score,
            f"mean token logprob {mean:.3f} over {len(values)} token(s) of {source}",
            cost,
            (Check("logprobs", True, f"exp(mean) = {score:.3f}", 1.0),),
        )


def _finite_mean(values: Iterable[float]) -> float:
    # OpenAI writes -9999.0 for a token outside the top 20; keep it from swamping the mean.
    kept = [max(float(v), -20.0) for v in values if math.isfinite(v)]
    if not kept:
        raise ConfigurationError("the token logprobs are not finite numbers")
    return min(0.0, sum(kept) / len(kept))


def logprob_confidence(
    sampler: Sampler | None = None, *, threshold: float = 0.5
) -> LogprobConfidence:
    """Confidence from token logprobs (see :class:`LogprobConfidence`)."""
    return LogprobConfidence(sampler, threshold=threshold)
