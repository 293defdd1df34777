"""Cascades measured on real answers: ``orkestra eval ... --answers ANSWERS.csv``.

A cascade calls the weak model, runs a verifier on its answer and escalates to the strong model
when the check fails. With the weak model's real answer text per prompt, that can be measured
rather than simulated: the verifier reads the real answer, and the cascade's quality and cost
follow from the rows' grades:

- kept (verdict passed): the weak answer's quality; cost = weak call + verification;
- escalated: the strong answer's quality; cost = weak call + verification + strong call.

Costs are priced per row from token counts: the prompt's and each answer's characters / 4 (the
rule routing uses, :func:`~orkestra.routing.policy.estimate_input_tokens`) plus
``prompt_overhead_tokens`` of prompt template per call, at the rows' own prices or ``prices``
(USD per 1M tokens); a row's real ``cost_usd`` is used where it has one.

Side by side on the same rows and costs: routing alone (the KNN router's order, no cheap call
first) and random mixing (the zero router). Every figure has a bootstrap 95% CI over prompts,
with the same resamples for all methods (so their differences are paired). The verifier's
threshold is calibrated on the *train* rows' answers only (for a target quality), then reported
as applied to the test rows.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orkestra.errors import DataFormatError
from orkestra.evaluation.curves import Axis, Curve, cascade_curve, two_tier_curve
from orkestra.evaluation.metrics import (
    bootstrap_samples,
    percentile_ci,
    roc_auc,
    summarize,
)
from orkestra.evaluation.runner import routing_gain
from orkestra.routing.data import OutcomeRow
from orkestra.routing.knn import KNNRouter
from orkestra.routing.policy import estimate_input_tokens
from orkestra.verifiers import Answer, Request, Verifier, calibrate_threshold, heuristic

__all__ = [
    "CascadeResult",
    "MethodFigures",
    "answer_costs",
    "evaluate_cascade",
    "load_answers",
    "render_cascade",
    "verifier_scores",
]

F64 = npt.NDArray[np.float64]
METHODS = ("cascade", "routing", "random")
FIGURES = ("apgr", "cpt50", "cpt80", "savings95", "savings99", "aiq")


def load_answers(path: Path | str, models: Sequence[str]) -> dict[str, dict[str, str]]:
    """Answer texts per prompt and model from a CSV with a ``prompt`` column and one
    ``<model>_response`` column per model (RouteLLM's ``gsm8k_responses.csv`` layout)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such answers file")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        wanted = [f"{m}_response" for m in models]
        missing = [c for c in ["prompt", *wanted] if c not in columns]
        if missing:
            raise DataFormatError(
                f"{path}: no column(s) {', '.join(missing)} (expected prompt and "
                "<model>_response per model)"
            )
        out: dict[str, dict[str, str]] = {}
        for number, line in enumerate(reader, 2):
            texts = {m: line[c] or "" for m, c in zip(models, wanted, strict=True)}
            prompt = line["prompt"]
            if prompt in out and out[prompt] != texts:
                raise DataFormatError(f"{path}:{number}: a second, different row for one prompt")
            out[prompt] = texts
    return out


def _price(
    row: OutcomeRow, model: str, prices: Mapping[str, tuple[float, float]]
) -> tuple[float, float]:
    price = (row.price_per_mtok_in_out or {}).get(model) or prices.get(model)
    if price is None:
        raise DataFormatError(
            f"row {row.id}: no price for {model!r}; pass --prices {model}=IN,OUT "
            "(USD per 1M tokens)"
        )
    return price


def answer_costs(
    rows: Sequence[OutcomeRow],
    texts: Mapping[str, Mapping[str, str]],
    models: Sequence[str],
    prices: Mapping[str, tuple[float, float]] | None = None,
    *,
    prompt_overhead_tokens: int = 0,
) -> F64:
    """(n, models) dollars per call, from the prompt's and each real answer's length."""
    out = np.empty((len(rows), len(models)), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, model in enumerate(models):
            if row.cost_usd and model in row.cost_usd:
                out[i, j] = row.cost_usd[model]
                continue
            price_in, price_out = _price(row, model, prices or {})
            tokens_in = estimate_input_tokens(row.prompt) + prompt_overhead_tokens
            tokens_out = estimate_input_tokens(texts[row.prompt][model])
            out[i, j] = (tokens_in * price_in + tokens_out * price_out) / 1e6
    return out


def verifier_scores(
    rows: Sequence[OutcomeRow],
    texts: Mapping[str, Mapping[str, str]],
    model: str,
    verifier: Verifier,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[F64, F64]:
    """The verifier's score and cost on ``model``'s real answer to each row's prompt."""
    scores = np.empty(len(rows), dtype=np.float64)
    costs = np.empty(len(rows), dtype=np.float64)
    for i, row in enumerate(rows):
        verdict = verifier.verify(Request(row.prompt), Answer(texts[row.prompt][model]))
        scores[i], costs[i] = verdict.score, verdict.cost
        if progress and (i + 1) % 50 == 0:
            progress(i + 1, len(rows))
    return scores, costs


@dataclass(frozen=True)
class MethodFigures:
    """One method's headline figures and 95% CIs on one x axis."""

    figures: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]
    curve: Curve


@dataclass(frozen=True)
class CascadeResult:
    n: int
    excluded_in_index: int
    without_answers: int
    models: tuple[str, ...]
    verifier: str
    cost: Mapping[str, MethodFigures]
    """Per method, on the cost axis (x = share of the extra cost; both calls paid)."""
    share: Mapping[str, MethodFigures]
    """Per method, on the share axis (x = share of prompts sent to / escalated to strong)."""
    auc: Mapping[str, tuple[float, float, float]]
    """AUC (value, CI low, CI high) for detecting the weak model's errors: the verifier's
    score (low = error) and the router's (high premium gain = error)."""
    difference: Mapping[str, tuple[float, float, float]]
    """cascade − routing on the cost axis, paired bootstrap: apgr and savings95."""
    calibration: Mapping[str, float] = field(default_factory=dict)
    """The threshold calibrated on train rows and what it did on the test rows."""
    weak_cost_share: float = 0.0
    """C(weak) / C(strong): what the cheap attempt costs, relative."""

    def to_json(self) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return None if np.isnan(value) else round(float(value), 6)

        def method(m: MethodFigures) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, value in m.figures.items():
                out[name] = clean(value)
                lo, hi = m.intervals[name]
                out[f"{name}_ci"] = [clean(lo), clean(hi)]
            return out

        return {
            "n": self.n,
            "excluded_in_index": self.excluded_in_index,
            "without_answers": self.without_answers,
            "models": list(self.models),
            "verifier": self.verifier,
            "weak_cost_share": clean(self.weak_cost_share),
            "cost_axis": {k: method(v) for k, v in self.cost.items()},
            "share_axis": {k: method(v) for k, v in self.share.items()},
            "auc_weak_errors": {k: [clean(x) for x in v] for k, v in self.auc.items()},
            "cascade_minus_routing": {k: [clean(x) for x in v] for k, v in self.difference.items()},
            "calibration": {k: clean(v) for k, v in self.calibration.items()},
        }


def _matched(
    rows: Sequence[OutcomeRow], texts: Mapping[str, Mapping[str, str]]
) -> list[OutcomeRow]:
    return [r for r in rows if r.prompt in texts]


def _quality(rows: Sequence[OutcomeRow], models: Sequence[str]) -> F64:
    missing = [(r.id, m) for r in rows for m in models if m not in r.scores]
    if missing:
        raise DataFormatError(f"row {missing[0][0]} has no score for {missing[0][1]!r}")
    return np.array([[r.scores[m] for m in models] for r in rows], dtype=np.float64)


def evaluate_cascade(
    rows: Sequence[OutcomeRow],
    texts: Mapping[str, Mapping[str, str]],
    router: KNNRouter,
    models: Sequence[str],
    *,
    train_rows: Sequence[OutcomeRow] = (),
    verifier: Verifier | None = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
    prompt_overhead_tokens: int = 0,
    target_quality: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CascadeResult:
    """Cascade vs routing vs random mixing on ``rows`` (one split, already filtered) whose
    prompts have answer texts. ``train_rows`` (with answers) calibrate the threshold."""
    if len(models) != 2:
        raise DataFormatError("a cascade is measured between two models: --weak and --strong")
    weak = models[0]
    verifier = verifier or heuristic(run_tests=False)
    answered = _matched(rows, texts)
    in_index = router.index.contains([r.prompt for r in answered])
    kept = [r for r, inside in zip(answered, in_index, strict=True) if not inside]
    if not kept:
        raise DataFormatError(
            f"no row to evaluate: {len(rows) - len(answered)} of {len(rows)} rows have no "
            f"answer text and {int(np.sum(in_index))} are in the router's own index"
        )
    quality = _quality(kept, models)
    cost = answer_costs(kept, texts, models, prices, prompt_overhead_tokens=prompt_overhead_tokens)
    score, verify_cost = verifier_scores(kept, texts, weak, verifier, progress=progress)
    gain = routing_gain(router, router.predict_many([r.prompt for r in kept]).astype(np.float64))
    qw, qs, cw, cs = quality[:, 0], quality[:, 1], cost[:, 0], cost[:, 1]

    def curves(idx: npt.NDArray[np.intp], axis: Axis) -> dict[str, Curve]:
        return {
            "cascade": cascade_curve(
                score[idx], qw[idx], qs[idx], cw[idx], cs[idx], verify_cost[idx], x=axis
            ),
            "routing": two_tier_curve(gain[idx], qw[idx], qs[idx], cw[idx], cs[idx], x=axis),
            "random": two_tier_curve(
                np.zeros(idx.size), qw[idx], qs[idx], cw[idx], cs[idx], x=axis
            ),
        }

    def figures(idx: npt.NDArray[np.intp]) -> F64:
        row: list[float] = []
        for axis in ("cost", "share"):
            for curve in curves(idx, axis).values():
                row.extend(dataclasses.astuple(summarize(curve)))
        wrong = qw[idx] < 0.5
        row += [roc_auc(-score[idx], wrong), roc_auc(gain[idx], wrong)]
        return np.array(row, dtype=np.float64)

    n = len(kept)
    everything = np.arange(n)
    point = figures(everything)
    draws = bootstrap_samples(figures, n, n_boot=n_boot, seed=seed)
    per_axis = len(METHODS) * len(FIGURES)
    results: dict[str, dict[str, MethodFigures]] = {}
    for a, axis in enumerate(("cost", "share")):
        built = curves(everything, axis)  # type: ignore[arg-type]
        results[axis] = {}
        for m, name in enumerate(METHODS):
            base = a * per_axis + m * len(FIGURES)
            values = {f: float(point[base + k]) for k, f in enumerate(FIGURES)}
            cis = {f: tuple(percentile_ci(draws[:, base + k])) for k, f in enumerate(FIGURES)}
            results[axis][name] = MethodFigures(values, cis, built[name])  # type: ignore[arg-type]
    auc = {
        "verifier": (float(point[-2]), *percentile_ci(draws[:, -2])),
        "router": (float(point[-1]), *percentile_ci(draws[:, -1])),
    }
    difference = {}
    for k, f in enumerate(FIGURES):
        if f in ("apgr", "savings95"):
            cascade_col, routing_col = k, len(FIGURES) + k
            diff = draws[:, cascade_col] - draws[:, routing_col]
            difference[f] = (
                float(point[cascade_col] - point[routing_col]),
                *percentile_ci(diff),
            )
    calibration = _calibrate_on_train(
        train_rows,
        texts,
        models,
        verifier,
        prices,
        prompt_overhead_tokens,
        target_quality,
        score,
        qw,
        qs,
        cw,
        cs,
        verify_cost,
    )
    return CascadeResult(
        n=n,
        excluded_in_index=int(np.sum(in_index)),
        without_answers=len(rows) - len(answered),
        models=tuple(models),
        verifier=repr(verifier),
        cost=results["cost"],
        share=results["share"],
        auc=auc,
        difference=difference,
        calibration=calibration,
        weak_cost_share=float(cw.sum() / cs.sum()),
    )


def _calibrate_on_train(
    train_rows: Sequence[OutcomeRow],
    texts: Mapping[str, Mapping[str, str]],
    models: Sequence[str],
    verifier: Verifier,
    prices: Mapping[str, tuple[float, float]] | None,
    overhead: int,
    target: float,
    score: F64,
    qw: F64,
    qs: F64,
    cw: F64,
    cs: F64,
    cv: F64,
) -> dict[str, float]:
    """The threshold for ``target`` × the strong model's quality on the train rows' answers,
    and the escalation share, quality ratio and savings it gives on the test rows."""
    train = _matched(train_rows, texts)
    if not train:
        return {}
    train_quality = _quality(train, models)
    train_score, _ = verifier_scores(train, texts, models[0], verifier)
    threshold = calibrate_threshold(
        train_score,
        quality=target,
        correct=train_quality[:, 0],
        premium_correct=train_quality[:, 1],
    )
    escalate = score < threshold
    total = float(np.sum(cw + cv + np.where(escalate, cs, 0.0)))
    reached = float(np.mean(np.where(escalate, qs, qw)))
    train_escalate = train_score < threshold
    return {
        "train_rows": float(len(train)),
        "target_quality": target,
        "threshold": threshold,
        "train_escalation_share": float(train_escalate.mean()),
        "test_escalation_share": float(escalate.mean()),
        "test_quality_ratio": reached / float(qs.mean()) if qs.mean() > 0 else float("nan"),
        "test_savings": 1.0 - total / float(cs.sum()),
    }


def render_cascade(result: CascadeResult, split: str = "test") -> str:
    """The result as the text ``orkestra eval --answers`` prints."""
    lines = [
        f"{result.n} {split} prompts ({result.excluded_in_index} left out: in the router's "
        f"index; {result.without_answers} without an answer text); models "
        f"{' < '.join(result.models)}",
        f"verifier {result.verifier}; the weak call costs {result.weak_cost_share:.1%} "
        "of the strong one",
    ]

    def ci(value: Sequence[float], pct: bool = False) -> str:
        lo, hi = value
        return f"[{lo:.0%}, {hi:.0%}]" if pct else f"[{lo:.3f}, {hi:.3f}]"

    axes = (
        ("cost", "x = share of the extra cost; an escalation pays both calls and the verifier"),
        ("share", "x = share of prompts sent, or escalated, to the strong model"),
    )
    for axis, meaning in axes:
        lines.append(f"{axis} axis ({meaning}):")
        lines.append(
            f"  {'method':<9} {'APGR [95% CI]':<22} {'CPT(50%) [CI]':<22} "
            f"{'savings@95 [CI]':<18} {'savings@99':>10} {'AIQ':>6}"
        )
        methods = result.cost if axis == "cost" else result.share
        for name, m in methods.items():
            f, i = m.figures, m.intervals
            lines.append(
                f"  {name:<9} {f['apgr']:.3f} {ci(i['apgr']):<16} "
                f"{f['cpt50']:.3f} {ci(i['cpt50']):<16} "
                f"{f['savings95']:>4.0%} {ci(i['savings95'], True):<13} "
                f"{f['savings99']:>10.0%} {f['aiq']:>6.3f}"
            )
    d, a, c = result.difference, result.auc, result.calibration
    lines.append(
        f"cascade - routing (cost axis, paired): APGR {d['apgr'][0]:+.3f} "
        f"{ci(d['apgr'][1:])}, savings@95 {d['savings95'][0]:+.0%} {ci(d['savings95'][1:], True)}"
    )
    lines.append(
        f"AUC for the weak model's errors: verifier {a['verifier'][0]:.3f} "
        f"{ci(a['verifier'][1:])}, router {a['router'][0]:.3f} {ci(a['router'][1:])}"
    )
    if c:
        lines.append(
            f"threshold {c['threshold']:.3f} calibrated on {c['train_rows']:.0f} train rows for "
            f"{c['target_quality']:.0%} of the strong model's quality "
            f"({c['train_escalation_share']:.1%} escalated there); on these rows: "
            f"{c['test_escalation_share']:.1%} escalated, quality ratio "
            f"{c['test_quality_ratio']:.3f}, savings {c['test_savings']:.1%}"
        )
    return "\n".join(lines)
