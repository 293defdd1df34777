"""How far the router's predicted budget-tier quality can be trusted as a cascade's prior, on
test rows its index never saw (the numbers behind CascadePolicy's defaults, docs/routing.md).

    orkestra train ../shared/data/*.jsonl data/everyday.jsonl --split train \\
        --out .cache/router-train
    python scripts/cascade_prior.py --router .cache/router-train

For each shared data file's test rows: among the prompts whose predicted budget quality ``q``
is below each provider's price share (what ``skip_below="auto"`` compares it with), how often
the weak (budget) model was right anyway; and among those with ``q`` at or above high
thresholds (candidates for ``trust_above``), how often it was wrong.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from orkestra.routing.data import load_rows, tier_scores
from orkestra.routing.knn import KNNRouter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARES = {"Google": 0.037, "OpenAI": 0.075, "Anthropic": 0.2}
"""Budget cost ÷ premium cost for a 500-token prompt and a 300-token answer (docs/routing.md)."""
TRUST = (0.9, 0.95, 0.98)


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


if __name__ == "__main__":
    main()
