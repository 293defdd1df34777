"""Pass rates of the ordinary-prompt pairs (tests/routing/data/ordinary_pairs.jsonl), per kind.

    .venv/bin/python scripts/ordinary_prompts.py [--router DIR] [--failures]

For the bundled router (or the router folder DIR) at its default knob, per provider: the share of
easy prompts routed to budget, of hard prompts routed above budget, and of pairs whose hard
prompt has the higher need score (docs/evaluation.md, "Ordinary prompts"); for the dev half (used
to choose the everyday settings), the held-out half, and all pairs. A Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orkestra as o
from orkestra.evaluation.pairs import load_pairs, need_score, pass_rates, route_pairs
from orkestra.routing.knn import KNNRouter

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "routing" / "data" / "ordinary_pairs.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", type=Path, help="a router folder (default: the bundled one)")
    ap.add_argument("--providers", nargs="+", default=["google", "anthropic", "openai"])
    ap.add_argument("--failures", action="store_true", help="list the pairs that fail")
    args = ap.parse_args()
    router = KNNRouter.load(args.router)
    pairs = load_pairs(PAIRS)
    print(f"router: {router!r}\n")
    print(
        "| provider | half | kind | n | easy → budget | hard → above budget | hard ranked higher |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.providers:
        provider = o.Provider(name, router=router)
        outcomes = route_pairs(provider, pairs)
        for half in ("dev", "heldout", "all"):
            chosen = [x for x in outcomes if half == "all" or x.pair.half == half]
            for kind, (easy, hard, ranked, n) in sorted(pass_rates(chosen).items()):
                if half != "all" and kind != "all":
                    continue  # per-kind rows for all pairs only
                print(
                    f"| {name} | {half} | {kind} | {n} | {easy:.0%} | {hard:.0%} | {ranked:.0%} |"
                )
        if args.failures:
            for x in outcomes:
                if not (x.easy_to_budget and x.hard_above_budget and x.ranked):
                    print(
                        f"  {x.pair.id} ({x.pair.half}): easy → {x.easy.tier} "
                        f"{need_score(x.easy):.3f}, hard → {x.hard.tier} {need_score(x.hard):.3f}"
                    )


if __name__ == "__main__":
    main()
