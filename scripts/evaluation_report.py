"""Every number in docs/evaluation.md, from one run:

    .venv/bin/python scripts/evaluation_report.py [--quick] [--onnx] [--data-dir DIR] \
        > /tmp/evaluation.md

- In-domain: a router of every TRAIN row of the three shared files (plus the everyday rows of
  data/everyday.jsonl, as the shipped router has them), scored on each file's TEST rows (and on
  RouteLLM's three benchmarks separately).
- Cross-dataset: a router of the train rows of the OTHER files (plus the everyday rows), scored
  on one file's test rows.
- Ablations (routellm MMLU and llmrouter test rows, in-domain): k, neighbour weighting, decision
  rule, tier-score regression vs the original release's tier-label vote, and (--onnx) the
  contextual MiniLM embedder instead of the static one.
- Cascades on GSM8K's real answers (routellm_gsm8k_responses.csv): the heuristic verifier's
  cascade vs routing alone (the in-domain router) vs random mixing, on the GSM8K test rows,
  its threshold calibrated on the train rows' answers.

Test rows are never in the evaluated index (evaluate() also checks, by prompt hash). Settings
were chosen on a validation slice of the train rows (scripts/tune_router.py), not here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from orkestra.evaluation.cascade import CascadeResult, evaluate_cascade, load_answers
from orkestra.evaluation.runner import EvalResult, evaluate, models_for
from orkestra.routing.data import OutcomeRow, load_rows
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.knn import KNNRouter
from orkestra.routing.train import build_index, train_router

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVERYDAY = Path(__file__).resolve().parents[1] / "data" / "everyday.jsonl"
# USD per 1M tokens (input, output): GPT-4-1106-preview's list price; Mixtral-8x7B at a typical
# hosted price. RouteLLM's rows carry no costs; the weak model's share of the bill is small, so
# savings barely depend on it.
ROUTELLM_PRICES = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (0.6, 0.6),
    "gpt-4-1106-preview": (10.0, 30.0),
}
HEAD = (
    "| test rows | n | APGR [95% CI] | CPT(50%) | CPT(80%) | savings@95 [CI] | savings@99 "
    "| AIQ / zero / oracle | premium share @default | quality ratio @default |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|"


def fmt(result: EvalResult, label: str) -> str:
    f, ci = result.figures, result.intervals

    def pct(x: float) -> str:
        return "n/a" if np.isnan(x) else f"{x:.0%}"

    return (
        f"| {label} | {result.n} | {f['apgr']:.3f} [{ci['apgr'][0]:.3f}, {ci['apgr'][1]:.3f}] "
        f"| {f['cpt50']:.3f} | {f['cpt80']:.3f} "
        f"| {pct(f['savings_at_95'])} "
        f"[{pct(ci['savings_at_95'][0])}, {pct(ci['savings_at_95'][1])}] "
        f"| {pct(f['savings_at_99'])} "
        f"| {f['aiq']:.3f} / {f['aiq_zero']:.3f} / {f['aiq_oracle']:.3f} "
        f"| {f['premium_share_default']:.1%} | {f['quality_ratio_default']:.3f} |"
    )


def run(rows: Sequence[OutcomeRow], router: KNNRouter, n_boot: int) -> EvalResult:
    models = models_for(rows)
    if len(models) == 3:  # three-tier data: compare weakest vs strongest, like the others
        models = [models[0], models[-1]]
    prices = ROUTELLM_PRICES if rows[0].source == "routellm" else None
    return evaluate(rows, router, models, prices=prices, n_boot=n_boot)


def by_source(rows: Sequence[OutcomeRow]) -> dict[str, list[OutcomeRow]]:
    out: dict[str, list[OutcomeRow]] = {}
    for r in rows:
        out.setdefault(r.source, []).append(r)
    return out


def routellm_parts(rows: Sequence[OutcomeRow]) -> list[tuple[str, list[OutcomeRow]]]:
    return [
        (name, [r for r in rows if r.task.startswith(name)])
        for name in ("mmlu", "gsm8k", "mt_bench")
    ]


class VoteRouter(KNNRouter):
    """The original release's approach: neighbours vote for the tier that did best on them
    (cheapest tier with the top score); the share of premium votes is the router's score."""

    def _aggregate(self, rows, sims):  # type: ignore[no-untyped-def]
        outcomes = self.index.tier_scores[rows]
        filled = np.where(np.isnan(outcomes), -1.0, outcomes)
        label = np.argmax(filled >= filled.max(axis=1, keepdims=True) - 1e-9, axis=1)
        votes = np.bincount(label, minlength=3) / len(label)
        # Expressed as "predicted quality" so the same decision rule applies: premium's score
        # rises with its vote share.
        return np.array([1 - votes[2], 1 - votes[2] / 2, 1.0], dtype=np.float32), None


