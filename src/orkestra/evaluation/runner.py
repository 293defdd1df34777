"""``orkestra eval``: a router's cost–quality curve and headline figures on graded data.

Inputs are rows in the shared data format. The models compared are data models: either two
(``weak``/``strong``, RouteLLM style) or three mapped to our tiers. For each prompt the router
predicts quality per tier; then

- two models: prompts go strong in the order the knob moves them under the router's rule
  (margin: predicted premium − budget; ratio: budget / premium, lowest first), a threshold swept
  over every value (share-of-strong-calls axis), and the default knob sends a prompt strong when
  its decision is the premium tier;
- three models: the knob is swept over [0, 1] and each setting's decisions give one point
  (cost-fraction axis).

Rows whose exact prompt is in the router's own index are left out (and counted): a router is
never scored on the prompts it was built from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from orkestra._types import TIERS, Tier
from orkestra.errors import DataFormatError
from orkestra.evaluation.curves import (
    Axis,
    Curve,
    curve_from_choices,
    model_points,
    oracle_curve,
    two_tier_curve,
    zero_router_curve_multi,
)
from orkestra.evaluation.metrics import (
    aiq,
    bootstrap_ci,
    bootstrap_samples,
    percentile_ci,
    summarize,
    summary_ci,
)
from orkestra.routing.data import DATASET_TIERS, OutcomeRow
from orkestra.routing.knn import KNNRouter
from orkestra.routing.policy import tier_choices

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "EvalResult",
    "cost_matrix",
    "evaluate",
    "models_for",
    "routing_gain",
]

DEFAULT_OUTPUT_TOKENS = 256
"""Answer length assumed when a row has a price but no token counts for a model."""

KNOB_GRID = np.linspace(0.0, 1.0, 201)

F64 = npt.NDArray[np.float64]


def models_for(
    rows: Sequence[OutcomeRow],
    *,
    weak: str | None = None,
    strong: str | None = None,
    tiers: Mapping[Tier, str] | None = None,
) -> list[str]:
    """The data models to compare, cheap → strong (explicit, else the data set's mapping)."""
    if weak or strong:
        if not (weak and strong):
            raise DataFormatError("--weak and --strong go together")
        return [weak, strong]
    if tiers:
        return [tiers[t] for t in TIERS if t in tiers]
    sources = {r.source for r in rows}
    mappings = [DATASET_TIERS.get(s) for s in sources]
    if len(sources) != 1 or mappings[0] is None:
        raise DataFormatError(
            f"the rows come from {sorted(sources)}; name the models with --weak/--strong or --tiers"
        )
    mapping = mappings[0]
    return [mapping[t] for t in TIERS if t in mapping]


def _row_cost(row: OutcomeRow, model: str, prices: Mapping[str, tuple[float, float]]) -> float:
    if row.cost_usd and model in row.cost_usd:
        return row.cost_usd[model]
    price = (row.price_per_mtok_in_out or {}).get(model) or prices.get(model)
    if price is None:
        raise DataFormatError(
            f"row {row.id}: no cost for {model!r} (no cost_usd, no price_per_mtok_in_out); "
            f"pass --prices {model}=IN,OUT (USD per 1M tokens)"
        )
    if row.tokens_in_out and model in row.tokens_in_out:
        tokens_in, tokens_out = row.tokens_in_out[model]
    else:
        tokens_in, tokens_out = max(1, len(row.prompt) // 4), DEFAULT_OUTPUT_TOKENS
    return (tokens_in * price[0] + tokens_out * price[1]) / 1e6


def cost_matrix(
    rows: Sequence[OutcomeRow],
    models: Sequence[str],
    prices: Mapping[str, tuple[float, float]] | None = None,
) -> F64:
    """(n, m) dollars per row and model: the row's own cost, else its price, else ``prices``."""
    return np.array([[_row_cost(r, m, prices or {}) for m in models] for r in rows], np.float64)


def quality_matrix(rows: Sequence[OutcomeRow], models: Sequence[str]) -> F64:
    missing = [(r.id, m) for r in rows for m in models if m not in r.scores]
    if missing:
        row_id, model = missing[0]
        raise DataFormatError(f"row {row_id} has no score for {model!r} ({len(missing)} such)")
    return np.array([[r.scores[m] for m in models] for r in rows], np.float64)


@dataclass(frozen=True)
class EvalResult:
    n: int
    excluded: int
    models: tuple[str, ...]
    figures: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]
    curve: Curve
    zero: Curve
    oracle: Curve
    default_point: tuple[float, float]
    """(x, quality) of the default knob on the curve's axis."""
    tier_share_default: Mapping[str, float]
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    model_points: tuple[tuple[float, float], ...] = ()
    """(total cost, mean quality) of always using each model, cheap → strong."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "excluded_in_index": self.excluded}
        out["models"] = list(self.models)
        for name, value in self.figures.items():
            out[name] = None if np.isnan(value) else round(float(value), 6)
            if name in self.intervals:
                lo, hi = self.intervals[name]
                out[f"{name}_ci"] = [
                    None if np.isnan(lo) else round(lo, 6),
                    None if np.isnan(hi) else round(hi, 6),
                ]
        out["tier_share_default"] = {k: round(v, 6) for k, v in self.tier_share_default.items()}
        out["routing_latency_ms"] = {k: round(v, 4) for k, v in self.latency_ms.items()}
        return out


def routing_gain(router: KNNRouter, scores: F64) -> F64:
    """The order in which the knob moves prompts to premium under the router's rule (margin:
    predicted premium − budget; ratio: budget / premium, lowest first), from (n, 3) scores."""
    if router.rule == "ratio":
        return np.asarray(-scores[:, 0] / np.maximum(scores[:, 2], 1e-9), dtype=np.float64)
    return np.asarray(scores[:, 2] - scores[:, 0], dtype=np.float64)


def _latency(router: KNNRouter, prompts: Sequence[str], sample: int = 200) -> dict[str, float]:
    times = []
    for prompt in prompts[:sample]:
        start = time.perf_counter()
        router.predict(prompt)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def evaluate(
    rows: Sequence[OutcomeRow],
    router: KNNRouter,
    models: Sequence[str],
    *,
    prices: Mapping[str, tuple[float, float]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score ``router`` on ``rows`` (already filtered to the split) against the data models."""
    if len(models) not in (2, 3):
        raise DataFormatError("compare two models (--weak/--strong) or three (--tiers)")
    in_index = router.index.contains([r.prompt for r in rows])
    kept = [r for r, inside in zip(rows, in_index, strict=True) if not inside]
    if not kept:
        raise DataFormatError(
            f"all {len(rows)} rows are in the router's own index; evaluate a router built "
            "without them (e.g. orkestra train DATA --split train --out DIR, then --router DIR)"
        )
    quality = quality_matrix(kept, models)
    cost = cost_matrix(kept, models, prices)
    scores = router.predict_many([r.prompt for r in kept], progress=progress).astype(np.float64)
    knob = router.default_knob
    default_choice = tier_choices(scores.astype(np.float32), knob, router.rule)
    n = len(kept)
    if len(models) == 2:
        gain = routing_gain(router, scores)

        def build(idx: npt.NDArray[np.intp]) -> Curve:
            return two_tier_curve(
                gain[idx], quality[idx, 0], quality[idx, 1], cost[idx, 0], cost[idx, 1]
            )

        to_strong = (default_choice == 2).astype(np.intp)
        picks = to_strong
    else:
        choices = np.stack(
            [tier_choices(scores.astype(np.float32), k, router.rule) for k in KNOB_GRID]
        )

        def build(idx: npt.NDArray[np.intp]) -> Curve:
            return curve_from_choices(choices[:, idx], quality[idx], cost[idx])

        picks = default_choice
    curve = build(np.arange(n))
    zero_points = model_points(quality, cost)
    axis: Axis = "share" if len(models) == 2 else "cost"
    oracle = oracle_curve(quality, cost, x=axis)
    cost_range = (float(cost[:, 0].sum()), float(cost[:, -1].sum()))

    def default_figures(idx: npt.NDArray[np.intp]) -> F64:
        q = quality[idx, picks[idx]].mean()
        return np.array([q / quality[idx, -1].mean(), (picks[idx] == len(models) - 1).mean()])

    summary = summarize(curve)
    q_default, share_default = default_figures(np.arange(n))
    figures = {
        "apgr": summary.apgr,
        "cpt50": summary.cpt50,
        "cpt80": summary.cpt80,
        "savings_at_95": summary.savings95,
        "savings_at_99": summary.savings99,
        "quality_ratio_default": float(q_default),
        "premium_share_default": float(share_default),
        # Each AIQ over its own curve's cost range: all run from all-weak to all-strong.
        "aiq": aiq(curve.cost, curve.quality),
        "aiq_zero": aiq(*zero_points),
        "aiq_oracle": aiq(oracle.cost, oracle.quality),
    }
    intervals: dict[str, tuple[float, float]] = {}
    cis = summary_ci(build, n, n_boot=n_boot, seed=seed)
    names = {"savings95": "savings_at_95", "savings99": "savings_at_99"}
    for key, ci in cis.items():
        intervals[names.get(key, key)] = (ci[0], ci[1])
    samples = bootstrap_samples(default_figures, n, n_boot=n_boot, seed=seed)
    intervals["quality_ratio_default"] = tuple(percentile_ci(samples[:, 0]))  # type: ignore[assignment]
    intervals["premium_share_default"] = tuple(percentile_ci(samples[:, 1]))  # type: ignore[assignment]
    intervals["aiq_zero"] = tuple(  # type: ignore[assignment]
        bootstrap_ci(
            lambda idx: aiq(*model_points(quality[idx], cost[idx])),
            n,
            n_boot=n_boot,
            seed=seed,
        )
    )
    intervals["aiq_oracle"] = tuple(  # type: ignore[assignment]
        bootstrap_ci(
            lambda idx: aiq(*_oracle_points(quality[idx], cost[idx], axis)),
            n,
            n_boot=min(n_boot, 200),
            seed=seed,
        )
    )
    shares = np.bincount(default_choice, minlength=len(TIERS)) / n
    default_x = float(share_default)
    if len(models) == 3:
        total = cost[np.arange(n), picks].sum()
        default_x = float((total - cost_range[0]) / (cost_range[1] - cost_range[0]))
    return EvalResult(
        n=n,
        excluded=len(rows) - n,
        models=tuple(models),
        figures=figures,
        intervals=intervals,
        curve=curve,
        zero=(
            two_tier_curve(np.zeros(n), quality[:, 0], quality[:, 1], cost[:, 0], cost[:, 1])
            if len(models) == 2
            else zero_router_curve_multi(quality, cost)
        ),
        model_points=tuple(
            (float(c), float(q)) for c, q in zip(*model_points(quality, cost), strict=True)
        ),
        oracle=oracle,
        default_point=(default_x, float(quality[np.arange(n), picks].mean())),
        tier_share_default={t: float(s) for t, s in zip(TIERS, shares, strict=True)},
        latency_ms=_latency(router, [r.prompt for r in kept]),
    )


def _oracle_points(quality: F64, cost: F64, axis: Axis) -> tuple[F64, F64]:
    curve = oracle_curve(quality, cost, x=axis)
    return np.asarray(curve.cost), np.asarray(curve.quality)
