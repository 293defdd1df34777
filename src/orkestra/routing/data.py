"""Routing outcome data: JSON Lines rows of prompts and how well each model did on them.

The format (``shared/data/README.md``): every row has ``id``, ``source``, ``task``, ``prompt``,
``scores`` (``{model: 0..1}``) and ``split`` (``train``/``test``); rows may also carry
``cost_usd`` and ``tokens_in_out`` (per model, from a real call) or ``price_per_mtok_in_out``.

Which data model stands for which of our tiers is written down once, in :data:`DATASET_TIERS`.
These are older models: the data teaches *which prompts are hard* (where a weak model fails and a
strong one succeeds), not how today's models compare, which is the catalog's job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orkestra._types import Tier
from orkestra.errors import DataFormatError

__all__ = ["DATASET_TIERS", "OutcomeRow", "load_rows", "tier_scores"]

DATASET_TIERS: dict[str, dict[Tier, str]] = {
    # RouteLLM's evaluation data: Mixtral-8x7B is the weak model, GPT-4 the strong one.
    "routellm": {
        "budget": "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "premium": "gpt-4-1106-preview",
    },
    # LLMRouter (9 open models): the weakest general 7B, a strong 8B, and the strongest (51B).
    "llmrouter_dcrouter": {
        "budget": "mistral-7b-instruct-v0.3",
        "balanced": "llama-3.1-8b-instruct",
        "premium": "llama-3.1-nemotron-51b-instruct",
    },
    # RouterArena: Claude 3 Haiku is the weaker model here, Gemini 2.0 Flash the stronger.
    "routerarena_sub10": {
        "budget": "claude-3-haiku-20240307",
        "premium": "gemini-2.0-flash-001",
    },
    # Everyday prompts (data/everyday.jsonl): not measured outcomes but a rubric's expected share
    # of acceptable answers per tier of today's models (routing.everyday, data/README.md).
    "orkestra_everyday": {
        "budget": "rubric:budget",
        "balanced": "rubric:balanced",
        "premium": "rubric:premium",
    },
}
"""Data set (``source``) → our tier → the data model whose outcome stands for that tier."""

_REQUIRED = ("id", "source", "task", "prompt", "scores", "split")


@dataclass(frozen=True)
class OutcomeRow:
    id: str
    source: str
    task: str
    prompt: str
    scores: Mapping[str, float]
    split: str
    cost_usd: Mapping[str, float] | None = None
    tokens_in_out: Mapping[str, tuple[int, int]] | None = None
    price_per_mtok_in_out: Mapping[str, tuple[float, float]] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


def _pairs(value: Any, where: str, name: str) -> dict[str, tuple[float, float]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
        for v in value.values()
    ):
        raise DataFormatError(f"{where}: {name} must map model → [input, output]")
    return {k: (v[0], v[1]) for k, v in value.items()}


def parse_row(obj: Any, where: str) -> OutcomeRow:
    """One row, validated; ``where`` (file:line) goes into every error message."""
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: a row must be a JSON object")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise DataFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    for key in ("id", "source", "task", "prompt", "split"):
        if not isinstance(obj[key], str):
            raise DataFormatError(f"{where}: {key} must be a string")
    if obj["split"] not in ("train", "test"):
        raise DataFormatError(f"{where}: split must be 'train' or 'test', not {obj['split']!r}")
    scores = obj["scores"]
    if not isinstance(scores, dict) or not scores:
        raise DataFormatError(f"{where}: scores must be a non-empty {{model: score}} object")
    for model, score in scores.items():
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
            or not 0.0 <= score <= 1.0
        ):
            raise DataFormatError(f"{where}: score of {model!r} must be in [0, 1], not {score!r}")
    cost = obj.get("cost_usd")
    if cost is not None and (
        not isinstance(cost, dict) or not all(isinstance(v, (int, float)) for v in cost.values())
    ):
        raise DataFormatError(f"{where}: cost_usd must map model → dollars")
    tokens = _pairs(obj.get("tokens_in_out"), where, "tokens_in_out")
    known = {*_REQUIRED, "cost_usd", "tokens_in_out", "price_per_mtok_in_out"}
    return OutcomeRow(
        id=obj["id"],
        source=obj["source"],
        task=obj["task"],
        prompt=obj["prompt"],
        scores={k: float(v) for k, v in scores.items()},
        split=obj["split"],
        cost_usd={k: float(v) for k, v in cost.items()} if cost else None,
        tokens_in_out={k: (int(a), int(b)) for k, (a, b) in tokens.items()} if tokens else None,
        price_per_mtok_in_out=_pairs(obj.get("price_per_mtok_in_out"), where, "prices"),
        extra={k: v for k, v in obj.items() if k not in known},
    )


def load_rows(
    paths: Path | str | Iterable[Path | str], *, split: str | None = None
) -> list[OutcomeRow]:
    """Read and validate rows from one or more JSONL files (optionally one split only)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    rows: list[OutcomeRow] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataFormatError(f"{path}: no such data file")
        seen: set[str] = set()
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(f"{where}: not valid JSON ({e.msg})") from None
                row = parse_row(obj, where)
                if row.id in seen:
                    raise DataFormatError(f"{where}: duplicate id {row.id!r}")
                seen.add(row.id)
                if split is None or row.split == split:
                    rows.append(row)
    return rows


def tier_scores(
    row: OutcomeRow, tiers: Mapping[str, Mapping[Tier, str]] = DATASET_TIERS
) -> dict[Tier, float]:
    """The row's outcome per tier, through the data set's tier mapping (missing tiers absent)."""
    mapping = tiers.get(row.source)
    if mapping is None:
        raise DataFormatError(
            f"row {row.id}: no tier mapping for data set {row.source!r}; "
            "pass one (e.g. --tiers budget=M1,premium=M2)"
        )
    out: dict[Tier, float] = {}
    for tier, model in mapping.items():
        if model in row.scores:
            out[tier] = row.scores[model]
    if not out:
        raise DataFormatError(f"row {row.id}: none of the tier models {dict(mapping)} is scored")
    return out


def sources(rows: Sequence[OutcomeRow]) -> list[str]:
    return sorted({r.source for r in rows})
