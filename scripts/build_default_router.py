"""Build the router that ships inside the package: src/orkestra/routing/assets/router-default/.

    python scripts/build_default_router.py [--data-dir ../shared/data] [--premium-share 0.2]

1. The default knob is calibrated on a validation split carved out of the TRAIN rows (an index
   of the other train rows predicts them), so that --premium-share of them go premium.
2. The held-out check: an index of all train rows, that knob, the TEST prompts; the realised
   premium share is printed (docs/evaluation.md records it).
3. The shipped index is built from all rows, train and test (allowed by the data README once the
   evaluation has been run on a train-only index), with the calibrated knob in its manifest.

Deterministic: the same data gives byte-identical files (seeded k-means, no timestamps).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tune_router import in_validation

from orkestra._types import TIERS
from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR
from orkestra.routing.data import load_rows
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.index import sha256_file
from orkestra.routing.knn import KNNRouter
from orkestra.routing.policy import tier_choices
from orkestra.routing.train import DEFAULT_SETTINGS, build_index

LICENSES = {
    "llmrouter.jsonl": "MIT (ulab-uiuc/LLMRouter)",
    "routellm.jsonl": "Apache-2.0 (lm-sys/RouteLLM)",
    "routerarena.jsonl": "Apache-2.0 (RouteWorks/RouterArena)",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    default_data = Path(__file__).resolve().parents[2] / "shared" / "data"
    ap.add_argument("--data-dir", type=Path, default=default_data)
    ap.add_argument("--premium-share", type=float, default=0.2)
    ap.add_argument("--out", type=Path, default=DEFAULT_ROUTER_DIR)
    args = ap.parse_args()

    files = sorted(args.data_dir.glob("*.jsonl"))
    rows = load_rows(files)
    embedder = StaticEmbedder.default()
    provenance = [
        {"file": f.name, "sha256": sha256_file(f), "license": LICENSES.get(f.name, "unknown")}
        for f in files
    ]
    train = [r for r in rows if r.split == "train"]
    fit = [r for r in train if not in_validation(r.prompt)]
    val = [r for r in train if in_validation(r.prompt)]

    router = KNNRouter(build_index(fit, embedder), embedder)
    knob = router.calibrate([r.prompt for r in val], premium_share=args.premium_share)
    print(
        f"calibrated knob {knob:.4f} for premium share {args.premium_share} "
        f"on {len(val)} validation prompts"
    )

    held_out = KNNRouter(build_index(train, embedder), embedder, default_knob=knob)
    test = [r for r in rows if r.split == "test"]
    scores = held_out.predict_many([r.prompt for r in test])
    choice = tier_choices(scores, knob, held_out.rule)
    shares = np.bincount(choice, minlength=len(TIERS)) / len(choice)
    print(
        f"held-out check on {len(test)} test prompts (train-only index): "
        + ", ".join(f"{t} {s:.3f}" for t, s in zip(TIERS, shares, strict=True))
    )

    settings = dict(
        DEFAULT_SETTINGS, default_knob=round(knob, 4), premium_share_target=args.premium_share
    )
    index = build_index(rows, embedder, settings=settings, provenance=provenance)
    out = index.save(args.out)
    for name in sorted(p.name for p in out.iterdir()):
        path = out / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name:<14} {path.stat().st_size:>10,} bytes  sha256 {digest}")


if __name__ == "__main__":
    main()
