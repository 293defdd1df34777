"""A cascade call: each step a normal call of the resilience layer (retries, fallback upward,
the circuit breaker, budgets reserved per attempt), the verifier between steps, and one usage
record with every attempt at the end.

:class:`CascadeCall` stands where a :class:`~orkestra.resilience.call.Call` stands for a routed
call (``chat``, ``achat``, ``stream``, ``astream``), so the hooks around a call are the same.
What happens between two steps — parse the answer, decide whether it must be checked, check it,
settle, climb — is written once here (:meth:`triage`, :meth:`verify`/:meth:`averify`,
:meth:`settle`, :meth:`climb`) for the chat drivers below and the streams of
:mod:`orkestra._cascade.stream`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from orkestra._call import Request
from orkestra._cascade.flow import CascadeFlow, Rung, invalid_output_verdict
from orkestra._types import Response, RoutingDecision, Verdict
from orkestra.errors import ConfigurationError, OrkestraError, StructuredOutputError
from orkestra.resilience import drivers
from orkestra.resilience.call import Call, StreamClosed
from orkestra.resilience.executor import Target

if TYPE_CHECKING:
    from orkestra._cascade.stream import AsyncCascadeStream, CascadeStream

__all__ = ["CascadeCall", "Triage", "default_verifier", "resolve_verifier"]

Planner = Callable[[RoutingDecision], list[Target]]
"""The targets of one rung: its model, then its fallbacks (upward only)."""

Event = tuple[str, dict[str, Any]]
_T = TypeVar("_T")


def default_verifier() -> Any:
    """``verifiers.heuristic()``: free format and consistency checks."""
    from orkestra.verifiers import heuristic

    return heuristic()


def resolve_verifier(value: Any) -> Any:
    """A verifier from what a user passed (a verifier, a function, ``"heuristic"``)."""
    from orkestra.verifiers import as_verifier

    return as_verifier(value)


def _name(verifier: Any) -> str:
    return str(getattr(verifier, "name", None) or type(verifier).__name__)


@dataclass(frozen=True)
class Triage:
    """One step's answer, parsed, and what it needs: a check by the verifier (``check``), a
    verdict already reached (``verdict``: it failed the request's own schema), acceptance
    unchecked (``note`` says why), or raising (``error``: an invalid answer at the top)."""

    response: Response
    check: bool = False
    verdict: Verdict | None = None
    note: str = ""
    error: StructuredOutputError | None = None


class CascadeCall:
    """One request as a cascade over ``flow``'s ladder: ``plan`` gives each rung's targets,
    ``verifier`` checks each answer below the top."""

    def __init__(
        self,
        call: Call,
        flow: CascadeFlow,
        plan: Planner,
        verifier: Any,
        first: Rung,
    ) -> None:
        from orkestra.verifiers import Request as CheckRequest

        self.call, self.flow, self.plan = call, flow, plan
        self.verifier = verifier
        self.first = first
        request: Request = call.request
        self.checked_request = CheckRequest(request.text, request.conversation, request.options)
        self.recorded = False
        self.notify: Callable[..., None] | None = None
        """Set by the caller: emits ``on_cascade_step`` (and the stream's events)."""
        self.anotify: Callable[..., Awaitable[None]] | None = None

    # -- between two steps ---------------------------------------------------------------

    def triage(self, response: Response, *, shown: bool = False) -> Triage:
        """Parse ``response`` and decide what it needs. ``shown``: it was streamed to the
        caller already (in ``"buffer"`` mode only an answer nobody will check is)."""
        note = self.flow.unchecked(response)
        if note is None and shown:
            note = (
                f"shown while streaming: a fallback answered from {response.routing.tier}, "
                "after the stream had begun"
            )
        try:
            response = self.call.parsed(response)
        except StructuredOutputError as error:
            answer = error.response if isinstance(error.response, Response) else response
            if not self.flow.climbable(answer):
                return Triage(answer, note=note or "", error=error)
            return Triage(answer, verdict=invalid_output_verdict(error))
        return Triage(response, check=note is None, note=note or "")

    def _answer(self, response: Response) -> Any:
        from orkestra.verifiers import Answer

        return Answer.from_response(response)

    def _checked(self, verdict: object) -> Verdict:
        if not isinstance(verdict, Verdict):
            raise ConfigurationError(
                f"the verifier {self.verifier!r} returned {type(verdict).__name__}, not a "
                "Verdict (verify(request, answer) -> orkestra.verifiers.Verdict)"
            )
        return verdict

    def _could_not_check(self, error: OrkestraError) -> Verdict:
        """A check that failed to run (its judge's provider is down...): the answer is not
        trusted; what the check billed still counts."""
        return Verdict(
            False,
            0.0,
            f"the check could not run ({type(error).__name__}: {error})",
            sum(a.cost for a in error.attempts),
            _name(self.verifier),
        )

    def verify(self, triage: Triage) -> Verdict:
        """Run the verifier (a :class:`ConfigurationError` or a bug in it raises, after the
        answer is recorded; a provider error in it fails the answer)."""
        try:
            answer = self._answer(triage.response)
            return self._checked(self.verifier.verify(self.checked_request, answer))
        except ConfigurationError as error:
            self.check_raised(triage.response, error)
            raise
        except OrkestraError as error:
            return self._could_not_check(error)
        except Exception as error:
            self.check_raised(triage.response, error)
            raise

    async def averify(self, triage: Triage) -> Verdict:
        """:meth:`verify` in async code: the verifier's own ``averify``, else a worker thread."""
        from orkestra.verifiers import averify

        try:
            own = getattr(self.verifier, "averify", None)
            answer = self._answer(triage.response)
            if own is not None and inspect.iscoroutinefunction(own):
                verdict = await own(self.checked_request, answer)
            else:
                verdict = await averify(self.verifier, self.checked_request, answer)
            return self._checked(verdict)
        except ConfigurationError as error:
            await self._off_the_loop(self.check_raised, triage.response, error)
            raise
        except OrkestraError as error:
            return self._could_not_check(error)
        except Exception as error:
            await self._off_the_loop(self.check_raised, triage.response, error)
            raise

    def settle(self, triage: Triage, verdict: Verdict | None, started: float) -> bool:
        """Record the step (True: its answer is accepted)."""
        return self.flow.settle(triage.response, verdict, triage.note, started)

    def step_event(self, to: Rung | None) -> Event:
        """The ``on_cascade_step`` event of the step just settled."""
        step = self.flow.steps[-1]
        target = None if to is None else f"{to.decision.provider}/{to.decision.model}"
        return "on_cascade_step", {"step": step, "escalating": to is not None, "to": target}

    def climb(self) -> Rung:
        """The next rung after a failed check."""
        rung = self.flow.next_rung()
        if rung is None:  # pragma: no cover - settle() accepts when nothing is left above
            raise RuntimeError("a cascade climbed past its top rung")
        return rung

    # -- the end -------------------------------------------------------------------------

    def final(self, response: Response) -> Response:
        """The cascade's response for the accepted ``response``, recorded."""
        final = self.flow.response(response)
        self.recorded = True
        self.call.record(final)
        return final

    async def _off_the_loop(self, record: Callable[..., _T], *args: Any) -> _T:
        """``record(*args)`` in async code: in a worker thread when recording settles a session
        that waits on a database (``Call.on_response_blocks``), as a routed call's answer does."""
        if self.call.on_response_blocks:
            return await asyncio.to_thread(record, *args)
        return record(*args)

    async def afinal(self, response: Response) -> Response:
        """:meth:`final` in async code."""
        return await self._off_the_loop(self.final, response)

    async def ainvalid(self, triage: Triage) -> StructuredOutputError:
        """:meth:`invalid` in async code."""
        return await self._off_the_loop(self.invalid, triage)

    def invalid(self, triage: Triage) -> StructuredOutputError:
        """An answer at the top that failed its ``response_format``: recorded as such, the
        error carrying the cascade's response."""
        assert triage.error is not None
        self.settle(triage, None, 0.0)
        final = self.flow.response(triage.response)
        error = triage.error
        error.response, error.attempts = final, final.attempts
        self.recorded = True
        self.call.record(final, error)
        return error

    def check_raised(self, response: Response, error: Exception) -> Exception:
        """The verifier raised: the answer (made and billed) is recorded with the error's
        name as its status, and the error raised with it."""
        self.flow.settle(response, None, f"the check raised {type(error).__name__}: {error}")
        final = self.flow.response(response)
        self.recorded = True
        self.call.record(final, error)
        if isinstance(error, OrkestraError):
            error.attempts, error.response = final.attempts, final
        return error

    def closed(self, targets: Sequence[Target]) -> None:
        """The reader closed the stream before it ended: recorded with what the cascade had
        billed by then (each abandoned attempt's own usage was settled on the budgets)."""
        if self.recorded:
            return
        self.recorded = True
        closed = StreamClosed("the stream was closed before it ended")
        closed.attempts = self.flow.billed
        self.call.record_failure(targets, closed, self.flow.started)

    def failed(self, targets: Sequence[Target], error: OrkestraError) -> OrkestraError:
        """A step's call failed: the error with every attempt of the cascade (and its last
        answer, when a check had failed), recorded once."""
        if self.recorded:
            return error
        error = self.flow.failed(error)
        self.recorded = True
        self.call.record_failure(targets, error, self.flow.started)
        return error

    # -- chat ------------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        if self.notify is not None:
            self.notify(event[0], **event[1])

    async def _aemit(self, event: Event) -> None:
        if self.anotify is not None:
            await self.anotify(event[0], **event[1])

    def chat(self, targets: Sequence[Target]) -> Response:
        rung = self.first
        while True:
            started = time.perf_counter()
            try:
                result = drivers.complete(self.call.flow(targets), self.call.complete)
            except OrkestraError as error:
                self.failed(targets, error)
                raise
            triage = self.triage(self.call.respond(result, started))
            if triage.error is not None:
                raise self.invalid(triage)
            verdict = self.verify(triage) if triage.check else triage.verdict
            if self.settle(triage, verdict, started):
                self._emit(self.step_event(None))
                return self.final(triage.response)
            rung = self.climb()
            self._emit(self.step_event(rung))
            try:
                targets = self.plan(rung.decision)
            except OrkestraError as error:
                self.failed(targets, error)
                raise

    async def achat(self, targets: Sequence[Target]) -> Response:
        rung = self.first
        while True:
            started = time.perf_counter()
            try:
                result = await drivers.acomplete(self.call.flow(targets), self.call.acomplete)
            except OrkestraError as error:
                self.failed(targets, error)
                raise
            triage = self.triage(self.call.respond(result, started))
            if triage.error is not None:
                raise await self.ainvalid(triage)
            verdict = await self.averify(triage) if triage.check else triage.verdict
            if self.settle(triage, verdict, started):
                await self._aemit(self.step_event(None))
                return await self.afinal(triage.response)
            rung = self.climb()
            await self._aemit(self.step_event(rung))
            try:
                targets = self.plan(rung.decision)
            except OrkestraError as error:
                self.failed(targets, error)
                raise

    # -- streams ---------------------------------------------------------------------------

    def stream(self, targets: Sequence[Target], routing: RoutingDecision) -> CascadeStream:
        from orkestra._cascade.stream import CascadeStream

        return CascadeStream(self, targets, routing)

    def astream(self, targets: Sequence[Target], routing: RoutingDecision) -> AsyncCascadeStream:
        from orkestra._cascade.stream import AsyncCascadeStream

        return AsyncCascadeStream(self, targets, routing)
