"""Choose the router's settings on a validation split carved out of the TRAIN rows only.

    python scripts/tune_router.py [--data-dir ../shared/data]
    python scripts/tune_router.py --everyday [--data-dir ../shared/data]

Validation = train rows whose prompt hash falls in a fixed 15% bucket (the same prompt is always
on the same side). The index for each variant holds the remaining train rows; test rows are
never read. Prints two-tier (budget vs premium data model) APGR per data set and task family.

--everyday: the everyday settings (routing.everyday) on one index of the remaining train rows
plus data/everyday.jsonl: for each gate prior and everyday k, the validation APGR as above and,
at the knob calibrated on the validation slice, the pass rates of the DEV half of the
ordinary-prompt pairs (tests/routing/data/ordinary_pairs.jsonl; the held-out half is not read).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from orkestra._types import TIERS
from orkestra.evaluation import apgr, two_tier_curve
from orkestra.routing.data import OutcomeRow, load_rows, tier_scores
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.knn import KNNRouter, weights_for
from orkestra.routing.train import build_index, is_validation

REPO = Path(__file__).resolve().parents[1]
EVERYDAY = REPO / "data" / "everyday.jsonl"
PAIRS = REPO / "tests" / "routing" / "data" / "ordinary_pairs.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    ap.add_argument("--everyday", action="store_true", help="tune the everyday settings")
    args = ap.parse_args()
    files = sorted(Path(args.data_dir).glob("*.jsonl"))
    rows = load_rows(files, split="train")
    if args.everyday:
        tune_everyday(rows)
        return
    val_mask = np.array([is_validation(r.prompt) for r in rows])
    emb = StaticEmbedder.default().encode([r.prompt for r in rows])
    scores = np.array(
        [[tier_scores(r).get(t, np.nan) for t in TIERS] for r in rows], dtype=np.float32
    )
    src = np.array([r.source for r in rows])
    tr, va = np.where(~val_mask)[0], np.where(val_mask)[0]
    print(f"train rows {len(tr)}, validation rows {len(va)}")
    sims_all = emb[va] @ emb[tr].T  # exact search for tuning
    order = np.argsort(-sims_all, axis=1)[:, :400]
    results = []
    for k, weighting in itertools.product(
        (10, 25, 50, 100, 200, 400), ("uniform", "cosine", "softmax:0.05", "softmax:0.02")
    ):
        idx = order[:, :k]
        sims = np.take_along_axis(sims_all, idx, axis=1)
        w = np.stack([weights_for(s, weighting) for s in sims])
        nb = scores[tr][idx]  # (v, k, 3)
        present = ~np.isnan(nb)
        pred = (w[..., None] * np.where(present, nb, 0)).sum(1) / np.maximum(
            (w[..., None] * present).sum(1), 1e-9
        )
        for rule in ("ratio", "margin"):
            stat = (
                -(pred[:, 0] / np.maximum(pred[:, 2], 1e-6))
                if rule == "ratio"
                else pred[:, 2] - pred[:, 0]
            )
            line = {"k": k, "weighting": weighting, "rule": rule}
            for s in sorted(set(src)):
                m = src[va] == s
                q = scores[va][m]
                c = two_tier_curve(
                    stat[m], q[:, 0], q[:, 2], np.ones(m.sum()) * 0.1, np.ones(m.sum())
                )
                line[s] = apgr(c)
            line["mean"] = float(np.mean([line[s] for s in sorted(set(src))]))
            results.append(line)
    results.sort(key=lambda r: -r["mean"])
    for r in results[:15]:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    print(
        "...worst:",
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in results[-1].items()},
    )


def tune_everyday(rows: list[OutcomeRow]) -> None:
    import orkestra as o
    from orkestra.evaluation.pairs import load_pairs, pass_rates, route_pairs

    fit = [r for r in rows if not is_validation(r.prompt)]
    val = [r for r in rows if is_validation(r.prompt)]
    embedder = StaticEmbedder.default()
    index = build_index(fit + load_rows(EVERYDAY), embedder)
    dev = [p for p in load_pairs(PAIRS) if p.half == "dev"]
    truth = np.array([[tier_scores(r).get(t, np.nan) for t in TIERS] for r in val])
    src = np.array([r.source for r in val])
    print(f"index: {index.outcome_size} outcome rows + {index.everyday_size} everyday rows")
    print(
        "| prior | everyday k | " + " | ".join(sorted(set(src))) + " | mean | knob "
        "| dev easy → budget | dev hard → above | dev ranked |"
    )
    for prior in (-50.0, 0.0, 0.25, 0.5, 1.0):
        for k in (10, 20, 40):
            if prior == -50.0 and k != 20:
                continue  # the gate shut: everyday k does not matter
            router = KNNRouter(index, embedder, everyday_prior=prior, everyday_k=k)
            pred = router.predict_many([r.prompt for r in val])
            cells = []
            for s in sorted(set(src)):
                m = src == s
                curve = two_tier_curve(
                    pred[m, 2] - pred[m, 0],
                    truth[m, 0],
                    truth[m, 2],
                    np.full(m.sum(), 0.1),
                    np.ones(m.sum()),
                )
                cells.append(apgr(curve))
            router.calibrate([r.prompt for r in val], 0.2)
            easy, hard, ranked, _ = pass_rates(
                route_pairs(o.Provider("google", router=router), dev)
            )["all"]
            label = "off" if prior == -50.0 else f"{prior:g}"
            print(
                f"| {label} | {k} | "
                + " | ".join(f"{c:.4f}" for c in cells)
                + f" | {np.mean(cells):.4f} | {router.default_knob:.4f} "
                f"| {easy:.0%} | {hard:.0%} | {ranked:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
