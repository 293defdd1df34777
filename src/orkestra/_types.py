"""The values orkestra hands back: token usage, routing decisions, verdicts on an answer, the
steps of a cascade, and responses."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orkestra.errors import ConfigurationError

Tier = Literal["budget", "balanced", "premium"]
TIERS: tuple[Tier, ...] = ("budget", "balanced", "premium")
StopReason = Literal["stop", "length", "tool_calls", "content_filter"]
"""Why an answer ended, in common terms (OpenAI's names), whichever provider gave it."""


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, the same meaning for every provider.

    ``input_tokens`` is the whole prompt, *including* cached reads and cache writes (Anthropic
    reports those apart; they are added back here). ``output_tokens`` is everything billed as
    output, *including* reasoning/thinking tokens (Gemini reports thoughts apart; they are added).
    The ``cache_*`` and ``reasoning_tokens`` fields say how much of those totals was which.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True)
class ToolCall:
    """A model's request to call one of the request's tools, the same shape for every provider.

    ``arguments`` is the JSON text the model wrote (as OpenAI sends it); :attr:`args` parses it.
    ``signature`` is provider state that must travel back with the call in the next turn
    (Gemini's ``thoughtSignature``); pass the assistant message on unchanged and it does.
    """

    id: str
    name: str
    arguments: str = "{}"
    signature: str | None = field(default=None, repr=False)

    @property
    def args(self) -> Any:
        """The parsed arguments (raises ``json.JSONDecodeError`` if the model wrote bad JSON)."""
        return json.loads(self.arguments) if self.arguments.strip() else {}

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI Chat Completions form (``{"id", "type": "function", "function"}``)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Cost:
    """What a call cost, in US dollars."""

    input_cost: float
    output_cost: float

    @property
    def total(self) -> float:
        return self.input_cost + self.output_cost


@dataclass(frozen=True)
class Candidate:
    """One model the router weighed: its predicted quality and expected cost for this prompt."""

    provider: str
    model: str
    tier: Tier
    predicted_quality: float
    expected_cost: float


@dataclass(frozen=True)
class Neighbor:
    """A reference prompt close to the routed one (what the KNN router based its guess on)."""

    task: str
    similarity: float
    prompt: str = ""


@dataclass(frozen=True)
class RoutingDecision:
    """Which model a prompt goes to, and why. Made without calling any model.

    ``scores`` is the predicted quality (0..1) per tier; ``knob`` the cost/quality setting the
    decision was made with; ``latency_ms`` how long deciding took (embedding included).
    """

    provider: str
    model: str
    tier: Tier
    scores: Mapping[str, float]
    knob: float | None
    reason: str
    latency_ms: float
    strategy: str | None = None
    candidates: tuple[Candidate, ...] = ()
    neighbors: tuple[Neighbor, ...] = ()
    expected_output_tokens: int | None = None

    def __str__(self) -> str:
        scores = ", ".join(f"{tier} {score:.2f}" for tier, score in self.scores.items())
        knob = "" if self.knob is None else f", knob {self.knob:g}"
        head = f"{self.provider}/{self.model} ({self.tier})"
        return f"{head}: {self.reason} [scores: {scores}{knob}; {self.latency_ms:.2f} ms]"


@dataclass(frozen=True)
class Check:
    """One finding of a verifier: ``name`` (e.g. ``"final_answer"``), whether it passed, why,
    and ``factor``, what it multiplied the score by (1.0: no effect)."""

    name: str
    passed: bool
    detail: str = ""
    factor: float = 1.0


