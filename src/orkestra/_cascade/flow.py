"""The decisions of one cascade, with no I/O: which rung to ask next, whether its answer must
be checked, whether to climb, and the :class:`~orkestra.Response` that reports it all.

The drivers (:mod:`orkestra._cascade.run` for ``chat``, :mod:`orkestra._cascade.stream` for
streams, sync and async) make each step a normal call of the resilience layer and run the
verifier; every decision is made here, once for all four::

    flow = CascadeFlow(decision, rungs, policy)
    while (rung := flow.next_rung()) is not None:
        response = <call rung.decision's targets>
        note = flow.unchecked(response)          # None: it must be checked
        verdict = None if note else verifier.verify(...)
        if flow.settle(response, verdict, note):
            break
    return flow.response(response)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from orkestra._cascade.policy import CascadePolicy
from orkestra._types import (
    TIERS,
    Attempt,
    Candidate,
    CascadeReport,
    CascadeStep,
    Response,
    RoutingDecision,
    Tier,
    Verdict,
)
from orkestra.errors import OrkestraError, StructuredOutputError

__all__ = ["CascadeFlow", "Rung", "invalid_output_verdict"]


def _rank(tier: Tier) -> int:
    return TIERS.index(tier)


@dataclass(frozen=True)
class Rung:
    """The next model to ask: its candidate and the routing decision its call is planned from."""

    number: int
    candidate: Candidate
    decision: RoutingDecision
    top: bool


def invalid_output_verdict(error: StructuredOutputError) -> Verdict:
    """The verdict on an answer that failed the request's own ``response_format``: it fails,
    whatever the verifier would say."""
    return Verdict(False, 0.0, f"not valid for the response_format: {error.reason}", 0.0, "schema")


class CascadeFlow:
    """One cascade over ``rungs`` (the ladder, cheapest first), for a call routed as
    ``decision`` (its ``scores`` are the prior). ``floor``: the lowest tier to start from (a
    sticky session's). Not thread-safe itself (one per call)."""

    def __init__(
        self,
        decision: RoutingDecision,
        rungs: Sequence[Candidate],
        policy: CascadePolicy,
        *,
        floor: Tier | None = None,
        streaming: str | None = None,
    ) -> None:
        if not rungs:
            raise ValueError("a cascade needs at least one rung")
        self.decision = decision
        self.policy = policy
        self.streaming = streaming
        self.started = time.perf_counter()
        top = rungs[-1]
        self.rungs = [r for r in rungs if floor is None or _rank(r.tier) >= _rank(floor)] or [top]
        self.top = top
        self.skipped: list[str] = []
        if floor is not None and len(self.rungs) < len(rungs):
            self.skipped.append(f"tiers below {floor} (the session is on {floor})")
        self.steps: list[CascadeStep] = []
        self.replaced = False
        self._earlier: list[Attempt] = []  # the attempts of steps already settled
        self._answers: list[Response] = []  # each step's own response
        self._floor = 0  # the lowest tier rank the next rung may have
        self._asked = 0  # rungs handed out so far

    # -- the prior -----------------------------------------------------------------------

    def _predicted(self, tier: Tier) -> float | None:
        score = self.decision.scores.get(tier)
        return None if score is None else float(score)

    def next_rung(self) -> Rung | None:
        """The next rung to ask (rungs the prior rules out are skipped and noted), or None."""
        while self._asked < len(self.rungs):
            candidate = self.rungs[self._asked]
            self._asked += 1
            if _rank(candidate.tier) < self._floor:
                continue
            top = candidate is self.rungs[-1]
            q = self._predicted(candidate.tier)
            if not top and q is not None:
                threshold = self.policy.skip_threshold(candidate, self.top)
                if q < threshold:
                    self.skipped.append(
                        f"{candidate.tier} ({candidate.model}): the router predicts "
                        f"{q:.2f} < {threshold:.3g}"
                    )
                    continue
            return Rung(len(self.steps) + 1, candidate, self._step_decision(candidate), top)
        return None

    def _step_decision(self, candidate: Candidate) -> RoutingDecision:
        d = self.decision
        if self.steps:
            last = self.steps[-1]
            why = f"escalated: {last.model}'s answer failed its check ({last.reason})"
        elif self.skipped:
            why = f"skipped {'; '.join(self.skipped)}"
        else:
            why = "the cheapest adequate tier first"
        return dataclasses.replace(
            d,
            provider=candidate.provider,
            model=candidate.model,
            tier=candidate.tier,
            reason=f"cascade step {len(self.steps) + 1} ({candidate.tier}): {why}",
        )

    def climbable(self, response: Response) -> bool:
        """Whether a rung above ``response``'s tier is left to ask."""
        tier = _rank(response.routing.tier)
        return any(_rank(r.tier) > tier for r in self.rungs[self._asked :])

    def trusts(self, tier: Tier) -> bool:
        """Whether the prior accepts ``tier``'s answers unchecked."""
        q = self._predicted(tier)
        trust = self.policy.trust_above
        return trust is not None and q is not None and q >= trust

    def unchecked(self, response: Response) -> str | None:
        """Why ``response`` is accepted without a check, or None when it must be checked."""
        tier = response.routing.tier
        if not self.climbable(response):
            return "the top of the ladder: nothing stronger to ask"
        if self.trusts(tier):
            q, trust = self._predicted(tier), self.policy.trust_above
            return f"trusted: the router predicts {tier} quality {q:.2f} ≥ {trust:.3g}"
        return None

    # -- after each step -----------------------------------------------------------------

    def settle(
        self, response: Response, verdict: Verdict | None, note: str = "", started: float = 0.0
    ) -> bool:
        """Record a step's answer and its check; True when it is accepted (the cascade ends),
        False when the cascade climbs above the answering tier."""
        accepted = verdict is None or verdict.passed or not self.climbable(response)
        attempts = _marked(response.attempts, verdict, discarded=not accepted)
        self.steps.append(
            CascadeStep(
                provider=response.provider,
                model=response.model,
                tier=response.routing.tier,
                accepted=accepted,
                verdict=verdict,
                cost=response.cost,
                text=response.text,
                usage=response.usage,
                note=note,
                latency_ms=(time.perf_counter() - started) * 1000.0 if started else 0.0,
                attempts=attempts,
            )
        )
        self._answers.append(response)
        if not accepted:
            self._earlier.extend(attempts)
            self._floor = _rank(response.routing.tier) + 1
        return accepted

    def report(self) -> CascadeReport:
        return CascadeReport(
            tuple(self.steps), tuple(self.skipped), self.streaming, replaced=self.replaced
        )

    def response(self, answer: Response) -> Response:
        """The cascade's :class:`Response`: the accepted ``answer``, with every attempt of every
        step (discarded answers marked), the report, and the whole cascade's latency."""
        last = self.steps[-1]
        report = self.report()
        routing = answer.routing
        if len(self.steps) > 1 or self.skipped:
            routing = dataclasses.replace(routing, reason=f"{report}; {routing.reason}")
        return dataclasses.replace(
            answer,
            attempts=(*self._earlier, *last.attempts),
            cascade=report,
            routing=routing,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
        )

    def held(self) -> Response | None:
        """The last answer, as the response of a cascade that cannot climb any further (a budget
        or a failing provider stopped it): what an error raised while climbing carries. Its
        check failed: ``response.cascade.accepted.passed`` is False."""
        if not self.steps:
            return None
        last, answer = self.steps[-1], self._answers[-1]
        attempts = _marked(answer.attempts, last.verdict, discarded=False)
        self.steps[-1] = dataclasses.replace(last, accepted=True, attempts=attempts)
        del self._earlier[len(self._earlier) - len(last.attempts) :]
        return self.response(answer)

    @property
    def billed(self) -> tuple[Attempt, ...]:
        """The attempts of the steps settled so far (their answers were billed)."""
        return tuple(self._earlier) + (self.steps[-1].attempts if self._accepted else ())

    @property
    def _accepted(self) -> bool:
        return bool(self.steps) and self.steps[-1].accepted

    def failed(self, error: OrkestraError) -> OrkestraError:
        """``error`` (raised while asking a rung) with every attempt of the cascade, and the
        last answer the cascade had (``error.response``, its check failed) when there is one."""
        error.attempts = (*self._earlier, *error.attempts)
        if self.steps and error.response is None:
            error.response = self.held()
        return error


def _marked(
    attempts: tuple[Attempt, ...], verdict: Verdict | None, *, discarded: bool
) -> tuple[Attempt, ...]:
    """A step's attempts, its answering one (the last) carrying the verdict."""
    if not attempts:
        return attempts
    answer = dataclasses.replace(attempts[-1], verdict=verdict, discarded=discarded)
    return (*attempts[:-1], answer)
