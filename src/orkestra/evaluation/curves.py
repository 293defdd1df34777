"""Sweep curves of a router: quality and cost as its knob moves from all-weak to all-strong.

Notation (design doc): for prompt q and model m, quality s(q, m) in [0, 1] and cost c(q, m).
A router at knob setting θ picks m_θ(q); r(θ) is the mean of s(q, m_θ(q)) and C(θ) the sum of
c(q, m_θ(q)). "weak" / "strong" are the routers that always pick the budget / premium model.

A :class:`Curve` is a polyline through the settings of one sweep. Everything in
:mod:`orkestra.evaluation.metrics` reads it as piecewise linear: the straight line between two
settings is what mixing them at random achieves (in expectation), and it is also what breaking
a tie of equal router scores at random achieves.

Two x axes exist:

* ``"share"``: the share of prompts sent to the strong model (two tiers only), exactly 0 at the
  all-weak point and exactly 1 at the all-strong point.
* ``"cost"``: the share of the *extra* cost, (C(θ) − C(weak)) / (C(strong) − C(weak)), so that it
  runs over 0..1 like the share. The plain costs C(θ) are kept in ``Curve.cost``, so savings are
  computed on real money (1 − C(θ)/C(strong)). On this axis a setting can fall outside [0, 1]
  when some prompts are cheaper on the stronger model; the metrics integrate over [0, 1] only.

All functions are pure: numpy in, frozen dataclasses or floats out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Axis",
    "Curve",
    "cascade_curve",
    "curve_from_choices",
    "model_points",
    "oracle_choice",
    "oracle_curve",
    "share_per_model",
    "two_tier_curve",
    "zero_router_curve",
    "zero_router_curve_multi",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Axis = Literal["share", "cost"]

# Stages of the oracle's per-prompt path (see _oracle_steps).
_UPGRADE, _TAIL, _JUMP = 0, 1, 2


def _frozen(values: npt.ArrayLike) -> FloatArray:
    arr = np.array(values, dtype=np.float64, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Curve:
    """One router sweep, a polyline from the all-weak point to the all-strong point.

    ``x`` is ascending (non-decreasing: several settings may share an x); ``quality[i]`` is the
    mean quality r and ``cost[i]`` the total cost C of the i-th point. ``r_weak``/``r_strong``
    are the mean qualities and ``c_weak``/``c_strong`` the total costs of always picking the
    weak / strong model. The arrays are read-only copies.
    """

    x: FloatArray
    quality: FloatArray
    cost: FloatArray
    r_weak: float
    r_strong: float
    c_weak: float
    c_strong: float
    axis: Axis = "share"

    def __post_init__(self) -> None:
        for name in ("x", "quality", "cost"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in ("r_weak", "r_strong", "c_weak", "c_strong"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.x.ndim != 1 or self.x.size < 2:
            raise ValueError("a curve needs a 1-D x with at least two points")
        if self.quality.shape != self.x.shape or self.cost.shape != self.x.shape:
            raise ValueError("x, quality and cost must have the same length")
        if not all(np.all(np.isfinite(getattr(self, name))) for name in ("x", "quality", "cost")):
            raise ValueError("x, quality and cost must be finite")
        if np.any(np.diff(self.x) < 0):
            raise ValueError("x must be ascending")
        if self.axis not in ("share", "cost"):
            raise ValueError(f"axis must be 'share' or 'cost', not {self.axis!r}")

    def __len__(self) -> int:
        return int(self.x.size)


# ----------------------------------------------------------------------------- validation


def _vector(values: npt.ArrayLike, n: int, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _matrices(quality: npt.ArrayLike, cost: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] < 2:
        raise ValueError("quality must have shape (n_prompts >= 1, n_models >= 2)")
    if c.shape != q.shape:
        raise ValueError(f"cost must have the shape of quality {q.shape}, got {c.shape}")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(c))):
        raise ValueError("quality and cost must be finite")
    return q, c


def _check_axis(x: str) -> None:
    if x not in ("share", "cost"):
        raise ValueError(f"x must be 'share' or 'cost', not {x!r}")


# ----------------------------------------------------------------------------- builders


def _sweep(
    gain: FloatArray,
    extra: FloatArray,
    cuts: IntArray,
    *,
    ends: tuple[float, float, float, float],
    n: int,
    x: Axis,
) -> Curve:
    """Curve of a sweep that applies the steps ``gain``/``extra`` (quality gained, cost added)
    in order, with a point after step ``cuts[i]`` (``cuts`` starts at 0 and ends at the number of
    steps). ``ends`` = (r_weak, r_strong, c_weak, c_strong); the last point is set to it exactly.
    """
    r_weak, r_strong, c_weak, c_strong = ends
    cum_q = np.concatenate(([0.0], np.cumsum(gain)))[cuts]
    cum_c = np.concatenate(([0.0], np.cumsum(extra)))[cuts]
    quality = r_weak + cum_q / n
    cost = c_weak + cum_c
    quality[-1], cost[-1] = r_strong, c_strong
    if x == "share":
        xs = cuts / n
        return Curve(xs, quality, cost, r_weak, r_strong, c_weak, c_strong, "share")
    if not c_strong > c_weak:
        raise ValueError("the cost axis needs C(strong) > C(weak)")
    total = float(cum_c[-1]) if cum_c[-1] > 0 else c_strong - c_weak
    xs = cum_c / total
    xs[-1] = 1.0
    order = np.argsort(xs, kind="stable")
    return Curve(xs[order], quality[order], cost[order], r_weak, r_strong, c_weak, c_strong, "cost")


def two_tier_curve(
    router_score: npt.ArrayLike,
    q_weak: npt.ArrayLike,
    q_strong: npt.ArrayLike,
    c_weak: npt.ArrayLike,
    c_strong: npt.ArrayLike,
    *,
    x: Axis = "share",
) -> Curve:
    """Sweep a threshold over a two-tier router's scores (higher score = strong first).

    The threshold takes every distinct score, from the highest down; prompts with equal scores
    move to the strong model together (the straight line between the points is what breaking
    the tie at random achieves), so a constant score gives the zero router. Costs may be scalars
    (one price per call) or per-prompt arrays. ``x="share"`` puts the share of strong calls on
    the x axis, ``x="cost"`` the share of the extra cost (see the module docstring); on the cost
    axis the points are sorted by cost, which only reorders them when some prompt is cheaper on
    the strong model.
    """
    _check_axis(x)
    score = np.asarray(router_score, dtype=np.float64)
    if score.ndim != 1 or score.size == 0:
        raise ValueError("router_score must be a non-empty 1-D array")
    if np.any(np.isnan(score)):
        raise ValueError("router_score must not contain nan")
    n = score.size
    qw, qs = _vector(q_weak, n, "q_weak"), _vector(q_strong, n, "q_strong")
    cw, cs = _vector(c_weak, n, "c_weak"), _vector(c_strong, n, "c_strong")
    order = np.argsort(-score)
    ordered = score[order]
    cuts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, [n]))
    ends = (float(qw.mean()), float(qs.mean()), float(cw.sum()), float(cs.sum()))
    return _sweep((qs - qw)[order], (cs - cw)[order], cuts, ends=ends, n=n, x=x)


def cascade_curve(
    verifier_score: npt.ArrayLike,
    q_weak: npt.ArrayLike,
    q_strong: npt.ArrayLike,
    c_weak: npt.ArrayLike,
    c_strong: npt.ArrayLike,
    c_verify: npt.ArrayLike = 0.0,
    *,
    x: Axis = "cost",
) -> Curve:
    """Sweep a cascade's threshold over its verifier scores (higher = the cheap answer is more
    likely right): every cheap answer scoring below the threshold escalates.

    Every prompt pays the weak call and the verification (``c_verify``); an escalated one pays
    the strong call on top and gets the strong answer's quality. The sweep runs from "accept
    every cheap answer" to "escalate every one" (which costs more than always calling strong);
    equal scores escalate together. When verifying costs something, the all-weak point (no
    verification, nothing escalated) comes first. ``r_weak``, ``r_strong``, ``c_weak`` and
    ``c_strong`` are those of always calling one model, so PGR, savings and the cost axis mean
    what they mean for a router. On the share axis x is the share of prompts escalated.
    """
    _check_axis(x)
    score = np.asarray(verifier_score, dtype=np.float64)
    if score.ndim != 1 or score.size == 0 or np.any(np.isnan(score)):
        raise ValueError("verifier_score must be a non-empty 1-D array without nan")
    n = score.size
    qw, qs = _vector(q_weak, n, "q_weak"), _vector(q_strong, n, "q_strong")
    cw, cs = _vector(c_weak, n, "c_weak"), _vector(c_strong, n, "c_strong")
    cv = _vector(c_verify, n, "c_verify")
    order = np.argsort(score, kind="stable")  # the lowest scores escalate first
    ordered = score[order]
    cuts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, [n]))
    gained = np.concatenate(([0.0], np.cumsum((qs - qw)[order])))[cuts]
    added = np.concatenate(([0.0], np.cumsum(cs[order])))[cuts]
    r_weak, r_strong = float(qw.mean()), float(qs.mean())
    c_w, c_s = float(cw.sum()), float(cs.sum())
    quality = r_weak + gained / n
    cost = c_w + float(cv.sum()) + added
    shares = cuts / n
    if cv.sum() > 0:
        quality, cost = np.concatenate(([r_weak], quality)), np.concatenate(([c_w], cost))
        shares = np.concatenate(([0.0], shares))
    if x == "share":
        return Curve(shares, quality, cost, r_weak, r_strong, c_w, c_s, "share")
    if not c_s > c_w:
        raise ValueError("the cost axis needs C(strong) > C(weak)")
    return Curve((cost - c_w) / (c_s - c_w), quality, cost, r_weak, r_strong, c_w, c_s, "cost")


def zero_router_curve(
    q_weak: npt.ArrayLike,
    q_strong: npt.ArrayLike,
    c_weak: npt.ArrayLike,
    c_strong: npt.ArrayLike,
    *,
    x: Axis = "share",
) -> Curve:
    """The zero router of two tiers: random mixing of weak and strong, a straight line."""
    n = np.asarray(q_weak).size
    return two_tier_curve(np.zeros(n), q_weak, q_strong, c_weak, c_strong, x=x)


def curve_from_choices(
    choices: npt.ArrayLike,
    quality: npt.ArrayLike,
    cost: npt.ArrayLike,
    *,
    x: Axis = "cost",
) -> Curve:
    """Curve of a k-tier router swept over a knob.

    ``choices`` has shape (n_settings, n_prompts): the model (column of ``quality`` and
    ``cost``, ordered cheap -> strong) picked for each prompt at each setting. The all-weak
    (column 0) and all-strong (last column) endpoints are always added, and the points are
    sorted by x. ``x="cost"`` (default) is the share of the extra cost; ``x="share"`` (share of
    calls to the last model) is only allowed for two models.
    """
    _check_axis(x)
    q, c = _matrices(quality, cost)
    n, k = q.shape
    picks = np.asarray(choices)
    if picks.ndim == 1:
        picks = picks[None, :]
    if picks.ndim != 2 or picks.shape[1] != n:
        raise ValueError(f"choices must have shape (n_settings, {n})")
    if not np.issubdtype(picks.dtype, np.integer):
        raise TypeError("choices must be integer model indices")
    if picks.size and (picks.min() < 0 or picks.max() >= k):
        raise ValueError(f"choices must index the {k} model columns")
    if x == "share" and k != 2:
        raise ValueError("x='share' needs exactly two models; use x='cost'")
    ends_rows = np.array([np.zeros(n, np.intp), np.full(n, k - 1, np.intp)])
    rows = np.concatenate([ends_rows[:1], picks.astype(np.intp), ends_rows[1:]])
    prompt = np.arange(n)[None, :]
    r = q[prompt, rows].mean(axis=1)
    total = c[prompt, rows].sum(axis=1)
    r_weak, r_strong, c_weak, c_strong = (
        float(r[0]),
        float(r[-1]),
        float(total[0]),
        float(total[-1]),
    )
    if x == "share":
        xs = (rows == k - 1).mean(axis=1)
    else:
        if not c_strong > c_weak:
            raise ValueError("the cost axis needs C(strong) > C(weak)")
        xs = (total - c_weak) / (c_strong - c_weak)
        xs[0], xs[-1] = 0.0, 1.0
    order = np.argsort(xs, kind="stable")
    return Curve(xs[order], r[order], total[order], r_weak, r_strong, c_weak, c_strong, x)


def share_per_model(choices_row: npt.ArrayLike, n_models: int) -> FloatArray:
    """Share of the prompts sent to each of the ``n_models`` models by one setting."""
    row = np.asarray(choices_row)
    if row.ndim != 1 or row.size == 0 or not np.issubdtype(row.dtype, np.integer):
        raise ValueError("choices_row must be a non-empty 1-D integer array")
    if row.min() < 0 or row.max() >= n_models:
        raise ValueError(f"choices_row must index the {n_models} models")
    return np.bincount(row, minlength=n_models) / row.size


def model_points(quality: npt.ArrayLike, cost: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(total cost, mean quality) of each fixed model: the zero router's points, for ``aiq``."""
    q, c = _matrices(quality, cost)
    return c.sum(axis=0), q.mean(axis=0)