@dataclass(frozen=True)
class Verdict:
    """A verifier's conclusion about one answer (see :mod:`orkestra.verifiers`).

    ``score`` is in 0..1, higher = more likely correct; ``passed`` says whether it reached the
    verifier's threshold (escalate when it did not). ``cost`` is what verifying cost in US
    dollars (extra samples, a judge's call): it counts toward the request's cost.
    """

    passed: bool
    score: float
    reason: str
    cost: float = 0.0
    verifier: str = ""
    checks: tuple[Check, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise ConfigurationError(f"a verdict's score must be in [0, 1], not {self.score!r}")
        if not (math.isfinite(self.cost) and self.cost >= 0.0):
            raise ConfigurationError(f"a verdict's cost must be ≥ 0 dollars, not {self.cost!r}")

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        cost = f", ${self.cost:.6f}" if self.cost else ""
        name = self.verifier or "verifier"
        return f"{name} {outcome} (score {self.score:.2f}{cost}): {self.reason}"


@dataclass(frozen=True)
class Attempt:
    """One call the resilience layer made for a request: which model, how it ended, what it cost.

    ``error`` is the orkestra error's class name (``"RateLimitError"``...) or None for a call
    that answered. ``usage`` and ``cost`` are what the provider billed (or reported) for this
    call; a call that failed before the provider reported usage bills nothing.

    In a cascade, a call that answered carries the ``verdict`` its answer got (None: it was not
    checked), and ``discarded`` is True when that answer failed its check and a stronger model
    was asked instead (it was made and billed, but not returned).
    """

    provider: str
    model: str
    tier: Tier | None
    error: str | None = None
    message: str | None = None
    status_code: int | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    latency_ms: float = 0.0
    discarded: bool = False
    verdict: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        outcome = "ok" if self.error is None else f"{self.error}: {self.message}"
        if self.discarded:
            outcome = "answered, discarded" + (f" ({self.verdict})" if self.verdict else "")
        return (
            f"{self.provider}/{self.model}: {outcome} (${self.cost:.6f}, {self.latency_ms:.0f} ms)"
        )


@dataclass(frozen=True)
class CascadeStep:
    """One model a cascade asked: its answer, what it cost, and how its check went.

    ``verdict`` is the verifier's (None: the answer was not checked — ``note`` says why: the
    top of the ladder, or the router trusted the tier). ``accepted`` is True for the answer
    returned; the others were discarded. ``cost`` is what this step's answer billed (its
    failed retries are in ``attempts``); ``verifier_cost`` what checking it cost.
    """

    provider: str
    model: str
    tier: Tier
    accepted: bool
    verdict: Verdict | None
    cost: float
    text: str
    usage: Usage = field(default_factory=Usage)
    note: str = ""
    latency_ms: float = 0.0
    attempts: tuple[Attempt, ...] = ()

    @property
    def passed(self) -> bool | None:
        """The check's outcome (None: not checked)."""
        return None if self.verdict is None else self.verdict.passed

    @property
    def score(self) -> float | None:
        return None if self.verdict is None else self.verdict.score

    @property
    def reason(self) -> str:
        return self.note if self.verdict is None else self.verdict.reason

    @property
    def verifier_cost(self) -> float:
        return 0.0 if self.verdict is None else self.verdict.cost

    def __str__(self) -> str:
        if self.verdict is None:
            check = self.note or "not checked"
        else:
            outcome = "passed" if self.verdict.passed else "failed"
            check = f"{self.verdict.verifier or 'check'} {outcome} {self.verdict.score:.2f}"
        kept = "accepted" if self.accepted else "discarded"
        return f"{self.provider}/{self.model} ({self.tier}): {check}, {kept} (${self.cost:.6f})"


@dataclass(frozen=True)
class CascadeReport:
    """What a cascade did (``Response.cascade``): the models it asked, in order, each answer's
    check, and the tiers it skipped before any call (``skipped``: the router's prior).

    ``streaming`` is ``"buffer"`` or ``"replace"`` for a stream (None: ``chat``); ``replaced``
    is True when a streamed answer was shown and then replaced by a stronger model's.
    """

    steps: tuple[CascadeStep, ...]
    skipped: tuple[str, ...] = ()
    streaming: str | None = None
    replaced: bool = False

    @property
    def escalated(self) -> bool:
        """Whether an answer was discarded and a stronger model asked."""
        return len(self.steps) > 1

    @property
    def accepted(self) -> CascadeStep:
        return self.steps[-1]

    @property
    def verifier_cost(self) -> float:
        """What checking the answers cost (a judge's or a second sample's calls)."""
        return sum(step.verifier_cost for step in self.steps)

    @property
    def discarded_cost(self) -> float:
        """What the discarded answers cost."""
        return sum(step.cost for step in self.steps if not step.accepted)

    @property
    def overhead(self) -> float:
        """What the cascade paid beyond the accepted answer: discarded answers and checks."""
        return self.discarded_cost + self.verifier_cost

    @property
    def cost(self) -> float:
        """Every step's answer and every check."""
        return sum(step.cost for step in self.steps) + self.verifier_cost

    def __str__(self) -> str:
        path = " → ".join(f"{s.model} ({s.tier}, {_step_outcome(s)})" for s in self.steps)
        skipped = f"; skipped {', '.join(self.skipped)}" if self.skipped else ""
        return f"cascade: {path}{skipped}"


def _step_outcome(step: CascadeStep) -> str:
    if step.verdict is None:
        return "accepted unchecked" if step.accepted else "discarded"
    outcome = "passed" if step.verdict.passed else "failed"
    return f"{step.verdict.verifier or 'check'} {outcome} {step.verdict.score:.2f}"


@dataclass(frozen=True)
class Replaced:
    """A stream's marker that the answer shown so far is being replaced (a cascade in
    ``"replace"`` streaming mode whose streamed answer failed its check). ``text`` is the
    answer shown and now withdrawn, ``step`` its :class:`CascadeStep`, ``by`` the model whose
    answer follows. ``stream.events()`` yields it between the two answers' text; iterating a
    stream for text yields :attr:`separator` instead."""

    text: str
    step: CascadeStep
    by: str

    @property
    def separator(self) -> str:
        """The line a text-only stream shows between the withdrawn answer and its replacement."""
        why = self.step.reason.replace("\n", " ")
        if len(why) > 120:
            why = why[:117] + "..."
        return (
            f"\n\n[orkestra: the answer above, from {self.step.model}, failed its check "
            f"({why}); replaced by {self.by}'s answer:]\n\n"
        )

    def __str__(self) -> str:
        return self.separator


@dataclass(frozen=True)
class Response:
    """A model's answer, with what it cost and what it saved.

    ``savings`` and ``base_cost`` are an estimate: what the provider's premium model
    (``base_model``) would have cost for the *same* token counts. A premium model usually writes
    longer answers, so the real saving tends to be larger.
    """

    text: str
    provider: str
    model: str
    usage: Usage
    input_cost: float
    output_cost: float
    base_model: str
    base_cost: float
    routing: RoutingDecision
    finish_reason: str | None = None
    latency_ms: float = 0.0
    response_id: str | None = field(default=None, compare=False)
    attempts: tuple[Attempt, ...] = field(default=(), compare=False)
    """Every call made for this answer, failed retries and fallbacks first, this one last."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model asked to call (empty when it answered in text)."""
    parsed: Any = field(default=None, compare=False)
    """With ``response_format=``: the answer parsed and validated (a dict, or an instance of
    the pydantic model given)."""
    cache_savings: float = 0.0
    """Dollars the provider's prompt cache saved on this call: the cost of the same tokens
    without any caching minus ``cost`` (cache writes, dearer on Anthropic, count against it)."""
    stop_reason: StopReason = "stop"
    """Why the answer ended, in the same terms for every provider: ``"stop"``, ``"length"``
    (it hit ``max_tokens``), ``"tool_calls"`` or ``"content_filter"`` (``finish_reason`` is
    the provider's own)."""
    ignored_params: tuple[str, ...] = ()
    """Parameters of the call the answering model could not take, so they were not sent (a
    ``temperature`` for a model that only takes its own); each is also warned about once."""
    call_id: str = field(default_factory=lambda: os.urandom(16).hex(), compare=False)
    """This answer's unique id, and its record's id in the usage log: the library records
    every call itself, so recording the same Response again adds no second row."""
    cascade: CascadeReport | None = field(default=None, compare=False)
    """For a cascade (``mode="cascade"``, ``cascade=True``): every model asked, each answer's
    check and cost (None: a routed call)."""

    @property
    def cost(self) -> float:
        """What the call cost, in dollars; for a cascade also its discarded answers and checks
        (``input_cost``/``output_cost`` are the accepted answer's)."""
        if self.cascade is not None:
            return self.input_cost + self.output_cost + self.cascade.overhead
        return self.input_cost + self.output_cost

    @property
    def total_cost(self) -> float:
        """What every attempt cost together (``cost`` plus whatever failed attempts billed)."""
        if not self.attempts:
            return self.cost
        checks = self.cascade.verifier_cost if self.cascade is not None else 0.0
        return sum(a.cost for a in self.attempts) + checks

    @property
    def input_tokens(self) -> int:
        return self.usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.usage.output_tokens

    @property
    def tier(self) -> Tier:
        return self.routing.tier

    @property
    def savings(self) -> float:
        """Dollars saved against ``base_model`` on the same tokens (negative if it cost more)."""
        return self.base_cost - self.cost

    @property
    def savings_percent(self) -> float:
        """``savings`` as a percentage of ``base_cost`` (0 when the base cost is 0)."""
        return 100.0 * self.savings / self.base_cost if self.base_cost > 0 else 0.0

    def message(self) -> dict[str, Any]:
        """This answer as the assistant turn to append to ``messages`` for the next call."""
        turn: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            turn["tool_calls"] = list(self.tool_calls)
        return turn

    def summary(self) -> str:
        """One line: model, tokens, cost and savings (and a cascade's steps)."""
        cached = (
            f" · {self.usage.cache_read_tokens} cached (saved ${self.cache_savings:.6f})"
            if self.usage.cache_read_tokens
            else ""
        )
        line = (
            f"{self.provider}/{self.model} ({self.tier}) · "
            f"{self.input_tokens} in / {self.output_tokens} out tokens{cached} · "
            f"${self.cost:.6f} "
            f"(saved ${self.savings:.6f}, {self.savings_percent:.1f}% vs {self.base_model})"
        )
        return line if self.cascade is None else f"{line} · {self.cascade}"

    def __str__(self) -> str:
        return f"{self.text}\n\n— {self.summary()}"
