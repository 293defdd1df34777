"""How a cascade climbs: its settings (:class:`CascadePolicy`), the ladder of models it may ask
(:func:`ladder`) and the router's prior on each rung. Pure; no I/O.

The ladder is the cheapest adequate model of each tier, tiers in cost order: the routing
decision's candidates are exactly the models that passed the capability filter (tools, vision,
JSON output, context), with their expected cost for this prompt. A cascade asks the first rung,
checks its answer, and climbs one rung at a time while the checks fail; the top rung's answer is
taken unchecked (there is nothing stronger to ask).

The router's predicted quality ``q`` of a rung's tier is the prior:

- **skip** a rung below the top when ``q < skip_below``: the router is confident it would
  fail. ``"auto"`` (the default) is the rung's expected cost as a share of the top rung's:
  if ``q`` were the chance that its answer passes, trying it first would then cost more on
  average (its price, plus the top rung's whenever it fails) than asking the top rung at once.
- **trust** a rung's answer without checking it when ``q >= trust_above`` (default None:
  every answer below the top is checked; the default verifier is free, and on held-out rows
  even the router's surest "easy" prompts had wrong cheap answers; see docs/routing.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orkestra._types import TIERS, Candidate, Tier
from orkestra.errors import ConfigurationError, InvalidRequestError

__all__ = [
    "MODES",
    "STREAMING",
    "CascadePolicy",
    "check_mode",
    "check_streaming",
    "ladder",
]

MODES = ("route", "cascade")
"""``Provider(mode=...)``: route each call to one model, or cascade (cheap first, check,
escalate)."""

STREAMING = ("buffer", "replace")
"""How a cascade streams: ``"buffer"`` holds an answer until its check passes (nothing shown is
ever withdrawn); ``"replace"`` streams it at once and, if its check fails, marks it replaced
before the stronger model's answer follows."""

Streaming = Literal["buffer", "replace"]


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise ConfigurationError(f"mode must be 'route' or 'cascade', not {mode!r}")
    return str(mode)


def check_streaming(streaming: object) -> Streaming:
    if streaming == "buffer":
        return "buffer"
    if streaming == "replace":
        return "replace"
    raise InvalidRequestError(f"cascade streaming must be 'buffer' or 'replace', not {streaming!r}")


def _fraction(name: str, value: object, *, allow: Iterable[object] = ()) -> Any:
    if value in tuple(allow):
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        options = " or ".join(repr(a) for a in allow)
        extra = f", or {options}" if options else ""
        raise ConfigurationError(f"{name} must be a number in [0, 1]{extra}, not {value!r}")
    return float(value)


@dataclass
class CascadePolicy:
    """The router's prior in a cascade, and how a cascade streams.

    Args:
        skip_below: skip a rung below the top when the router predicts its tier's quality
            below this; ``"auto"``: below the rung's expected cost as a share of the top
            rung's (the break-even of trying it first). ``0`` never skips.
        trust_above: accept a rung's answer unchecked when the router predicts its tier's
            quality at least this (None: always check below the top).
        streaming: ``"buffer"`` (default) or ``"replace"`` (see :data:`STREAMING`).

    :meth:`calibrate` sets both thresholds from your own prompts, like the router's knob.
    """

    skip_below: float | Literal["auto"] = "auto"
    trust_above: float | None = None
    streaming: Streaming = "buffer"

    def __post_init__(self) -> None:
        self.skip_below = _fraction("skip_below", self.skip_below, allow=("auto",))
        if self.trust_above is not None:
            self.trust_above = _fraction("trust_above", self.trust_above)
        try:
            self.streaming = check_streaming(self.streaming)
        except InvalidRequestError as error:
            raise ConfigurationError(str(error)) from None

    def skip_threshold(self, rung: Candidate, top: Candidate) -> float:
        """The predicted quality below which ``rung`` is skipped."""
        if self.skip_below == "auto":
            if top.expected_cost <= 0:
                return 0.0  # free models: trying costs nothing
            return min(1.0, rung.expected_cost / top.expected_cost)
        return float(self.skip_below)

    def calibrate(
        self,
        router: Any,
        prompts: Sequence[str],
        *,
        skip_share: float | None = None,
        trust_share: float | None = None,
        tier: Tier = "budget",
    ) -> CascadePolicy:
        """Set the thresholds from your own prompts: ``skip_share`` of them should skip the
        ``tier`` rung, ``trust_share`` have its answer accepted unchecked (by the router's
        predicted quality of ``tier``, as a call would see it). ``0`` turns either off.
        Returns this policy.

        >>> policy.calibrate(provider.router, my_prompts, skip_share=0.05)  # doctest: +SKIP
        """
        from orkestra.verifiers._calibrate import calibrate_threshold

        if skip_share is None and trust_share is None:
            raise ConfigurationError("calibrate to skip_share=..., trust_share=... or both")
        if not prompts:
            raise ConfigurationError("calibration needs at least one prompt")
        predict = getattr(router, "predict", None)
        if not callable(predict):
            raise ConfigurationError(f"not a router (it has no predict()): {router!r}")
        scores = [float(predict(p).scores.get(tier, 0.0)) for p in prompts]
        scores = [min(1.0, max(0.0, s)) for s in scores]
        if skip_share is not None:
            share = _fraction("skip_share", skip_share)
            self.skip_below = (
                0.0 if share == 0 else calibrate_threshold(scores, premium_share=share)
            )
        if trust_share is not None:
            share = _fraction("trust_share", trust_share)
            self.trust_above = (
                None if share == 0 else calibrate_threshold(scores, premium_share=1.0 - share)
            )
        return self


def ladder(
    candidates: Iterable[Candidate], usable: Mapping[str, bool] | None = None
) -> list[Candidate]:
    """The cheapest candidate of each tier, tiers in cost order (a model already on a lower
    rung is not repeated). ``usable``: provider → whether it can be called (has a key)."""
    rungs: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    pool = [c for c in candidates if usable is None or usable.get(c.provider, False)]
    for tier in TIERS:
        group = sorted((c for c in pool if c.tier == tier), key=lambda c: c.expected_cost)
        for candidate in group:
            if (candidate.provider, candidate.model) not in seen:
                seen.add((candidate.provider, candidate.model))
                rungs.append(candidate)
                break
    return rungs
