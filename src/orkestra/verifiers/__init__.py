"""Verifiers: check a cheap model's answer before trusting it (the heart of a cascade).

A cascade calls the cheapest adequate model, runs a verifier on its answer, and escalates to a
stronger model only when the check fails. A verifier takes what was asked (:class:`Request`)
and what came back (:class:`Answer`) and returns a :class:`Verdict`: ``passed``, a ``score`` in
0..1 (higher = more likely correct), the ``reason`` and the ``cost`` of verifying, which counts
toward the call's cost::

    import orkestra as o
    from orkestra import verifiers

    check = verifiers.heuristic()                       # format/consistency checks, free
    verdict = check.verify(verifiers.Request.of("What is 17 * 23?"),
                           verifiers.Answer("17 * 23 = 391\\n#### 391"))
    verdict.passed, verdict.score, verdict.reason

The built-ins:

- :func:`heuristic`: final answer present, truncation, refusals and hedging, JSON/schema
  validity, tool-call arguments, arithmetic, Python that parses and passes the prompt's own
  doctests/asserts in a sandboxed subprocess (:func:`run_python`). No call, no cost.
- :func:`self_consistency`: other samples, or other cheap models, agree with the answer.
- :func:`logprob_confidence`: the model's own token probabilities (OpenAI, Gemini).
- :func:`judge`: a budget model grades the answer with a fixed rubric.
- :func:`function`: your own check; :func:`all_of`: several in order, cheapest first.

Those that need calls take them injected (a :data:`Sampler`, or a :class:`orkestra.Provider`),
so a verifier never depends on how a provider is built. Every scored verifier has a
``threshold`` that ``calibrate(samples, premium_share=...)`` or ``calibrate(samples,
quality=..., correct=...)`` sets from your own traffic, like the router's knob.
"""

from orkestra.verifiers._base import (
    AllOf,
    Answer,
    Check,
    FunctionVerifier,
    Request,
    ScoredVerifier,
    Verdict,
    Verifier,
    all_of,
    as_verifier,
    averify,
    function,
)
from orkestra.verifiers._calibrate import calibrate_threshold, escalation_share
from orkestra.verifiers._consistency import (
    LogprobConfidence,
    Sampler,
    SelfConsistency,
    agreement,
    logprob_confidence,
    sampler,
    self_consistency,
    token_logprobs,
)
from orkestra.verifiers._heuristic import FACTORS, HeuristicVerifier, heuristic
from orkestra.verifiers._judge import RUBRIC, LLMJudge, judge, parse_grade
from orkestra.verifiers._sandbox import SandboxResult, run_python

__all__ = [
    "FACTORS",
    "RUBRIC",
    "AllOf",
    "Answer",
    "Check",
    "FunctionVerifier",
    "HeuristicVerifier",
    "LLMJudge",
    "LogprobConfidence",
    "Request",
    "Sampler",
    "SandboxResult",
    "ScoredVerifier",
    "SelfConsistency",
    "Verdict",
    "Verifier",
    "agreement",
    "all_of",
    "as_verifier",
    "averify",
    "calibrate_threshold",
    "escalation_share",
    "function",
    "heuristic",
    "judge",
    "logprob_confidence",
    "parse_grade",
    "run_python",
    "sampler",
    "self_consistency",
    "token_logprobs",
]
