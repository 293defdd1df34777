"""Build a router index from outcome data (``orkestra train``)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from orkestra._types import TIERS, Tier
from orkestra.routing.data import DATASET_TIERS, OutcomeRow, tier_scores
from orkestra.routing.embedder import Embedder
from orkestra.routing.everyday import EVERYDAY_SOURCES, fit_gate, gate_features
from orkestra.routing.index import KNNIndex, prompt_hash

__all__ = [
    "DEFAULT_SETTINGS",
    "balanced_clusters",
    "build_index",
    "is_validation",
    "output_tokens_of",
    "spherical_kmeans",
    "train_router",
]

DEFAULT_SETTINGS: dict[str, Any] = {
    "k": 200,
    "weighting": "softmax:0.05",
    "nprobe": 8,
    "rule": "margin",
    "everyday_k": 20,
    "everyday_prior": 0.5,
}
"""Decision settings stored in a new index's manifest (chosen on a validation split and, for the
everyday settings, on the dev half of the ordinary-prompt pairs; see ``docs/evaluation.md``)."""

Progress = Callable[[int, int], None]


def output_tokens_of(row: OutcomeRow, tier_models: Mapping[Tier, str]) -> float:
    """The answer length the row records (mean over the tier models), or NaN."""
    if row.tokens_in_out:
        outs = [row.tokens_in_out[m][1] for m in tier_models.values() if m in row.tokens_in_out]
        if outs:
            return float(np.mean(outs))
    chars = row.extra.get("response_chars")
    if isinstance(chars, dict):
        values = [v for m, v in chars.items() if m in tier_models.values() and isinstance(v, int)]
        if values:
            return float(np.mean(values)) / 4.0
    return float("nan")


def spherical_kmeans(
    x: np.ndarray[Any, np.dtype[np.float32]],
    n_clusters: int,
    *,
    seed: int = 0,
    iterations: int = 12,
    sample: int = 8192,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Unit-norm centroids of ``x`` (rows unit-norm), fitted on a seeded sample. Deterministic."""
    rng = np.random.default_rng(seed)
    fit = x if x.shape[0] <= sample else x[rng.choice(x.shape[0], sample, replace=False)]
    centroids = fit[rng.choice(fit.shape[0], n_clusters, replace=False)].copy()
    for _ in range(iterations):
        assign = np.argmax(fit @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, fit)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        sums[empty] = centroids[empty]  # keep a centroid that lost its rows
        centroids = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(
            np.float32
        )
    return np.asarray(centroids, dtype=np.float32)


SAMPLE_PER_CLUSTER = 32
"""k-means is fitted on at least this many rows per cluster (and at least 8,192 rows)."""
SPLIT_FLOOR = 2048
"""A cluster is split once it holds more than twice the mean and more than this many rows: a
scan of a couple of thousand rows costs a few hundredths of a millisecond, so only the big
outliers matter for the decision's p99."""


ROWS_PER_CLUSTER = 256
"""Past 65,536 rows an index gets about this many rows per cluster, more than the square root
of its size: on a synthetic million rows, 4,000 clusters of ~250 rows instead of 1,000 (~1,400
after splits) raised recall@200 at ``nprobe`` 8 from 0.771 to 0.817 at the same decision time
(fewer rows scanned, more centroids scored; docs/benchmarks.md)."""


