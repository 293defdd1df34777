"""Headline metrics of a router sweep, and bootstrap confidence intervals over prompts.

Every metric reads a :class:`~orkestra.evaluation.curves.Curve` as a polyline (piecewise-linear
interpolation between its points; see that module for the notation and the two x axes):

* PGR(θ) = (r(θ) − r(weak)) / (r(strong) − r(weak)), the share of the quality gap recovered.
* APGR: the area under PGR over x in [0, 1] (trapezoids on the polyline). The zero router
  scores exactly 0.5. PGR exceeds 1 where the router beats the strong model (the weak model is
  right on prompts where the strong one is wrong), so an oracle can score above 1.
* CPT(p%): the smallest x at which the polyline's PGR reaches p%.
* quality ratio r/r(strong) at an x; savings@τ = 1 − C(θ*)/C(strong), θ* the cheapest point of
  the polyline with r ≥ τ·r(strong).
* AIQ (RouterBench): the area under the non-decreasing upper convex hull of (cost, quality)
  points, divided by the cost range.

Where several points share an x (possible on the cost axis), the value "at" that x is the best
one: mixing the settings there reaches any quality in between at the same cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from orkestra.evaluation.curves import Curve, FloatArray, IntArray

__all__ = [
    "BootstrapCI",
    "Summary",
    "aiq",
    "apgr",
    "bootstrap_ci",
    "bootstrap_samples",
    "cpt",
    "percentile_ci",
    "pgr",
    "quality_ratio_at",
    "roc_auc",
    "savings_at",
    "summarize",
    "summary_ci",
]

_NAN = float("nan")


# ----------------------------------------------------------------------------- polyline helpers


def _integrate(x: FloatArray, y: FloatArray, lo: float, hi: float) -> float:
    """Integral over [lo, hi] of the polyline through (x, y); x ascending and covering [lo, hi].

    A point is inserted where a segment crosses lo or hi; then x is clipped to [lo, hi], which
    turns the parts outside into vertical segments of zero area.
    """
    if x[0] > lo or x[-1] < hi:
        raise ValueError(f"the polyline covers [{x[0]}, {x[-1]}], not [{lo}, {hi}]")
    for bound in (lo, hi):
        i = int(np.searchsorted(x, bound, side="left"))
        if 0 < i < x.size and x[i] != bound:
            t = (bound - x[i - 1]) / (x[i] - x[i - 1])
            x = np.insert(x, i, bound)
            y = np.insert(y, i, y[i - 1] + t * (y[i] - y[i - 1]))
    x = np.clip(x, lo, hi)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) * 0.5)


def _value_at(x: FloatArray, y: FloatArray, at: float) -> float:
    """Value of the polyline at ``at`` (the best one where several points share that x);
    nan outside the polyline's x range."""
    if not x[0] <= at <= x[-1]:
        return _NAN
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    inside = (x0 <= at) & (at <= x1)
    left, width = x0[inside], x1[inside] - x0[inside]
    start, end = y0[inside], y1[inside]
    flat = width <= 0
    t = (at - left) / np.where(flat, 1.0, width)
    values = np.where(flat, np.maximum(start, end), start + t * (end - start))
    return float(values.max())


# ----------------------------------------------------------------------------- curve metrics


def pgr(curve: Curve) -> FloatArray:
    """PGR at each point of the curve; all nan when r(strong) == r(weak)."""
    gap = curve.r_strong - curve.r_weak
    if gap == 0:
        return np.full(curve.x.shape, np.nan)
    return (curve.quality - curve.r_weak) / gap


def apgr(curve: Curve) -> float:
    """Area under PGR over x in [0, 1], trapezoids on the polyline; nan if PGR is undefined."""
    y = pgr(curve)
    if np.isnan(y[0]):
        return _NAN
    return _integrate(curve.x, y, 0.0, 1.0)


def cpt(curve: Curve, pct: float) -> float:
    """CPT(pct%): the smallest x at which the polyline's PGR reaches ``pct`` percent.

    ``pct`` is in percent (``cpt(curve, 50)`` is CPT(50%)); a value strictly between 0 and 1 is
    refused as a probable fraction. The crossing is exact on the polyline. nan if PGR never
    reaches it (or is undefined). On the cost axis x is the share of the extra cost.
    """
    if 0 < pct < 1:
        raise ValueError(f"pct is in percent: pass {pct * 100:g} for CPT({pct * 100:g}%)")
    target = pct / 100.0
    y, x = pgr(curve), curve.x
    reached = x[y >= target]
    y0, y1 = y[:-1], y[1:]
    cross = (y0 < target) & (y1 >= target)
    t = (target - y0[cross]) / (y1[cross] - y0[cross])
    crossing = x[:-1][cross] + t * (x[1:][cross] - x[:-1][cross])
    candidates = np.concatenate((reached, crossing))
    return float(candidates.min()) if candidates.size else _NAN


