"""Benchmark a routing decision (embed + search + choose) on one CPU core.

    .venv/bin/python bench/routing.py            # default router; + the ONNX MiniLM side by side
    .venv/bin/python bench/routing.py --quick    # fewer prompts, no ONNX index build

Prints, from one run (this machine is shared and noisy: compare the ratios, not the absolutes):

* ``Provider.route()`` p50/p99 over real prompts from the shared data (warm), and the router's
  ``predict()`` alone; the default index is the bundled one;
* ``import orkestra`` + the first decision, and the resident memory after it, in a fresh process;
* the same decision with the contextual MiniLM (onnxruntime, the ``[onnx]`` extra) as the
  embedder, against the static embedder over an index of the same 3,000 rows (an ONNX index of
  all 22k rows takes too long to build for a benchmark; the index size changes the search time
  of both alike), as a ratio.

A Longformer-class embedder (the original release's) needs torch+transformers and a hub
download of its weights, which this machine cannot make; it is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def prompts(n: int, data: Path = DATA) -> list[str]:
    rows = [json.loads(line) for line in (data / "routerarena.jsonl").open()]
    rows += [json.loads(line) for line in (data / "llmrouter.jsonl").open()][:2000]
    rng = np.random.default_rng(0)
    return [rows[i]["prompt"] for i in rng.choice(len(rows), n, replace=False)]


def percentiles(fn: object, items: list[str]) -> tuple[float, float]:
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def cold_start() -> tuple[float, float]:
    code = (
        "import time, resource; t = time.perf_counter(); import orkestra as o; "
        "o.Provider('google').route('What is the capital of Japan?'); "
        "print(time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, rss = out.stdout.split()
    return float(seconds), float(rss)


def same_rows_routers(data: Path) -> tuple[object, object] | None:
    """Static and ONNX routers over one 3,000-row index each (same rows)."""
    try:
        from orkestra.routing.embedder import OnnxMiniLMEmbedder

        onnx_embedder = OnnxMiniLMEmbedder()
    except ImportError as e:
        print(f"ONNX MiniLM: not installed ({e})")
        return None
    from orkestra.routing.data import load_rows
    from orkestra.routing.embedder import StaticEmbedder
    from orkestra.routing.knn import KNNRouter
    from orkestra.routing.train import build_index

    rows = load_rows(sorted(data.glob("*.jsonl")))
    rng = np.random.default_rng(1)
    subset = [rows[i] for i in rng.choice(len(rows), 3000, replace=False)]
    start = time.perf_counter()
    onnx = KNNRouter(build_index(subset, onnx_embedder, batch_size=64), onnx_embedder)
    print(f"built a 3,000-row ONNX-MiniLM index in {time.perf_counter() - start:.0f} s")
    static = KNNRouter(build_index(subset, StaticEmbedder.default()))
    return static, onnx


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=DATA, help="the shared outcome data")
    args = ap.parse_args()
    n = 300 if args.quick else 1500
    items = prompts(n, args.data_dir)

    import orkestra as o
    from orkestra.routing import default_router

    provider = o.Provider("google")
    router = default_router()
    provider.route(items[0])
    print(f"default router: {router!r}")
    route_p50, route_p99 = percentiles(provider.route, items)
    predict_p50, predict_p99 = percentiles(router.predict, items)
    print(f"Provider.route()  p50 {route_p50:.3f} ms  p99 {route_p99:.3f} ms   (n={n})")
    print(f"router.predict()  p50 {predict_p50:.3f} ms  p99 {predict_p99:.3f} ms")
    seconds, rss = cold_start()
    print(f"import orkestra + first decision: {seconds:.3f} s; max RSS after it: {rss:.0f} MB")

    if not args.quick:
        pair = same_rows_routers(args.data_dir)
        if pair is not None:
            static, onnx = pair
            s50, s99 = percentiles(static.predict, items[:300])  # type: ignore[attr-defined]
            o50, o99 = percentiles(onnx.predict, items[:300])  # type: ignore[attr-defined]
            print(f"3,000-row index, static predict() p50 {s50:.3f} ms  p99 {s99:.3f} ms")
            print(f"3,000-row index, ONNX   predict() p50 {o50:.3f} ms  p99 {o99:.3f} ms")
            print(f"ratio ONNX / static: p50 {o50 / s50:.0f}x  p99 {o99 / s99:.0f}x")


if __name__ == "__main__":
    main()