# ----------------------------------------------------------------------------- oracle


def oracle_choice(quality: npt.ArrayLike, cost: npt.ArrayLike) -> IntArray:
    """Per prompt, the cheapest model with the highest quality (lowest column on a tie)."""
    q, c = _matrices(quality, cost)
    best = q == q.max(axis=1, keepdims=True)
    return np.asarray(np.argmin(np.where(best, c, np.inf), axis=1), dtype=np.intp)


def _ratio(gain: FloatArray, extra: FloatArray) -> FloatArray:
    """Quality gained per extra dollar; a step that costs nothing ranks first if it gains (or
    breaks even) and last if it loses."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_dollar = gain / extra
    return np.where(extra > 0, per_dollar, np.where(gain >= 0, np.inf, -np.inf))


def _best_move(
    q: FloatArray, c: FloatArray, ratio: FloatArray, allowed: npt.NDArray[np.bool_]
) -> tuple[FloatArray, IntArray]:
    """Per row, the allowed column with the highest ratio; ties go to higher quality, then lower
    cost, then the lower column. Rows without an allowed column get ratio -inf."""
    ratio = np.where(allowed, ratio, -np.inf)
    best = ratio.max(axis=1)
    tie = allowed & (ratio == best[:, None])
    q_tie = np.where(tie, q, -np.inf)
    tie &= q_tie == q_tie.max(axis=1, keepdims=True)
    return best, np.argmin(np.where(tie, c, np.inf), axis=1)


def _oracle_steps(q: FloatArray, c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Ordered (gain, extra cost) steps of the oracle's sweep from all-weak to all-strong.

    Per prompt the path is greedy: first (stage _UPGRADE) repeatedly move to the model with
    the highest quality gain per extra dollar among the better ones, which ends on the cheapest
    model with the highest quality; then (stage _TAIL) on towards the strong model, through the
    models costing at most the strong one, losing the least quality per extra dollar. Each
    stage traces the prompt's upper convex hull, so its ratios do not increase along the path,
    and merging all prompts' steps by ratio is the same as greedily taking, each time, the
    prompt/model pair with the best ratio. Any prompt not yet on the strong model then jumps
    there (stage _JUMP: only when the strong model is no costlier on that prompt).
    """
    n, k = q.shape
    rows = np.arange(n)
    cur = np.zeros(n, dtype=np.intp)
    last_cost = c[:, -1]
    gains: list[FloatArray] = []
    extras: list[FloatArray] = []
    keys: list[FloatArray] = []
    stages: list[IntArray] = []
    steps: list[IntArray] = []  # a global step counter: the order of each prompt's own steps
    step = 0
    for stage in (_UPGRADE, _TAIL):
        for _ in range(k):
            q_cur, c_cur = q[rows, cur], c[rows, cur]
            gain = q - q_cur[:, None]
            extra = c - c_cur[:, None]
            # Upgrades: any better model. Tail: a costlier model, but no costlier than strong.
            allowed = gain > 0 if stage == _UPGRADE else (extra > 0) & (c <= last_cost[:, None])
            best, nxt = _best_move(q, c, _ratio(gain, extra), allowed)
            active = np.flatnonzero(best > -np.inf)
            if active.size == 0:
                break
            target = nxt[active]
            gains.append(gain[active, target])
            extras.append(extra[active, target])
            keys.append(best[active])
            stages.append(np.full(active.size, stage, np.intp))
            steps.append(np.full(active.size, step, np.intp))
            cur[active] = target
            step += 1
    left = np.flatnonzero(cur != k - 1)
    if left.size:
        g = q[left, k - 1] - q[left, cur[left]]
        e = c[left, k - 1] - c[left, cur[left]]
        gains.append(g)
        extras.append(e)
        keys.append(_ratio(g, e))
        stages.append(np.full(left.size, _JUMP, np.intp))
        steps.append(np.full(left.size, step, np.intp))
    if not gains:
        return np.zeros(0), np.zeros(0)
    order = np.lexsort((np.concatenate(steps), -np.concatenate(keys), np.concatenate(stages)))
    return np.concatenate(gains)[order], np.concatenate(extras)[order]


