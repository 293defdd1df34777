"""Build the router that ships inside the package: src/orkestra/routing/assets/router-default/.

    python scripts/build_default_router.py [--data-dir ../shared/data] [--premium-share 0.2]

The rows: every row of the three shared outcome files, plus the everyday rows of
data/everyday.jsonl (ordinary prompts written for this router, rubric-labelled; data/README.md).

1. The held-out check: a router of the TRAIN rows (its knob calibrated on a validation slice of
   them so that --premium-share go premium) predicts the TEST prompts; the realised premium
   share is printed (docs/evaluation.md records it).
2. The shipped index is built from all rows, train and test (allowed by the data README once the
   evaluation has been run on a train-only index), its knob calibrated the same way.

Deterministic: the same data gives byte-identical files (seeded k-means, no timestamps).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from orkestra._types import TIERS
from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR
from orkestra.routing.data import load_rows
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.index import sha256_file
from orkestra.routing.knn import KNNRouter
from orkestra.routing.policy import tier_choices
from orkestra.routing.train import train_router

LICENSES = {
    "llmrouter.jsonl": "MIT (ulab-uiuc/LLMRouter)",
    "routellm.jsonl": "Apache-2.0 (lm-sys/RouteLLM)",
    "routerarena.jsonl": "Apache-2.0 (RouteWorks/RouterArena)",
    "everyday.jsonl": (
        "MIT (orkestra; written by the orkestra developers for this router, labelled by a "
        "rubric, not measured: data/README.md)"
    ),
}
REPO = Path(__file__).resolve().parents[1]
EVERYDAY = REPO / "data" / "everyday.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    default_data = Path(__file__).resolve().parents[2] / "shared" / "data"
    ap.add_argument("--data-dir", type=Path, default=default_data)
    ap.add_argument("--everyday", type=Path, default=EVERYDAY, help="the everyday rows")
    ap.add_argument("--premium-share", type=float, default=0.2)
    ap.add_argument("--out", type=Path, default=DEFAULT_ROUTER_DIR)
    args = ap.parse_args()

    files = [*sorted(args.data_dir.glob("*.jsonl")), args.everyday]
    rows = load_rows(files)
    embedder = StaticEmbedder.default()
    provenance = [
        {"file": f.name, "sha256": sha256_file(f), "license": LICENSES.get(f.name, "unknown")}
        for f in files
    ]
    train = [r for r in rows if r.split == "train"]
    # The held-out check: a router of the train rows only, calibrated on a validation slice of
    # them, predicting the test prompts; its realised premium share should match the target.
    held_out = KNNRouter(train_router(train, embedder, premium_share=args.premium_share))
    knob = held_out.default_knob
    print(f"knob {knob:.4f} calibrated for premium share {args.premium_share} on train rows")
    test = [r for r in rows if r.split == "test"]
    choice = tier_choices(held_out.predict_many([r.prompt for r in test]), knob, held_out.rule)
    shares = np.bincount(choice, minlength=len(TIERS)) / len(choice)
    print(
        f"held-out check on {len(test)} test prompts (train-only index): "
        + ", ".join(f"{t} {s:.3f}" for t, s in zip(TIERS, shares, strict=True))
    )
    # The shipped router: all rows, its knob calibrated the same way on all rows.
    index = train_router(rows, embedder, premium_share=args.premium_share, provenance=provenance)
    print(f"shipped router: knob {index.manifest['router']['default_knob']}")
    out = index.save(args.out)
    for name in sorted(p.name for p in out.iterdir()):
        path = out / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name:<14} {path.stat().st_size:>10,} bytes  sha256 {digest}")


if __name__ == "__main__":
    main()
