"""Cascades: answer with the cheapest adequate model, check the answer, climb only when the
check fails (``Provider(mode="cascade")``, ``chat(cascade=True)``; docs/routing.md).

- :mod:`~orkestra._cascade.policy`: the settings, the ladder, the router's prior (pure);
- :mod:`~orkestra._cascade.flow`: the decisions of one cascade and its report (pure);
- :mod:`~orkestra._cascade.run`: each step a call of the resilience layer, the verifier between;
- :mod:`~orkestra._cascade.stream`: the same as a stream, buffered or visibly replaced.

:class:`Cascades` is what a ``Provider``/``MultiProvider`` holds: its mode, verifier and policy,
and the per-call arguments that turn a cascade on or off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orkestra._cascade.flow import CascadeFlow
from orkestra._cascade.policy import (
    MODES,
    STREAMING,
    CascadePolicy,
    check_mode,
    check_streaming,
    ladder,
)
from orkestra._cascade.run import CascadeCall, default_verifier, resolve_verifier
from orkestra._types import Candidate, RoutingDecision, Tier
from orkestra.errors import ConfigurationError, InvalidRequestError
from orkestra.resilience.call import Call
from orkestra.resilience.executor import Target

__all__ = [
    "MODES",
    "STREAMING",
    "CascadeCall",
    "CascadePolicy",
    "Cascades",
    "ladder",
]


class Cascades:
    """An object's cascade settings: ``mode`` (``"route"`` or ``"cascade"``), its ``verifier``
    (None: ``verifiers.heuristic()``, made on first use) and ``policy``."""

    def __init__(self, mode: str, verifier: Any, policy: CascadePolicy | None) -> None:
        self.mode = check_mode(mode)
        if policy is not None and not isinstance(policy, CascadePolicy):
            raise ConfigurationError(
                f"cascade_policy must be an orkestra.CascadePolicy, not {type(policy).__name__}"
            )
        self.policy = policy if policy is not None else CascadePolicy()
        self._verifier = None if verifier is None else resolve_verifier(verifier)

    @property
    def verifier(self) -> Any:
        if self._verifier is None:
            self._verifier = default_verifier()
        return self._verifier

    def wanted(self, cascade: object, verifier: object, model: str | None) -> bool:
        """Whether a call with these arguments is a cascade (its ``cascade=``, else a
        ``verifier=`` of its own, else the mode; a call naming its ``model`` never is)."""
        if cascade is None:
            return model is None and (self.mode == "cascade" or verifier is not None)
        if not isinstance(cascade, bool):
            raise InvalidRequestError(f"cascade must be True, False or None, not {cascade!r}")
        if cascade and model is not None:
            raise InvalidRequestError(
                f"cascade=True picks its own models; it cannot be combined with model={model!r}"
            )
        if not cascade and verifier is not None:
            raise InvalidRequestError(
                "verifier= checks a cascade's answers; this call has cascade=False"
            )
        return cascade

    def verifier_for(self, verifier: object) -> Any:
        return self.verifier if verifier is None else resolve_verifier(verifier)

    def streaming_for(self, streaming: object) -> str:
        return self.policy.streaming if streaming is None else check_streaming(streaming)

    def start(
        self,
        call: Call,
        decision: RoutingDecision,
        rungs: Sequence[Candidate],
        plan: Callable[[RoutingDecision], list[Target]],
        *,
        verifier: object = None,
        streaming: object = None,
        stream: bool = False,
        floor: Tier | None = None,
    ) -> tuple[CascadeCall, list[Target], RoutingDecision]:
        """The cascade of one call, its first rung's targets and decision (planned now, so a
        request no model can take fails before any call)."""
        check = self.verifier_for(verifier)
        mode = self.streaming_for(streaming) if stream else None
        flow = CascadeFlow(decision, rungs, self.policy, floor=floor, streaming=mode)
        first = flow.next_rung()
        assert first is not None  # the top rung is never skipped
        targets = plan(first.decision)
        return CascadeCall(call, flow, plan, check, first), targets, first.decision
