"""The KNN router: embed the prompt, find similar reference prompts, average their outcomes.

For a prompt q with the ``k`` nearest reference prompts n₁..n_k (cosine similarity sᵢ), the
predicted quality of tier t is the weighted mean of the neighbours' outcomes on t, with weights
w(sᵢ) (``weighting``: ``"uniform"``, ``"cosine"`` = max(s, 0), or ``"softmax:T"`` =
exp(s/T)). A tier no neighbour has data for is filled from the others. The expected answer
length is the neighbours' weighted mean where the data recorded one.

An index with everyday rows (``routing.everyday``) gives a second prediction, from the
``everyday_k`` nearest everyday rows, and the gate g(prompt) mixes the two:
``g · everyday + (1 − g) · outcome``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orkestra._types import TIERS, Neighbor
from orkestra.errors import DataFormatError
from orkestra.routing.embedder import Embedder, StaticEmbedder
from orkestra.routing.everyday import gate_logit
from orkestra.routing.index import KNNIndex
from orkestra.routing.limits import DEFAULT_LIMITS, RouterLimits
from orkestra.routing.policy import TierPrediction, tier_choices

__all__ = ["DEFAULT_MAX_SCAN_ROWS", "KNNRouter", "weights_for"]

DEFAULT_MAX_SCAN_ROWS = 8192
"""Most rows one search scans. On a synthetic million-row index (1,378 clusters, 8 probed) it
cut the rows scanned at the 99th percentile from ~13,000 to ~8,200 and recall@200 against an
exact scan from 0.791 to 0.769; the bundled index (150 clusters, a median of 126 rows each: 8
probed are ~1,000 rows) never reaches it."""

F32 = npt.NDArray[np.float32]


def weights_for(sims: F32, weighting: str) -> F32:
    """Neighbour weights from cosine similarities."""
    if weighting == "uniform":
        return np.ones(sims.shape, dtype=np.float32)
    if weighting == "cosine":
        return np.asarray(np.maximum(sims, 0.0) + 1e-6, dtype=np.float32)
    if weighting.startswith("softmax:"):
        temperature = float(weighting.split(":", 1)[1])
        return np.asarray(np.exp((sims - sims.max()) / temperature), dtype=np.float32)
    raise ValueError(f"unknown weighting {weighting!r} (uniform, cosine, softmax:T)")


class KNNRouter:
    """A router over a :class:`KNNIndex`. ``KNNRouter.load()`` is the bundled default.

    Args:
        index: the reference prompts and their outcomes.
        embedder: must be the embedder the index was built with (checked by id).
        k, weighting, nprobe: neighbours to average, their weighting, clusters to scan
            (defaults: the values stored in the index's manifest).
        max_scan_rows: the most rows one search scans (default
            :data:`DEFAULT_MAX_SCAN_ROWS`): past it the farther of the ``nprobe`` clusters are
            skipped. It only binds on big indexes (a million rows: in the densest regions),
            where it bounds a decision's tail for a little recall.
        everyday_k, everyday_prior: everyday neighbours to average, and the gate's prior log
            odds that a prompt is an everyday one (an index without everyday rows ignores both).
        default_knob: the quality knob used when a call gives none (default: the manifest's,
            set by calibration when the index was built).
    """

    def __init__(
        self,
        index: KNNIndex,
        embedder: Embedder | None = None,
        *,
        k: int | None = None,
        weighting: str | None = None,
        nprobe: int | None = None,
        max_scan_rows: int | None = None,
        everyday_k: int | None = None,
        everyday_prior: float | None = None,
        default_knob: float | None = None,
    ) -> None:
        embedder = embedder or StaticEmbedder.default()
        if embedder.id != index.embedder_id:
            raise DataFormatError(
                f"this router was built with embedder {index.embedder_id!r} and cannot be "
                f"queried with {embedder.id!r}; pass the matching embedder or rebuild it"
            )
        if embedder.dim != index.embeddings.shape[1]:
            raise DataFormatError("embedder and router index have different dimensions")
        settings = index.manifest.get("router", {})
        self.index = index
        self.embedder = embedder
        self.k = int(k or settings.get("k", 200))
        self.weighting = str(weighting or settings.get("weighting", "softmax:0.05"))
        self.nprobe = int(nprobe or settings.get("nprobe", 8))
        self.max_scan_rows = int(
            max_scan_rows or settings.get("max_scan_rows", DEFAULT_MAX_SCAN_ROWS)
        )
        self.rule = str(settings.get("rule", "margin"))
        self.everyday_k = int(everyday_k or settings.get("everyday_k", 20))
        prior = everyday_prior if everyday_prior is not None else settings.get("everyday_prior")
        self.everyday_prior = float(prior or 0.0)
        weights_for(np.zeros(1, np.float32), self.weighting)  # validate now, not per call
        knob = default_knob if default_knob is not None else settings.get("default_knob", 0.9)
        self._default_knob = float(knob)
        means = index.manifest.get("tier_means") or [0.5, 0.5, 0.5]
        self._prior = np.asarray(means, dtype=np.float32)
        # The everyday rows' block (scanned whole).
        start = index.outcome_size
        self._everyday_block = index.rows_as_float32(start, index.size)
        # Whether every outcome row, and every everyday row, has every tier (a plain mean).
        self._outcomes_complete = not np.isnan(index.tier_scores[:start]).any()
        self._everyday_complete = not np.isnan(index.tier_scores[start:]).any()

    def __repr__(self) -> str:
        return (
            f"KNNRouter(rows={self.index.size}, embedder={self.embedder.id!r}, k={self.k}, "
            f"weighting={self.weighting!r}, knob={self._default_knob})"
        )

    @property
    def id(self) -> str:
        return f"knn:{self.index.manifest.get('name', 'custom')}:{self.index.size}"

    @property
    def default_knob(self) -> float:
        return self._default_knob

    @default_knob.setter
    def default_knob(self, value: float) -> None:
        self._default_knob = float(value)

    @classmethod
    def load(
        cls,
        source: str | Path | None = None,
        *,
        sha256: str | None = None,
        embedder: Embedder | None = None,
        limits: RouterLimits = DEFAULT_LIMITS,
        memory: str = "auto",
        **settings: Any,
    ) -> KNNRouter:
        """A router from a folder, an archive URL (``https://``, verified by ``sha256``), or
        the bundled default when ``source`` is None. ``limits``: how big a router may be
        (:class:`~orkestra.routing.limits.RouterLimits`), checked before anything is unpacked
        or allocated. ``memory``: how the embeddings are held (``"auto"``, ``"float32"`` or
        ``"int8"``; :meth:`KNNIndex.in_memory`)."""
        from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR, fetch_router

        if source is None:
            folder = DEFAULT_ROUTER_DIR
        else:
            folder = fetch_router(source, sha256=sha256, limits=limits)
        return cls(KNNIndex.load(folder, limits=limits, memory=memory), embedder, **settings)

    # -- prediction -------------------------------------------------------------------------

    def _mean_scores(self, rows: npt.NDArray[np.intp], w: F32, complete: bool) -> F32:
        """The rows' outcomes per tier, weighted by ``w``: a plain weighted mean when
        ``complete`` (every row has every tier), else over the rows that have a tier."""
        outcomes = self.index.tier_scores[rows]
        if complete:
            return np.asarray(w @ outcomes / w.sum(), dtype=np.float32)
        present = ~np.isnan(outcomes)
        wsum = (w[:, None] * present).sum(axis=0)
        totals = (w[:, None] * np.where(present, outcomes, 0.0)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(wsum > 0, totals / np.maximum(wsum, 1e-12), np.nan)
        return self._fill(scores.astype(np.float32))

    def _expected_tokens(self, rows: npt.NDArray[np.intp], w: F32) -> float | None:
        """The neighbours' weighted mean answer length, over those with one recorded."""
        lengths = self.index.output_tokens[rows]
        known = ~np.isnan(lengths)
        return float((w[known] * lengths[known]).sum() / w[known].sum()) if known.any() else None

    def _fill(self, scores: F32) -> F32:
        """A tier without data: between its neighbours' tiers, else the index-wide mean."""
        if not np.isnan(scores).any():
            return scores
        budget, balanced, premium = scores
        if np.isnan(balanced) and not np.isnan(budget) and not np.isnan(premium):
            scores[1] = (budget + premium) / 2
        return np.where(np.isnan(scores), self._prior, scores).astype(np.float32)

    def _everyday(
        self, prompt: str, query: F32
    ) -> tuple[F32, float, F32, npt.NDArray[np.intp], F32]:
        """The everyday rows' prediction, the gate's share for it, and the neighbours used."""
        sims = self._everyday_block @ query
        k = min(self.everyday_k, sims.shape[0])
        top = np.argpartition(-sims, k - 1)[:k] if k < sims.shape[0] else np.arange(k)
        sims = sims[top]
        rows = top + self.index.outcome_size
        weights = weights_for(sims, self.weighting)
        scores = self._mean_scores(rows, weights, self._everyday_complete)
        assert self.index.gate is not None
        logit = gate_logit(self.index.gate, query, prompt) + self.everyday_prior
        share = 1.0 / (1.0 + math.exp(-logit)) if logit > -60 else 0.0
        return scores, share, weights * (share / weights.sum()), rows, sims

    def _predict(
        self, prompt: str, query: F32
    ) -> tuple[F32, float | None, F32, npt.NDArray[np.intp], F32]:
        """Scores per tier, expected answer tokens, and each neighbour's share of the prediction,
        row and similarity."""
        rows, sims = self.index.search(query, self.k, self.nprobe, self.max_scan_rows)
        weights = weights_for(sims, self.weighting)
        scores = self._mean_scores(rows, weights, self._outcomes_complete)
        expected = self._expected_tokens(rows, weights)
        if self.index.gate is None or self.index.everyday_size == 0:
            return scores, expected, weights / weights.sum(), rows, sims
        every_scores, share, every_weights, every_rows, every_sims = self._everyday(prompt, query)
        mixed = (share * every_scores + (1.0 - share) * scores).astype(np.float32)
        weights *= (1.0 - share) / weights.sum()
        return (
            mixed,
            expected,
            np.concatenate([weights, every_weights]),
            np.concatenate([rows, every_rows]),
            np.concatenate([sims, every_sims]),
        )

    def predict(self, prompt: str) -> TierPrediction:
        start = time.perf_counter()
        query = self.embedder.encode([prompt])[0]
        scores, expected, weights, rows, sims = self._predict(prompt, query)
        # The five neighbours that weighed most in the prediction, most similar first.
        top = np.argpartition(-weights, 4)[:5] if len(weights) > 5 else np.arange(len(weights))
        top = top[np.argsort(-sims[top])]
        neighbors = tuple(
            Neighbor(
                task=self.index.tasks[self.index.task_ids[rows[i]]],
                similarity=float(sims[i]),
                prompt=self.index.previews[rows[i]],
            )
            for i in top
        )
        return TierPrediction(
            scores={tier: float(scores[j]) for j, tier in enumerate(TIERS)},
            expected_output_tokens=None if expected is None else round(expected),
            neighbors=neighbors,
            latency_ms=(time.perf_counter() - start) * 1000.0,
        )

    def everyday_share(self, prompt: str) -> float:
        """The gate's weight on the everyday rows for ``prompt`` (0 without everyday rows)."""
        if self.index.gate is None or self.index.everyday_size == 0:
            return 0.0
        return self._everyday(prompt, self.embedder.encode([prompt])[0])[1]

    def predict_many(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 1024,
        progress: Callable[[int, int], None] | None = None,
    ) -> F32:
        """Predicted quality per tier, (n, 3), for many prompts (batched embedding)."""
        out = np.empty((len(prompts), len(TIERS)), dtype=np.float32)
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            queries = self.embedder.encode(batch)
            for offset, (prompt, query) in enumerate(zip(batch, queries, strict=True)):
                out[start + offset] = self._predict(prompt, query)[0]
            if progress:
                progress(min(start + batch_size, len(prompts)), len(prompts))
        return out

    def calibrate(self, prompts: Sequence[str], premium_share: float = 0.2) -> float:
        """Set (and return) the default knob so that ``premium_share`` of ``prompts`` go premium.

        Uses the decision rule on the tiers' predicted quality (tiers in cost order), the same
        rule every call uses.
        """
        if not 0.0 <= premium_share <= 1.0:
            raise ValueError("premium_share must be in [0, 1]")
        scores = self.predict_many(prompts)
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            share = float(np.mean(tier_choices(scores, mid, self.rule) == len(TIERS) - 1))
            lo, hi = (mid, hi) if share < premium_share else (lo, mid)
        self._default_knob = hi
        return hi