def quality_ratio_at(curve: Curve, x: float) -> float:
    """r/r(strong) on the polyline at ``x`` (nan outside the curve or if r(strong) is 0)."""
    if curve.r_strong == 0:
        return _NAN
    return _value_at(curve.x, curve.quality, float(x)) / curve.r_strong


def savings_at(curve: Curve, tau: float) -> float:
    """savings@τ = 1 − C(θ*)/C(strong), θ* the cheapest point of the polyline with
    r ≥ τ·r(strong).

    Along each segment quality and cost both change linearly (mixing two settings at random),
    so θ* is a point of the curve or the exact crossing of a segment. This gives 0.0 when only
    the all-strong end reaches the target, and 1 − C(weak)/C(strong) when the all-weak point
    already does (on a curve whose costs rise from weak to strong). nan if no point reaches it
    (possible for τ > 1) or C(strong) is 0.
    """
    if curve.c_strong == 0:
        return _NAN
    target = tau * curve.r_strong
    q, c = curve.quality, curve.cost
    q0, q1, c0, c1 = q[:-1], q[1:], c[:-1], c[1:]
    cross = (q0 < target) != (q1 < target)
    t = (target - q0[cross]) / (q1[cross] - q0[cross])
    candidates = np.concatenate((c[q >= target], c0[cross] + t * (c1[cross] - c0[cross])))
    if candidates.size == 0:
        return _NAN
    return 1.0 - float(candidates.min()) / curve.c_strong


# ----------------------------------------------------------------------------- AIQ