FEW_SHOT_TOKENS = 1125
"""RouteLLM's GSM8K calls carried 8 worked examples before each question (its
generate_responses.py): ~4,500 characters, estimated from GSM8K's mean question and answer
lengths; the rows keep only the question."""


def cascade_rows(result: CascadeResult, label: str) -> list[str]:
    def pct(x: float) -> str:
        return "n/a" if np.isnan(x) else f"{x:.0%}"

    out = []
    for name, title in (
        ("cascade", "cascade (heuristic verifier)"),
        ("routing", "routing alone (KNN router)"),
        ("random", "random mixing"),
    ):
        f, ci = result.cost[name].figures, result.cost[name].intervals
        share = result.share[name]
        out.append(
            f"| {label} | {title} | {f['apgr']:.3f} [{ci['apgr'][0]:.3f}, {ci['apgr'][1]:.3f}] "
            f"| {f['cpt50']:.3f} [{ci['cpt50'][0]:.3f}, {ci['cpt50'][1]:.3f}] "
            f"| {pct(f['savings95'])} [{pct(ci['savings95'][0])}, {pct(ci['savings95'][1])}] "
            f"| {pct(f['savings99'])} | {share.figures['apgr']:.3f} | {f['aiq']:.3f} |"
        )
    return out


def cascade_section(router: KNNRouter, n_boot: int, data: Path = DATA) -> None:
    """The cascade on GSM8K's real Mixtral answers vs routing vs random (test rows)."""
    log("cascade on GSM8K answers ...")
    rows = [r for r in load_rows(data / "routellm.jsonl") if r.task.startswith("gsm8k")]
    test = [r for r in rows if r.split == "test"]
    train = [r for r in rows if r.split == "train"]
    models = models_for(test)
    texts = load_answers(data / "routellm_gsm8k_responses.csv", models)
    print("\n## Cascades on real answers: GSM8K test rows\n")
    print(
        "| prompt tokens | method | APGR [95% CI] | CPT(50%) [CI] | savings@95 [CI] "
        "| savings@99 | APGR, share axis | AIQ |"
    )
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for overhead, label in ((0, "question only"), (FEW_SHOT_TOKENS, "+ 8-shot examples")):
        result = evaluate_cascade(
            test,
            texts,
            router,
            models,
            train_rows=train,
            prices=ROUTELLM_PRICES,
            prompt_overhead_tokens=overhead,
            n_boot=n_boot,
        )
        results[label] = result
        for line in cascade_rows(result, label):
            print(line, flush=True)
    print()
    for label, result in results.items():
        d, a, c = result.difference, result.auc, result.calibration
        print(
            f"- {label} (n = {result.n}, {result.excluded_in_index} in the index; the weak call "
            f"is {result.weak_cost_share:.1%} of the strong one's cost): cascade − routing "
            f"APGR {d['apgr'][0]:+.3f} [{d['apgr'][1]:+.3f}, {d['apgr'][2]:+.3f}], "
            f"savings@95 {d['savings95'][0]:+.0%} [{d['savings95'][1]:+.0%}, "
            f"{d['savings95'][2]:+.0%}] (paired bootstrap); AUC for the weak model's errors: "
            f"verifier {a['verifier'][0]:.3f} [{a['verifier'][1]:.3f}, {a['verifier'][2]:.3f}], "
            f"router {a['router'][0]:.3f} [{a['router'][1]:.3f}, {a['router'][2]:.3f}]; "
            f"threshold {c['threshold']:.3f} calibrated on {c['train_rows']:.0f} train rows for "
            f"{c['target_quality']:.0%} of GPT-4's quality ({c['train_escalation_share']:.1%} "
            f"escalated there) gives on test {c['test_escalation_share']:.1%} escalated, "
            f"quality ratio {c['test_quality_ratio']:.3f}, savings {c['test_savings']:.1%}."
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200 bootstrap resamples, fewer ablations")
    ap.add_argument("--onnx", action="store_true", help="also the ONNX MiniLM embedder ablation")
    ap.add_argument("--data-dir", type=Path, default=DATA, help=f"the shared data (default {DATA})")
    ap.add_argument(
        "--no-everyday", action="store_true", help="routers without the everyday rows (ablation)"
    )
    args = ap.parse_args()
    n_boot = 200 if args.quick else 1000
    started = time.time()
    files = sorted(args.data_dir.glob("*.jsonl"))
    rows = load_rows(files)
    everyday = [] if args.no_everyday else load_rows(EVERYDAY)
    train = [r for r in rows if r.split == "train"] + everyday
    test = [r for r in rows if r.split == "test"]
    embedder = StaticEmbedder.default()

    log("in-domain router ...")
    router = KNNRouter(train_router(train, embedder))
    print("## In-domain: router of all train rows, scored on test rows\n")
    print(HEAD)
    print(RULE)
    for source, part in sorted(by_source(test).items()):
        if source == "routellm":
            for name, sub in routellm_parts(part):
                print(fmt(run(sub, router, n_boot), f"routellm {name}"), flush=True)
        print(fmt(run(part, router, n_boot), source), flush=True)

    cascade_section(router, n_boot, args.data_dir)

    print("\n## Cross-dataset: router without the evaluated file, scored on its test rows\n")
    print(HEAD)
    print(RULE)
    for source, part in sorted(by_source(test).items()):
        log(f"cross-dataset router without {source} ...")
        others = KNNRouter(train_router([r for r in train if r.source != source], embedder))
        print(
            fmt(run(part, others, n_boot), f"{source} (no {source} rows in the index)"), flush=True
        )
        if source == "routellm":
            for name, sub in routellm_parts(part):
                print(fmt(run(sub, others, n_boot), f"routellm {name} (cross)"), flush=True)

    print("\n## Ablations (in-domain; APGR [95% CI])\n")
    index = router.index
    mmlu = [r for r in test if r.source == "routellm" and r.task.startswith("mmlu")]
    llm = [r for r in test if r.source == "llmrouter_dcrouter"]
    arena = [r for r in test if r.source == "routerarena_sub10"]
    print("| variant | routellm MMLU | llmrouter | routerarena |")
    print("|---|---|---|---|")

    def row(label: str, r: KNNRouter) -> None:
        cells = []
        for part in (mmlu, llm, arena):
            res = run(part, r, 200)
            lo, hi = res.intervals["apgr"]
            cells.append(f"{res.figures['apgr']:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)

    row("default: k=200, softmax(0.05), margin rule", router)
    for k in (10, 50, 100, 400):
        row(f"k={k}", KNNRouter(index, embedder, k=k, nprobe=16 if k > 200 else None))
    for weighting in ("uniform", "cosine"):
        row(f"weighting {weighting}", KNNRouter(index, embedder, weighting=weighting))
    ratio = KNNRouter(index, embedder)
    ratio.rule = "ratio"
    row("ratio rule (budget ≥ knob × best) instead of margin", ratio)
    row("tier-label vote (the original release's approach)", VoteRouter(index, embedder))
    row("exact search (no IVF)", KNNRouter(index, embedder, nprobe=10_000))
    if args.onnx:
        from orkestra.routing.embedder import OnnxMiniLMEmbedder

        log("ONNX MiniLM index of the train rows (slow) ...")
        onnx = OnnxMiniLMEmbedder()
        row(
            "contextual MiniLM (ONNX) embedder",
            KNNRouter(build_index(train, onnx, batch_size=64), onnx),
        )
    log(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
