"""A router index at scale: balanced clusters, and int8 embeddings in memory (issue 15)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR
from orkestra.routing.index import KNNIndex
from orkestra.routing.knn import KNNRouter
from orkestra.routing.train import SPLIT_FLOOR, balanced_clusters, spherical_kmeans


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _skewed(n_dense: int, n_spread: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Most rows in one tight region, the rest spread out: what made 15k-row clusters."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim)
    dense = centre + 0.05 * rng.standard_normal((n_dense, dim))
    spread = rng.standard_normal((n_spread, dim))
    return _unit(np.vstack([dense, spread]))


def test_oversized_clusters_are_split_to_the_cap() -> None:
    x = _skewed(9000, 3000)
    n_clusters = 6  # mean 2,000 rows: the cap is max(2 × mean, floor) = 4,000
    centroids, assign = balanced_clusters(x, n_clusters)
    sizes = np.bincount(assign, minlength=len(centroids))
    old = np.bincount(
        np.argmax(x @ spherical_kmeans(x, n_clusters).T, axis=1), minlength=n_clusters
    )
    assert old.max() > 4000  # the plain k-means leaves the dense region in one big cluster
    assert sizes.max() <= 4000 and len(centroids) > n_clusters
    assert sizes.sum() == len(x) and (sizes > 0).all()
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    again_centroids, again = balanced_clusters(x, n_clusters)
    assert np.array_equal(again, assign) and np.array_equal(again_centroids, centroids)


def test_clusters_under_the_floor_are_left_as_k_means_made_them() -> None:
    x = _skewed(1500, 500)
    assert SPLIT_FLOOR > 1500
    centroids, assign = balanced_clusters(x, 4)
    old = spherical_kmeans(x, 4)  # the recipe of the index format's first builds
    assert np.array_equal(centroids, old)
    assert np.array_equal(assign, np.argmax(x @ old.T, axis=1))


def test_int8_in_memory_keeps_the_neighbours() -> None:
    exact = KNNIndex.load(DEFAULT_ROUTER_DIR)  # small: float32 under memory="auto"
    assert exact.embeddings.dtype == np.float32 and exact.scales is None
    small = exact.in_memory("int8")
    assert small.embeddings.dtype == np.int8 and small.scales is not None
    assert small.embeddings.nbytes * 4 == exact.embeddings.nbytes
    rng = np.random.default_rng(1)
    for row in rng.choice(exact.outcome_size, 20, replace=False):
        query = exact.embeddings[row]
        rows, sims = exact.search(query, 200, 8)
        rows8, sims8 = small.search(query, 200, 8)
        assert len(np.intersect1d(rows, rows8)) >= 180  # near-ties at the 200th swap
        assert abs(float(sims.max()) - float(sims8.max())) < 0.01
    np.testing.assert_allclose(small.rows_as_float32(0, 50), exact.embeddings[:50], atol=0.003)
    assert small.in_memory("float32").embeddings.dtype == np.float32
    with pytest.raises(ValueError, match="memory"):
        exact.in_memory("float16")


def test_an_int8_router_decides_like_the_float32_one(tmp_path: Path) -> None:
    router = KNNRouter.load(memory="int8")
    exact = KNNRouter.load()
    prompts = ["What is 2+2?", "Prove that every planar graph is 4-colourable."]
    for prompt in prompts:
        assert router.predict(prompt).scores == pytest.approx(
            exact.predict(prompt).scores, abs=0.01
        )
    saved = router.index.save(tmp_path / "from-int8")  # written back as float16
    assert KNNIndex.load(saved).size == exact.index.size


def _probed(index: KNNIndex, query: np.ndarray, nprobe: int, max_rows: int | None) -> list[int]:
    """The clusters a search should scan: the nprobe nearest, nearest first, while their rows
    add up to at most max_rows (the nearest always)."""
    nearest = [int(c) for c in np.argsort(-(index.centroids @ query))[:nprobe]]
    if max_rows is None:
        return nearest
    sizes = np.diff(index.offsets)
    kept, total = [], 0
    for c in nearest:
        total += int(sizes[c])
        if kept and total > max_rows:
            break
        kept.append(c)
    return kept if sum(int(sizes[c]) for c in nearest) > max_rows else nearest


@pytest.mark.parametrize("max_rows", [None, 1400, 600, 1])
@pytest.mark.parametrize("memory", ["float32", "int8"])
def test_search_is_the_exact_top_k_of_the_probed_clusters(
    memory: str, max_rows: int | None
) -> None:
    # Clusters larger than one scan block (512 rows), empty ones, and the last one partial.
    rng = np.random.default_rng(3)
    sizes = [0, 1300, 7, 0, 512, 513, 40, 0]
    n, dim = sum(sizes), 24
    rows = _unit(rng.standard_normal((n, dim)))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    base = KNNIndex.load(DEFAULT_ROUTER_DIR)
    index = KNNIndex(
        embeddings=rows,
        centroids=_unit(rng.standard_normal((len(sizes), dim))),
        offsets=offsets,
        tier_scores=np.zeros((n, 3), np.float32),
        output_tokens=np.zeros(n, np.float32),
        task_ids=np.zeros(n, np.int32),
        prompt_hashes=np.arange(n, dtype=np.uint64),
        tasks=base.tasks[:1],
        previews=("",) * n,
        manifest={},
    ).in_memory(memory)
    stored = index.rows_as_float32(0, n)  # what the search scores (int8 rounding included)
    for _ in range(10):
        query = _unit(rng.standard_normal((1, dim)))[0]
        for k, nprobe in [(50, 3), (200, 8), (5000, 8), (1, 1)]:
            found, sims = index.search(query, k, nprobe, max_rows)
            probed = _probed(index, query, nprobe, max_rows)
            candidates = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in probed])
            want = candidates[np.argsort(-(stored[candidates] @ query))][: min(k, len(candidates))]
            assert found.dtype == np.intp and len(found) == len(want)
            assert set(found.tolist()) == set(want.tolist())
            np.testing.assert_allclose(sims, stored[found] @ query, rtol=1e-5, atol=1e-6)


def test_the_scan_cap_leaves_the_bundled_router_unchanged() -> None:
    capped, uncapped = KNNRouter.load(), KNNRouter.load(max_scan_rows=10**9)
    assert capped.max_scan_rows == 8192
    for prompt in ["What is 2+2?", "Write a Python function that merges two sorted lists"]:
        assert capped.predict(prompt).scores == uncapped.predict(prompt).scores


class _OneVector:
    """An embedder that maps every text to the same unit vector (the index decides)."""

    id = "one-vector"
    dim = 4

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.float32([1, 0, 0, 0]), (len(texts), 1))


def _six_row_router(tier_scores: list[list[float]]) -> KNNRouter:
    rows = _unit(np.float32([[1, 0.1 * i, 0, 0] for i in range(6)]))
    index = KNNIndex(
        embeddings=rows,
        centroids=rows[:1],
        offsets=np.array([0, 6], np.int64),
        tier_scores=np.array(tier_scores, np.float32),
        output_tokens=np.float32([10, np.nan, 30, np.nan, np.nan, np.nan]),
        task_ids=np.zeros(6, np.int32),
        prompt_hashes=np.arange(6, dtype=np.uint64),
        tasks=("t",),
        previews=("",) * 6,
        manifest={"embedder": {"id": _OneVector.id}},
    )
    return KNNRouter(index, _OneVector(), k=6, weighting="uniform")


def test_outcomes_are_averaged_over_the_neighbours_that_have_them() -> None:
    nan = float("nan")
    complete = _six_row_router([[0.1, 0.5, 0.9], [0.3, 0.5, 0.7]] * 3)
    prediction = complete.predict("anything")
    assert prediction.scores == pytest.approx({"budget": 0.2, "balanced": 0.5, "premium": 0.8})
    assert prediction.expected_output_tokens == 20  # the two neighbours with a length
    # A missing outcome is left out of its tier's mean; a tier nobody has is filled between
    # its neighbours' tiers.
    gaps = _six_row_router([[0.0, nan, 1.0], [nan, nan, 0.6], [0.2, nan, nan]] * 2)
    assert gaps.predict("anything").scores == pytest.approx(
        {"budget": 0.1, "balanced": 0.45, "premium": 0.8}
    )


def test_big_indexes_get_clusters_of_a_few_hundred_rows() -> None:
    from orkestra.routing.train import ROWS_PER_CLUSTER, default_clusters

    # Up to 65,536 rows the square root, as the bundled index was built (150 clusters).
    assert [default_clusters(n) for n in (1, 2, 100, 22_358, 65_536)] == [1, 1, 10, 150, 256]
    assert default_clusters(1_000_000) == 1_000_000 // ROWS_PER_CLUSTER == 3906
    sizes = range(1, 3_000_000, 9_973)
    assert all(default_clusters(a) <= default_clusters(b) for a, b in itertools.pairwise(sizes))