def _upper_hull(cost: FloatArray, quality: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vertices of the non-decreasing upper convex hull, from the cheapest point (its best
    quality) to the cheapest point of the highest quality; flat after that."""
    order = np.lexsort((-quality, cost))
    c, q = cost[order], quality[order]
    # Drop every point that an earlier (cheaper or as cheap) point matches in quality.
    keep = np.ones(c.size, dtype=bool)
    keep[1:] = q[1:] > np.maximum.accumulate(q)[:-1]
    c, q = c[keep], q[keep]
    # Now c and q both rise. Drop, all at once, every vertex on or below the chord of its
    # neighbours (a run of such vertices is a convex chain, below the chord of its ends), and
    # repeat until the chain is strictly concave.
    while c.size > 2:
        above = (q[1:-1] - q[:-2]) * (c[2:] - c[:-2]) > (q[2:] - q[:-2]) * (c[1:-1] - c[:-2])
        if above.all():
            break
        keep = np.concatenate(([True], above, [True]))
        c, q = c[keep], q[keep]
    return c, q


def aiq(
    costs: npt.ArrayLike,
    qualities: npt.ArrayLike,
    *,
    cost_range: tuple[float, float] | None = None,
) -> float:
    """AIQ (RouterBench): the area under the non-decreasing upper convex hull of the (cost,
    quality) points, divided by the cost range.

    The range is [min cost, max cost] of the points, or ``cost_range`` to put several routers
    on one range (it must not start below the cheapest point; past the best point the hull is
    flat). With a zero-width range the hull's value there is returned.
    For a curve: ``aiq(curve.cost, curve.quality)``; for the zero router of k models:
    ``aiq(*model_points(quality, cost))``.
    """
    c = np.asarray(costs, dtype=np.float64)
    q = np.asarray(qualities, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or q.shape != c.shape:
        raise ValueError("costs and qualities must be non-empty 1-D arrays of the same length")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(q))):
        raise ValueError("costs and qualities must be finite")
    lo, hi = (float(c.min()), float(c.max())) if cost_range is None else map(float, cost_range)
    hull_c, hull_q = _upper_hull(c, q)
    if hi < lo:
        raise ValueError("cost_range must be (low, high) with low <= high")
    if lo < hull_c[0]:
        raise ValueError(f"cost_range starts below the cheapest point ({hull_c[0]})")
    if hi > hull_c[-1] or hull_c.size == 1:
        hull_c = np.append(hull_c, max(hi, hull_c[-1]))
        hull_q = np.append(hull_q, hull_q[-1])
    if hi == lo:
        return _value_at(hull_c, hull_q, lo)
    return _integrate(hull_c, hull_q, lo, hi) / (hi - lo)


# ----------------------------------------------------------------------------- detection


def roc_auc(score: npt.ArrayLike, positive: npt.ArrayLike) -> float:
    """Area under the ROC curve of ``score`` for telling ``positive`` cases from the rest: the
    probability that a random positive scores higher than a random negative, ties counting
    half (the Mann-Whitney statistic). nan when either class is empty."""
    s = np.asarray(score, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if s.ndim != 1 or pos.shape != s.shape:
        raise ValueError("score and positive must be 1-D arrays of the same length")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return _NAN
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    ends = np.concatenate((starts[1:], [s.size]))
    for start, end in zip(starts, ends, strict=True):  # ties share their mean rank
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# ----------------------------------------------------------------------------- bootstrap


class BootstrapCI(tuple[float, float]):
    """A (low, high) percentile interval; ``n_nan`` of the ``n_boot`` draws were nan and left
    out (all of them: the interval is (nan, nan))."""

    n_nan: int
    n_boot: int

    def __new__(cls, low: float, high: float, *, n_nan: int = 0, n_boot: int = 0) -> BootstrapCI:
        self = super().__new__(cls, (float(low), float(high)))
        self.n_nan = n_nan
        self.n_boot = n_boot
        return self

    @property
    def low(self) -> float:
        return self[0]

    @property
    def high(self) -> float:
        return self[1]

    def __repr__(self) -> str:
        return (
            f"BootstrapCI(low={self[0]!r}, high={self[1]!r}, "
            f"n_nan={self.n_nan}, n_boot={self.n_boot})"
        )


def bootstrap_samples(
    statistic: Callable[[IntArray], npt.ArrayLike],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> FloatArray:
    """The statistic on ``n_boot`` resamples of the ``n`` prompts (indices drawn with
    replacement). ``statistic(idx)`` returns a float, or a 1-D array of several figures (one
    set of resamples for all of them); the result has shape (n_boot,) or (n_boot, k)."""
    if n < 1 or n_boot < 1:
        raise ValueError("n and n_boot must be at least 1")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, (1 << 20) // n))  # about 8 MB of indices at a time
    rows: list[FloatArray] = []
    for start in range(0, n_boot, chunk):
        draws = rng.integers(0, n, size=(min(chunk, n_boot - start), n), dtype=np.intp)
        rows.extend(np.asarray(statistic(idx), dtype=np.float64) for idx in draws)
    return np.stack(rows)


def percentile_ci(samples: npt.ArrayLike, alpha: float = 0.05) -> BootstrapCI:
    """Percentile interval of 1-D bootstrap draws, leaving out (and counting) nan draws."""
    draws = np.asarray(samples, dtype=np.float64)
    if draws.ndim != 1:
        raise ValueError("samples must be 1-D")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    valid = draws[~np.isnan(draws)]
    n_nan = int(draws.size - valid.size)
    if valid.size == 0:
        return BootstrapCI(_NAN, _NAN, n_nan=n_nan, n_boot=int(draws.size))
    low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
    return BootstrapCI(float(low), float(high), n_nan=n_nan, n_boot=int(draws.size))


def bootstrap_ci(
    statistic: Callable[[IntArray], float],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapCI:
    """Percentile bootstrap (1 − alpha) interval over prompts: ``statistic(idx)`` recomputes
    the figure on the resampled prompt indices ``idx``. nan draws are left out and counted in
    the result's ``n_nan``; if all are nan the interval is (nan, nan). The same seed gives the
    same resamples, so figures bootstrapped separately with one seed stay paired."""
    samples = bootstrap_samples(statistic, n, n_boot=n_boot, seed=seed)
    if samples.ndim != 1:
        raise ValueError("statistic must return a single float; use bootstrap_samples")
    return percentile_ci(samples, alpha)


# ----------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """The headline figures of one curve."""

    apgr: float
    cpt50: float
    cpt80: float
    savings95: float
    savings99: float
    aiq: float


def summarize(curve: Curve) -> Summary:
    """APGR, CPT(50%), CPT(80%), savings@0.95, savings@0.99 and AIQ of a curve."""
    return Summary(
        apgr=apgr(curve),
        cpt50=cpt(curve, 50),
        cpt80=cpt(curve, 80),
        savings95=savings_at(curve, 0.95),
        savings99=savings_at(curve, 0.99),
        aiq=aiq(curve.cost, curve.quality),
    )


def summary_ci(
    build_curve: Callable[[IntArray], Curve],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, BootstrapCI]:
    """Bootstrap intervals of every :class:`Summary` figure, from one curve per resample:
    ``build_curve(idx)`` builds the curve on the resampled prompts ``idx``."""

    def figures(idx: IntArray) -> FloatArray:
        return np.array(dataclasses.astuple(summarize(build_curve(idx))), dtype=np.float64)

    samples = bootstrap_samples(figures, n, n_boot=n_boot, seed=seed)
    names = [field.name for field in dataclasses.fields(Summary)]
    return {name: percentile_ci(samples[:, i], alpha) for i, name in enumerate(names)}
