"""Ordinary-prompt pairs: does the router treat an easy prompt and a hard one of the same kind
the way a person would?

A pairs file is JSON Lines with ``id``, ``kind`` (chat, facts, code, ...), ``half`` (``dev`` or
``heldout``), ``easy`` and ``hard``. For each pair and provider, the decision at the default
knob should send the easy prompt to the budget tier and the hard one above it, and the router's
*need score* — how far the budget tier's predicted quality is below the best tier's, the
quantity the margin rule compares with ``1 − knob`` — should be higher for the hard prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orkestra._types import RoutingDecision
from orkestra.errors import DataFormatError

__all__ = ["Pair", "PairOutcome", "load_pairs", "need_score", "pass_rates", "route_pairs"]


@dataclass(frozen=True)
class Pair:
    id: str
    kind: str
    half: str
    easy: str
    hard: str


@dataclass(frozen=True)
class PairOutcome:
    pair: Pair
    easy: RoutingDecision
    hard: RoutingDecision

    @property
    def easy_to_budget(self) -> bool:
        return self.easy.tier == "budget"

    @property
    def hard_above_budget(self) -> bool:
        return self.hard.tier != "budget"

    @property
    def ranked(self) -> bool:
        return need_score(self.hard) > need_score(self.easy)


class _Routes(Protocol):
    def route(self, prompt: str) -> RoutingDecision: ...


def load_pairs(path: Path | str) -> list[Pair]:
    """Read and check a pairs file."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            pairs.append(Pair(obj["id"], obj["kind"], obj["half"], obj["easy"], obj["hard"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataFormatError(f"{path}:{number}: not a pair ({e})") from None
    return pairs


def need_score(decision: RoutingDecision) -> float:
    """How far the budget tier's predicted quality is below the best tier's."""
    return max(decision.scores.values()) - decision.scores["budget"]


def route_pairs(provider: _Routes, pairs: Iterable[Pair]) -> list[PairOutcome]:
    return [PairOutcome(p, provider.route(p.easy), provider.route(p.hard)) for p in pairs]


def pass_rates(outcomes: Sequence[PairOutcome]) -> Mapping[str, tuple[float, float, float, int]]:
    """Per kind, and ``"all"``: (easy → budget, hard → above budget, hard ranked above easy, n)."""
    groups: dict[str, list[PairOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.pair.kind, []).append(outcome)
    groups["all"] = list(outcomes)
    return {
        kind: (
            sum(o.easy_to_budget for o in group) / len(group),
            sum(o.hard_above_budget for o in group) / len(group),
            sum(o.ranked for o in group) / len(group),
            len(group),
        )
        for kind, group in groups.items()
        if group
    }
