"""How far the router's predicted budget-tier quality can be trusted as a cascade's prior, on
test rows its index never saw (the numbers behind CascadePolicy's defaults, docs/routing.md).

    orkestra train ../shared/data/*.jsonl data/everyday.jsonl --split train \\
        --out .cache/router-train
    python scripts/cascade_prior.py --router .cache/router-train

For each shared data file's test rows: among the prompts whose predicted budget quality ``q``
is below each provider's price share (what ``skip_below="auto"`` compares it with), how often
the weak (budget) model was right anyway; and among those with ``q`` at or above high
thresholds (candidates for ``trust_above``), how often it was wrong.

Then the runtime's defaults on GSM8K's real answers (the rows of docs/evaluation.md's cascade
section: RouteLLM's test rows, Mixtral's and GPT-4's answers, their prices): how many prompts
``skip_below="auto"`` sends straight to GPT-4 (``q`` below that prompt's weak/strong cost
share), and what the default ``heuristic()`` verifier (threshold 0.5, uncalibrated) does there
with the prior: the share escalated, the quality reached as a share of GPT-4's, the savings
against always GPT-4 (both calls paid on every escalation).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from orkestra.evaluation.cascade import answer_costs, load_answers, verifier_scores
from orkestra.routing.data import OutcomeRow, load_rows, tier_scores
from orkestra.routing.knn import KNNRouter
from orkestra.verifiers import heuristic

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARES = {"Google": 0.037, "OpenAI": 0.075, "Anthropic": 0.2}
"""Budget cost ÷ premium cost for a 500-token prompt and a 300-token answer (docs/routing.md)."""
TRUST = (0.9, 0.95, 0.98)
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
PRICES = {WEAK: (0.6, 0.6), STRONG: (10.0, 30.0)}
"""RouteLLM's pair as docs/evaluation.md prices it (USD per 1M tokens in, out)."""
EIGHT_SHOT_TOKENS = 1125
"""RouteLLM's 8 worked examples before each GSM8K question (docs/evaluation.md's estimate)."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", type=Path, required=True, help="a router of the train rows")
    ap.add_argument("--data-dir", type=Path, default=DATA)
    args = ap.parse_args()
    router = KNNRouter.load(args.router)
    for path in sorted(args.data_dir.glob("*.jsonl")):
        rows = [r for r in load_rows(path) if r.split == "test"]
        outcomes = [tier_scores(r) for r in rows]
        keep = [i for i, o in enumerate(outcomes) if "budget" in o and "premium" in o]
        q = router.predict_many([rows[i].prompt for i in keep])[:, 0]
        weak = np.array([outcomes[i]["budget"] for i in keep])
        print(f"\n{path.name}: {len(keep)} test rows")
        for name, share in SHARES.items():
            low = q < share
            right = f"{weak[low].mean():.0%}" if low.any() else "—"
            print(
                f"  q < {share} ({name}'s price share): {low.mean():.1%} of prompts "
                f"(n={low.sum()}), weak model right on {right}"
            )
        for threshold in TRUST:
            high = q >= threshold
            right = f"{weak[high].mean():.0%}" if high.any() else "—"
            print(
                f"  q >= {threshold}: {high.mean():.1%} of prompts (n={high.sum()}), "
                f"weak model right on {right}"
            )
    gsm8k_defaults(router, args.data_dir)


def gsm8k_defaults(router: KNNRouter, data_dir: Path) -> None:
    """The runtime's default cascade (prior and verifier) on GSM8K's real test answers."""
    texts = load_answers(data_dir / "routellm_gsm8k_responses.csv", [WEAK, STRONG])
    rows: list[OutcomeRow] = [
        r
        for r in load_rows(data_dir / "routellm.jsonl")
        if r.split == "test" and r.task == "gsm8k" and r.prompt in texts
    ]
    in_index = router.index.contains([r.prompt for r in rows])
    rows = [r for r, inside in zip(rows, in_index, strict=True) if not inside]
    verifier = heuristic()
    score, verify_cost = verifier_scores(rows, texts, WEAK, verifier)
    q = router.predict_many([r.prompt for r in rows])[:, 0]
    qw = np.array([r.scores[WEAK] for r in rows])
    qs = np.array([r.scores[STRONG] for r in rows])
    print(f"\nGSM8K, {len(rows)} test rows with real answers; default verifier {verifier!r}")
    for label, overhead in (("question only", 0), ("+ 8-shot examples", EIGHT_SHOT_TOKENS)):
        cost = answer_costs(rows, texts, [WEAK, STRONG], PRICES, prompt_overhead_tokens=overhead)
        cw, cs = cost[:, 0], cost[:, 1]
        skip = q < cw / cs  # skip_below="auto": the weak call would cost more than it saves
        escalate = ~skip & (score < verifier.threshold)
        paid = np.where(skip, cs, cw + verify_cost + np.where(escalate, cs, 0.0))
        quality = np.where(skip | escalate, qs, qw)
        right = f"{qw[skip].mean():.0%}" if skip.any() else "—"
        print(
            f"  {label}: prior skips {skip.sum()} (weak model right on {right}); "
            f"escalated {escalate.mean():.1%}; quality {quality.mean() / qs.mean():.3f} of "
            f"GPT-4's; savings {1.0 - paid.sum() / cs.sum():.1%}"
        )


if __name__ == "__main__":
    main()