def oracle_curve(
    quality: npt.ArrayLike,
    cost: npt.ArrayLike,
    *,
    x: Axis | None = None,
) -> Curve:
    """The oracle's sweep: it knows every s(q, m) and upgrades prompts best-first.

    ``quality`` and ``cost`` have shape (n_prompts, n_models), columns ordered cheap -> strong.
    On the cost axis (default for three or more models) the oracle repeatedly upgrades the
    prompt/model pair with the highest quality gain per extra dollar; the sweep passes through
    the point where every prompt sits on the cheapest model with the highest quality
    (:func:`oracle_choice`) and then goes on to the all-strong point, losing the least quality
    per extra dollar first. On the share axis (default for two models, and only there) it sends
    prompts to strong in order of quality gain, ties by gain per extra dollar: on that axis
    every prompt costs the same step, so the gain alone is what is optimal.

    With per-prompt costs rising from column to column, no router's sweep (at the same x) is
    above this curve.
    """
    q, c = _matrices(quality, cost)
    n, k = q.shape
    axis: Axis = ("share" if k == 2 else "cost") if x is None else x
    _check_axis(axis)
    ends = (
        float(q[:, 0].mean()),
        float(q[:, -1].mean()),
        float(c[:, 0].sum()),
        float(c[:, -1].sum()),
    )
    if axis == "share":
        if k != 2:
            raise ValueError("x='share' needs exactly two models; use x='cost'")
        gain, extra = q[:, 1] - q[:, 0], c[:, 1] - c[:, 0]
        order = np.lexsort((-_ratio(gain, extra), -gain))
        return _sweep(gain[order], extra[order], np.arange(n + 1), ends=ends, n=n, x="share")
    gain, extra = _oracle_steps(q, c)
    return _sweep(gain, extra, np.arange(gain.size + 1), ends=ends, n=n, x="cost")


def zero_router_curve_multi(quality: npt.ArrayLike, cost: npt.ArrayLike) -> Curve:
    """The zero router of k tiers on the cost axis: the best random mixing of the fixed models.

    Its points are the models' (total cost, mean quality) on the upper convex hull from the
    weak model up to the best one and on to the strong one (models costing more than the strong
    one are left out), i.e. the oracle curve of a single "prompt" whose options are the models.
    """
    totals, means = model_points(quality, cost)
    gain, extra = _oracle_steps(means[None, :], totals[None, :])
    ends = (float(means[0]), float(means[-1]), float(totals[0]), float(totals[-1]))
    # A single "prompt" whose quality is already a mean, hence n=1.
    return _sweep(gain, extra, np.arange(gain.size + 1), ends=ends, n=1, x="cost")
