"""Benchmark a routing decision (embed + search + choose) on one CPU core.

    .venv/bin/python bench/routing.py            # default router; + the ONNX MiniLM side by side
    .venv/bin/python bench/routing.py --quick    # fewer prompts, no ONNX index build
    .venv/bin/python bench/routing.py --quick --rows 1000000   # + a synthetic 1M-row index
    .venv/bin/python bench/routing.py --quick --rows 1000000 --save-index /tmp/idx1m  # kept
    PYTHONPATH=/tmp/before/src .venv/bin/python bench/routing.py --quick --load-index /tmp/idx1m

Prints, from one run (this machine is shared and noisy: compare the ratios, not the absolutes):

* ``Provider.route()`` p50/p99 over real prompts from the shared data (warm), and the router's
  ``predict()`` alone; the default index is the bundled one;
* what a cascade decides before its first call (``route()``, the ladder and the prior's skip
  rule, the default :class:`~orkestra.CascadePolicy`), on a library that has cascades;
* ``import orkestra`` + the first decision, and the resident memory after it, in a fresh process;
* the same decision with the contextual MiniLM (onnxruntime, the ``[onnx]`` extra) as the
  embedder, against the static embedder over an index of the same 3,000 rows (an ONNX index of
  all 22k rows takes too long to build for a benchmark; the index size changes the search time
  of both alike), as a ratio.

``--rows N`` adds a router over N synthetic rows (see :func:`synthetic_router` for how they are
made), clustered the way the installed orkestra builds an index (balanced clusters when it has
them, the original fixed-sample k-means before), held in memory the way it holds them (int8 past
256 MiB when it can): its build time and cluster sizes, ``route()``/``predict()`` p50/p99 over
the same prompts, and recall@200 of the IVF search against an exact scan. Run it with an older
orkestra on ``PYTHONPATH`` for the before numbers; ``--save-index``/``--load-index`` let both
runs search the same saved rows without rebuilding them. ``--clusters C`` clusters them into C
k-means clusters instead of ``build_index``'s default (its ``n_clusters``).

Thread pools (BLAS, the tokenizer's) are pinned to one thread, so that the numbers are one core's
work; ``--no-pin`` leaves them at their defaults, as in a user's process, where a big enough
matrix product spreads over every core and waits for the busiest of them.

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
from collections.abc import Callable
from pathlib import Path

if "--no-pin" not in sys.argv:  # read before numpy is imported, which is when it counts
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def prompts(n: int, data: Path = DATA) -> list[str]:
    rows = [json.loads(line) for line in (data / "routerarena.jsonl").open()]
    rows += [json.loads(line) for line in (data / "llmrouter.jsonl").open()][:2000]
    rng = np.random.default_rng(0)
    return [rows[i]["prompt"] for i in rng.choice(len(rows), n, replace=False)]


def percentiles(fn: object, items: list[str]) -> tuple[float, float]:
    """Wall-clock p50/p99 in ms (and the same in thread CPU time, kept in CPU_TIMES)."""
    times, cpu = [], []
    for item in items:
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn(item)  # type: ignore[operator]
        cpu.append(time.thread_time() - start_cpu)
        times.append(time.perf_counter() - start)
    ms, cpu_ms = np.array(times) * 1000, np.array(cpu) * 1000
    CPU_TIMES.append((float(np.percentile(cpu_ms, 50)), float(np.percentile(cpu_ms, 99))))
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


CPU_TIMES: list[tuple[float, float]] = []
"""Thread CPU time p50/p99 of each percentiles() call: what a decision costs when it has a core
(wall-clock tails on a shared machine are mostly other processes' turns on the CPU)."""


def cpu(label: str) -> str:
    p50, p99 = CPU_TIMES[-1]
    return f"{label} CPU time p50 {p50:.3f} ms  p99 {p99:.3f} ms"


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


def cascade_decision(
    provider: object,
) -> tuple[Callable[[str], object], Callable[[object], object]] | None:
    """What a cascade decides before its first call, with the default policy: the routing
    decision, the ladder (the cheapest model of each tier that can serve the prompt) and the
    prior on its rungs (``skip_below="auto"``); and the ladder and prior alone, given the
    decision. None on a library without cascades."""
    try:
        from orkestra._cascade.flow import CascadeFlow
        from orkestra._cascade.policy import CascadePolicy
    except ImportError:
        return None

    policy = CascadePolicy()

    def first_rung(decision: object) -> object:
        rungs = provider.cascade_candidates(decision, frozenset(), 0)  # type: ignore[attr-defined]
        return CascadeFlow(decision, rungs, policy).next_rung()  # type: ignore[arg-type]

    def decide(prompt: str) -> object:
        return first_rung(provider.route(prompt))  # type: ignore[attr-defined]

    return decide, first_rung


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


def synthetic_router(
    n_rows: int, seed: int = 7, clusters: int | None = None
) -> tuple[object, dict[str, float], object]:
    """A router over ``n_rows`` synthetic rows, its build figures, and the rows' float32 matrix.

    Each row is an outcome row of the bundled index, drawn uniformly, with Gaussian noise added
    to its embedding (norm ~0.48, so cosine ~0.9 to the row it came from) and re-normalised; it
    keeps that row's outcomes, answer length and task. So the synthetic index has the bundled
    data's density — its dense regions (MMLU's answer-option format, MBPP's "Write a python
    function") become the dense regions of a million rows, as a year of real traffic would.
    """
    import resource

    from orkestra.routing import train
    from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR
    from orkestra.routing.index import KNNIndex
    from orkestra.routing.knn import KNNRouter

    start = time.perf_counter()
    base = KNNIndex.load(DEFAULT_ROUTER_DIR)
    outcome = int(getattr(base, "outcome_size", base.size))
    embeddings = np.asarray(base.embeddings[:outcome], dtype=np.float32)
    dim = embeddings.shape[1]
    rng = np.random.default_rng(seed)
    parents = rng.integers(0, outcome, n_rows)
    rows = np.empty((n_rows, dim), dtype=np.float32)
    sigma = np.float32(0.484 / np.sqrt(dim))
    for a in range(0, n_rows, 65536):
        b = min(n_rows, a + 65536)
        noise = rng.standard_normal((b - a, dim), dtype=np.float32) * sigma
        block = embeddings[parents[a:b]] + noise
        rows[a:b] = block / np.linalg.norm(block, axis=1, keepdims=True)
    made = time.perf_counter()
    default = getattr(train, "default_clusters", lambda n: round(np.sqrt(n)))  # build_index's
    n_clusters = clusters or default(n_rows)
    if hasattr(train, "balanced_clusters"):
        centroids, assign = train.balanced_clusters(rows, n_clusters)
        how = "balanced clusters"
    else:  # the original recipe: k-means on a fixed 8,192-row sample, then each row's nearest
        centroids = train.spherical_kmeans(rows, n_clusters)
        assign = np.empty(n_rows, dtype=np.intp)
        for a in range(0, n_rows, 65536):
            assign[a : a + 65536] = np.argmax(rows[a : a + 65536] @ centroids.T, axis=1)
        how = "original k-means (8,192-row sample)"
    clustered = time.perf_counter()
    order = np.argsort(assign, kind="stable")
    sizes = np.bincount(assign, minlength=len(centroids))
    offsets = np.zeros(len(centroids) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(sizes)
    index = KNNIndex(
        embeddings=rows[order],
        centroids=centroids,
        offsets=offsets,
        tier_scores=base.tier_scores[:outcome][parents[order]],
        output_tokens=base.output_tokens[:outcome][parents[order]],
        task_ids=base.task_ids[:outcome][parents[order]],
        prompt_hashes=np.arange(n_rows, dtype=np.uint64),
        tasks=base.tasks,
        previews=("(synthetic)",) * n_rows,
        manifest={**base.manifest, "rows": n_rows, "clusters": len(centroids)},
    )
    if hasattr(index, "in_memory"):
        index = index.in_memory("auto")
    router = KNNRouter(index)
    print(
        f"synthetic index: {n_rows:,} rows made in {made - start:.0f} s, {how} in "
        f"{clustered - made:.0f} s: {len(centroids)} clusters, rows per cluster median "
        f"{np.median(sizes):.0f}, p99 {np.percentile(sizes, 99):.0f}, max {sizes.max()}; "
        f"embeddings held as {index.embeddings.dtype} ({index.embeddings.nbytes / 2**20:.0f} MiB)"
        f"; max RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    # Map IVF results (sorted rows) back to the generated rows, for the recall check.
    return router, {"order": order}, rows  # type: ignore[return-value]


def recall_at_k(router: object, rows: np.ndarray, order: np.ndarray, queries: np.ndarray) -> float:
    """Mean share of the exact top-k (full float32 scan) that the IVF search returns."""
    k, nprobe = router.k, router.nprobe  # type: ignore[attr-defined]
    found = []
    for query in queries:
        exact = np.argpartition(-(rows @ query), k - 1)[:k]
        cap = getattr(router, "max_scan_rows", None)  # the row cap, where the library has one
        args = (query, k, nprobe) if cap is None else (query, k, nprobe, cap)
        ivf, _ = router.index.search(*args)  # type: ignore[attr-defined]
        found.append(len(np.intersect1d(order[ivf], exact)) / k)
    return float(np.mean(found))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int, default=0, help="also a synthetic index of this many rows")
    ap.add_argument(
        "--save-index", type=Path, default=None, help="save the --rows index to this folder"
    )
    ap.add_argument(
        "--load-index",
        type=Path,
        default=None,
        help="instead of building --rows, load the index saved by --save-index (before/after "
        "runs of two source trees then search the same rows; no recall check)",
    )
    ap.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="k-means clusters of the --rows index before oversized ones are split (default: "
        "build_index's)",
    )
    ap.add_argument("--data-dir", type=Path, default=DATA, help="the shared outcome data")
    ap.add_argument(
        "--no-pin",
        action="store_true",
        help="leave BLAS and tokenizer thread pools at their defaults, as a user's process has "
        "them (by default each is pinned to one thread)",
    )
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
    route_cpu = cpu("Provider.route()")
    predict_p50, predict_p99 = percentiles(router.predict, items)
    predict_cpu = cpu("router.predict()")
    print(f"Provider.route()  p50 {route_p50:.3f} ms  p99 {route_p99:.3f} ms   (n={n})")
    print(f"  {route_cpu}")
    print(f"router.predict()  p50 {predict_p50:.3f} ms  p99 {predict_p99:.3f} ms")
    print(f"  {predict_cpu}")
    cascade = cascade_decision(provider)
    if cascade is not None:
        decide, first_rung = cascade
        c50, c99 = percentiles(decide, items)
        cascade_cpu = cpu("cascade's first rung")
        decisions = [provider.route(item) for item in items]
        l50, l99 = percentiles(first_rung, decisions)  # type: ignore[arg-type]
        ladder_cpu = cpu("ladder + prior alone")
        print(f"cascade's first rung (route + ladder + prior)  p50 {c50:.3f} ms  p99 {c99:.3f} ms")
        print(f"  {cascade_cpu}")
        print(f"  ladder + prior alone  p50 {l50:.4f} ms  p99 {l99:.4f} ms; {ladder_cpu}")
    seconds, rss = cold_start()
    print(f"import orkestra + first decision: {seconds:.3f} s; max RSS after it: {rss:.0f} MB")

    if args.load_index:
        from orkestra.routing.index import KNNIndex
        from orkestra.routing.knn import KNNRouter

        big, extra, rows = KNNRouter(KNNIndex.load(args.load_index)), None, None
        args.rows = big.index.size
        print(f"loaded {args.load_index}: {big!r}, held as {big.index.embeddings.dtype}")
    elif args.rows:
        big, extra, rows = synthetic_router(args.rows, clusters=args.clusters)
        if args.save_index:
            big.index.save(args.save_index)  # type: ignore[attr-defined]
    if args.rows:
        big_provider = o.Provider("google", router=big)  # type: ignore[arg-type]
        big_provider.route(items[0])
        b50, b99 = percentiles(big_provider.route, items)
        big_route_cpu = cpu(f"{args.rows:,} rows: Provider.route()")
        p50, p99 = percentiles(big.predict, items)  # type: ignore[attr-defined]
        big_predict_cpu = cpu(f"{args.rows:,} rows: router.predict()")
        print(f"{args.rows:,} rows: Provider.route()  p50 {b50:.3f} ms  p99 {b99:.3f} ms")
        print(f"  {big_route_cpu}")
        print(f"{args.rows:,} rows: router.predict()  p50 {p50:.3f} ms  p99 {p99:.3f} ms")
        print(f"  {big_predict_cpu}")
        if rows is not None and extra is not None:
            queries = big.embedder.encode(items[:50])  # type: ignore[attr-defined]
            recall = recall_at_k(big, rows, extra["order"], queries)
            print(f"{args.rows:,} rows: recall@200 of the IVF search vs exact: {recall:.3f}")

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