def default_clusters(n_rows: int) -> int:
    """How many k-means clusters an index of ``n_rows`` outcome rows is built with: the square
    root of its size, or one per :data:`ROWS_PER_CLUSTER` rows past 65,536 rows."""
    return max(1, min(n_rows, max(round(math.sqrt(n_rows)), n_rows // ROWS_PER_CLUSTER)))


def nearest_centroid(
    x: np.ndarray[Any, np.dtype[np.float32]],
    centroids: np.ndarray[Any, np.dtype[np.float32]],
    chunk: int = 65536,
) -> npt.NDArray[np.intp]:
    """Each row's nearest centroid (cosine), in chunks so a big index never builds an n × C
    matrix at once."""
    out = np.empty(x.shape[0], dtype=np.intp)
    for start in range(0, x.shape[0], chunk):
        out[start : start + chunk] = np.argmax(x[start : start + chunk] @ centroids.T, axis=1)
    return out


def balanced_clusters(
    x: np.ndarray[Any, np.dtype[np.float32]], n_clusters: int, *, seed: int = 0
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], npt.NDArray[np.intp]]:
    """Centroids and each row's cluster, with no cluster much bigger than the rest.

    Spherical k-means on a sample of at least :data:`SAMPLE_PER_CLUSTER` rows per cluster, then
    every cluster past ``max(2 × mean, SPLIT_FLOOR)`` rows is split by k-means on its own rows
    into clusters of about the mean size (up to four passes). A 1M-row index fitted on the old
    fixed 8,192-row sample had clusters of 15k rows beside a median of 451, and the queries that
    probed them set the p99 (docs/benchmarks.md). Deterministic for a given ``seed``; below the
    floor (the bundled index) nothing is split and the sample is the old one.
    """
    n = x.shape[0]
    sample = max(8192, SAMPLE_PER_CLUSTER * n_clusters)
    centroids = spherical_kmeans(x, n_clusters, seed=seed, sample=sample)
    assign = nearest_centroid(x, centroids)
    mean = n / n_clusters
    cap = max(2 * mean, SPLIT_FLOOR)
    for _ in range(4):
        sizes = np.bincount(assign, minlength=len(centroids))
        oversized = np.flatnonzero(sizes > cap)
        if not len(oversized):
            break
        extra: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        next_id = len(centroids)
        for cluster in oversized:
            rows = np.flatnonzero(assign == cluster)
            parts = int(np.ceil(len(rows) / mean))
            sub = spherical_kmeans(x[rows], parts, seed=seed + 1 + int(cluster))
            # The first part keeps the cluster's id, the others take new ones at the end.
            ids = np.concatenate([[cluster], np.arange(next_id, next_id + parts - 1)])
            assign[rows] = ids[nearest_centroid(x[rows], sub)]
            centroids[cluster] = sub[0]
            extra.append(sub[1:])
            next_id += parts - 1
        centroids = np.vstack([centroids, *extra]).astype(np.float32)
    return centroids, assign


def build_index(
    rows: Sequence[OutcomeRow],
    embedder: Embedder,
    *,
    tiers: Mapping[str, Mapping[Tier, str]] = DATASET_TIERS,
    n_clusters: int | None = None,
    settings: Mapping[str, Any] | None = None,
    provenance: Sequence[Mapping[str, Any]] = (),
    batch_size: int = 1024,
    progress: Progress | None = None,
    seed: int = 0,
) -> KNNIndex:
    """Embed every row's prompt and store its outcome per tier (NaN where a tier is unmapped).

    Rows of an everyday data set (:data:`~orkestra.routing.everyday.EVERYDAY_SOURCES`) go after
    the clustered outcome rows, and the gate between the two is fitted, when both kinds are
    present; otherwise every row is an outcome row.
    """
    if not rows:
        raise ValueError("cannot build a router from no rows")
    everyday_mask = np.fromiter((r.source in EVERYDAY_SOURCES for r in rows), bool, len(rows))
    if everyday_mask.all() or not everyday_mask.any():
        everyday_mask[:] = False
    n = len(rows)
    embeddings = np.empty((n, embedder.dim), dtype=np.float32)
    for start in range(0, n, batch_size):
        batch = rows[start : start + batch_size]
        embeddings[start : start + len(batch)] = embedder.encode([r.prompt for r in batch])
        if progress:
            progress(start + len(batch), n)
    scores = np.full((n, len(TIERS)), np.nan, dtype=np.float32)
    outputs = np.full(n, np.nan, dtype=np.float32)
    task_names = sorted({f"{r.source}:{r.task}" for r in rows})
    task_index = {t: i for i, t in enumerate(task_names)}
    task_ids = np.empty(n, dtype=np.int32)
    for i, row in enumerate(rows):
        for tier, value in tier_scores(row, tiers).items():
            scores[i, TIERS.index(tier)] = value
        outputs[i] = output_tokens_of(row, tiers[row.source])
        task_ids[i] = task_index[f"{row.source}:{row.task}"]
    # A two-model data set has no balanced model: its balanced outcome is taken halfway between
    # budget and premium, per row, so that neighbours from different data sets average alike.
    gap = np.isnan(scores[:, 1]) & ~np.isnan(scores[:, 0]) & ~np.isnan(scores[:, 2])
    scores[gap, 1] = (scores[gap, 0] + scores[gap, 2]) / 2

    outcome = np.flatnonzero(~everyday_mask)
    everyday = np.flatnonzero(everyday_mask)
    clusters = min(n_clusters or default_clusters(len(outcome)), len(outcome))
    centroids, assign = balanced_clusters(embeddings[outcome], clusters, seed=seed)
    clusters = len(centroids)
    # Outcome rows sorted by cluster, then the everyday rows in their given order.
    order = np.concatenate([outcome[np.argsort(assign, kind="stable")], everyday])
    offsets = np.zeros(clusters + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(assign, minlength=clusters))
    gate = None
    if len(everyday):
        features = gate_features(embeddings, [r.prompt for r in rows])
        gate = fit_gate(features, everyday_mask)

    hashes = np.fromiter((prompt_hash(r.prompt) for r in rows), np.uint64, n)
    previews = [" ".join(r.prompt.split())[:100] for r in rows]
    embedder_manifest = getattr(embedder, "manifest", {})
    files = embedder_manifest.get("files", {}) if isinstance(embedder_manifest, Mapping) else {}
    manifest: dict[str, Any] = {
        "name": "orkestra-knn",
        "embedder": {
            "id": embedder.id,
            "table_sha256": next(
                (v.get("sha256") for k, v in files.items() if k.endswith(".npy")), None
            ),
        },
        "dim": embedder.dim,
        "rows": n,
        "clusters": clusters,
        "tiers": list(TIERS),
        "tier_mapping": {s: dict(m) for s, m in tiers.items() if any(r.source == s for r in rows)},
        "splits": sorted({r.split for r in rows}),
        "sources": provenance_counts(rows),
        "provenance": list(provenance),
        "router": dict(settings or DEFAULT_SETTINGS),
        "balanced_interpolated": (
            "halfway between budget and premium where a data set has no balanced model"
        ),
        "tier_means": [float(np.nanmean(scores[outcome, j])) for j in range(len(TIERS))],
    }
    if len(everyday):
        manifest["everyday"] = {
            "rows": len(everyday),
            "sources": sorted({rows[int(i)].source for i in everyday}),
            "gate": "logistic regression on the embedding and log length, classes balanced, L2 1",
        }
    return KNNIndex(
        embeddings=np.ascontiguousarray(embeddings[order]),
        centroids=centroids,
        offsets=offsets,
        tier_scores=scores[order],
        output_tokens=outputs[order],
        task_ids=task_ids[order],
        prompt_hashes=hashes[order],
        tasks=tuple(task_names),
        previews=tuple(previews[i] for i in order),
        manifest=manifest,
        gate=gate,
    )


def provenance_counts(rows: Sequence[OutcomeRow]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r.source, {}).setdefault(r.split, 0)
        out[r.source][r.split] += 1
    return out


def is_validation(prompt: str, share: float = 0.15) -> bool:
    """A stable pseudo-random ``share`` of prompts (by text hash) held out to tune settings.

    The same prompt always falls on the same side, whichever file it comes from.
    """
    bucket = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[8:12], "little")
    return bucket % 10_000 < share * 10_000


def train_router(
    rows: Sequence[OutcomeRow],
    embedder: Embedder,
    *,
    tiers: Mapping[str, Mapping[Tier, str]] = DATASET_TIERS,
    premium_share: float = 0.2,
    provenance: Sequence[Mapping[str, Any]] = (),
    progress: Progress | None = None,
) -> KNNIndex:
    """Build an index of ``rows`` whose default knob sends ``premium_share`` of prompts premium.

    The knob is calibrated on a validation slice of ``rows`` (:func:`is_validation`) predicted
    by an index of the other rows, so it is not fitted on prompts that are their own neighbours.
    Everyday rows are not part of that slice: the premium share is a share of outcome prompts,
    as it was before everyday rows existed.
    """
    from orkestra.routing.knn import KNNRouter

    fit = [r for r in rows if not is_validation(r.prompt)]
    held = [r for r in rows if is_validation(r.prompt) and r.source not in EVERYDAY_SOURCES]
    settings = dict(DEFAULT_SETTINGS, premium_share_target=premium_share)
    if fit and held:
        probe = KNNRouter(build_index(fit, embedder, tiers=tiers), embedder)
        settings["default_knob"] = round(
            probe.calibrate([r.prompt for r in held], premium_share), 4
        )
    return build_index(
        rows, embedder, tiers=tiers, settings=settings, provenance=provenance, progress=progress
    )
