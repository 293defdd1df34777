"""PGR, APGR, CPT, quality ratio, savings and AIQ on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orkestra.evaluation import (
    Curve,
    Summary,
    aiq,
    apgr,
    cpt,
    model_points,
    oracle_curve,
    pgr,
    quality_ratio_at,
    savings_at,
    summarize,
    two_tier_curve,
    zero_router_curve,
    zero_router_curve_multi,
)

# Hand example (see test_eval_curves): x = [0, .25, .75, 1], r = [.375, .625, .875, .875],
# C = [4, 13, 31, 40]; r(weak) = .375, r(strong) = .875, so PGR = [0, .5, 1, 1].
SCORE = [0.9, 0.5, 0.5, 0.1]
QW = [0.0, 1.0, 0.0, 0.5]
QS = [1.0, 1.0, 1.0, 0.5]


@pytest.fixture
def curve() -> Curve:
    return two_tier_curve(SCORE, QW, QS, 1.0, 10.0)


def make_curve(x: list[float], quality: list[float], cost: list[float] | None = None) -> Curve:
    cost = cost if cost is not None else [float(v) for v in x]
    return Curve(x, quality, cost, r_weak=0.0, r_strong=1.0, c_weak=cost[0], c_strong=cost[-1])


def test_pgr_and_apgr(curve: Curve) -> None:
    np.testing.assert_allclose(pgr(curve), [0, 0.5, 1, 1])
    # .25 * (0 + .5)/2 + .5 * (.5 + 1)/2 + .25 * 1
    assert apgr(curve) == pytest.approx(0.6875)


def test_pgr_undefined_without_a_gap() -> None:
    flat = two_tier_curve([1, 0], [0.5, 0.5], [0.5, 0.5], 1, 2)
    assert np.all(np.isnan(pgr(flat)))
    assert math.isnan(apgr(flat))
    assert math.isnan(cpt(flat, 50))


def test_cpt_with_exact_crossing(curve: Curve) -> None:
    assert cpt(curve, 50) == pytest.approx(0.25)  # reached at a point
    assert cpt(curve, 80) == pytest.approx(0.25 + 0.3 / 0.5 * 0.5)  # = .55, on a segment
    assert cpt(curve, 100) == pytest.approx(0.75)
    assert cpt(curve, 0) == 0.0
    assert math.isnan(cpt(curve, 101))
    with pytest.raises(ValueError, match="percent"):
        cpt(curve, 0.8)


def test_cpt_of_the_zero_router_is_the_target() -> None:
    zero = zero_router_curve(QW, QS, 1.0, 10.0)
    assert cpt(zero, 50) == pytest.approx(0.5)
    assert cpt(zero, 80) == pytest.approx(0.8)


def test_quality_ratio(curve: Curve) -> None:
    assert quality_ratio_at(curve, 0.5) == pytest.approx(0.75 / 0.875)
    assert quality_ratio_at(curve, 0.0) == pytest.approx(0.375 / 0.875)
    assert quality_ratio_at(curve, 1.0) == 1.0
    assert math.isnan(quality_ratio_at(curve, 1.5))


def test_savings_with_interpolation(curve: Curve) -> None:
    # Target .95 * .875 = .83125 is crossed on the segment (13, .625) -> (31, .875) at
    # t = .825: cost 13 + .825 * 18 = 27.85.
    assert savings_at(curve, 0.95) == pytest.approx(1 - 27.85 / 40)
    # Target .86625: t = .965, cost 30.37.
    assert savings_at(curve, 0.99) == pytest.approx(1 - 30.37 / 40)
    # Target .875 is first reached at the third point, cost 31.
    assert savings_at(curve, 1.0) == pytest.approx(1 - 31 / 40)
    assert math.isnan(savings_at(curve, 1.01))


def test_savings_edge_cases() -> None:
    zero = zero_router_curve(QW, QS, 1.0, 10.0)
    assert savings_at(zero, 1.0) == 0.0  # only the strong end reaches the target
    # The weak model already has 97.5% of the strong one's quality.
    near = two_tier_curve([3, 2, 1, 0], [1, 1, 1, 0.9], [1, 1, 1, 1], 1.0, 10.0)
    assert savings_at(near, 0.95) == pytest.approx(1 - 4 / 40)
    assert savings_at(near, 1.0) == 0.0  # the prompt that gains is sent last
    smart = two_tier_curve([0, 1, 2, 3], [1, 1, 1, 0.9], [1, 1, 1, 1], 1.0, 10.0)
    assert savings_at(smart, 1.0) == pytest.approx(1 - 13 / 40)  # ... or first


def test_savings_on_a_segment_going_down() -> None:
    # Segment 0 goes from (cost 1, q 1) down to (cost .5, q 0): mixing its ends keeps
    # q >= .5 down to cost .75, cheaper than any point of the curve that reaches .5.
    down = make_curve([0, 0.5, 1], [1.0, 0.0, 1.0], cost=[1.0, 0.5, 2.0])
    assert savings_at(down, 0.5) == pytest.approx(1 - 0.75 / 2)


def test_apgr_clips_to_zero_one() -> None:
    # x from -.5 to 1.5: the area over [0, 1] of the tent (-.5,0) (.5,1) (1.5,0) is .75.
    tent = make_curve([-0.5, 0.5, 1.5], [0.0, 1.0, 0.0])
    assert apgr(tent) == pytest.approx(0.75)


def test_points_sharing_an_x_take_the_best() -> None:
    jump = make_curve([0, 0.5, 0.5, 1], [0.0, 0.2, 0.9, 1.0])
    assert apgr(jump) == pytest.approx(0.5 * 0.1 + 0.5 * 0.95)
    assert quality_ratio_at(jump, 0.5) == pytest.approx(0.9)
    assert cpt(jump, 50) == pytest.approx(0.5)
    assert cpt(jump, 95) == pytest.approx(0.75)


# ----------------------------------------------------------------------------- AIQ


def test_aiq_hand_example() -> None:
    # Hull (0,0) -> (1,.8) -> (4,1); (2,.5) and (3,.2) lie below it.
    costs, quals = [0, 1, 2, 4, 3], [0, 0.8, 0.5, 1.0, 0.2]
    assert aiq(costs, quals) == pytest.approx((0.4 + 2.7) / 4)


def test_aiq_is_flat_after_the_best_point() -> None:
    assert aiq([0, 1, 2], [0, 1, 0.5]) == pytest.approx((0.5 + 1) / 2)
    assert aiq([0, 1, 2], [0, 1, 0.5], cost_range=(0, 4)) == pytest.approx(3.5 / 4)
    assert aiq([0, 1, 2], [0, 1, 0.5], cost_range=(1, 2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="below the cheapest"):
        aiq([0, 1, 2], [0, 1, 0.5], cost_range=(-1, 2))


def test_aiq_degenerate_inputs() -> None:
    assert aiq([3.0], [0.7]) == pytest.approx(0.7)
    assert aiq([3.0, 3.0], [0.2, 0.7]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="same length"):
        aiq([1.0, 2.0], [0.5])


def test_aiq_of_the_zero_router_is_the_mixing_line() -> None:
    zero = zero_router_curve(QW, QS, 1.0, 10.0)
    assert aiq(zero.cost, zero.quality) == pytest.approx((0.375 + 0.875) / 2)
    # Three tiers: models at (2, .25), (5, .65), (9, 1); all on the hull.
    quality = np.array([[0.0, 0.8, 1.0], [0.5, 0.5, 1.0]])
    cost = np.array([[1.0, 2.0, 5.0], [1.0, 3.0, 4.0]])
    expected = (3 * (0.25 + 0.65) / 2 + 4 * (0.65 + 1.0) / 2) / 7
    assert aiq(*model_points(quality, cost)) == pytest.approx(expected)
    multi = zero_router_curve_multi(quality, cost)
    assert aiq(multi.cost, multi.quality) == pytest.approx(expected)


def test_aiq_of_router_lies_between_zero_router_and_oracle() -> None:
    rng = np.random.default_rng(3)
    n = 500
    qw = (rng.random(n) < 0.5).astype(float)
    qs = np.maximum(qw, rng.random(n) < 0.7)
    cw, cs = np.full(n, 1.0), np.full(n, 10.0)
    router = two_tier_curve(qs - qw + rng.normal(0, 0.7, n), qw, qs, cw, cs)
    zero = zero_router_curve(qw, qs, cw, cs)
    oracle = oracle_curve(np.column_stack([qw, qs]), np.column_stack([cw, cs]))
    values = [aiq(c.cost, c.quality) for c in (zero, router, oracle)]
    assert values[0] < values[1] < values[2]


def brute_force_hull(costs: np.ndarray, quals: np.ndarray, at: float) -> float:
    """Best quality reachable by mixing points at a cost <= ``at``."""
    best = quals[costs <= at].max()
    for i in range(costs.size):
        for j in range(costs.size):
            if costs[i] <= at < costs[j]:
                t = (at - costs[i]) / (costs[j] - costs[i])
                best = max(best, quals[i] + t * (quals[j] - quals[i]))
    return float(best)


@settings(max_examples=100, deadline=None)
@given(
    points=st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 10)), min_size=2, max_size=12, unique=True
    )
)
def test_aiq_matches_a_brute_force_hull(points: list[tuple[int, int]]) -> None:
    costs = np.array([p[0] for p in points], dtype=float)
    quals = np.array([p[1] for p in points], dtype=float) / 10
    if costs.max() == costs.min():
        return
    # The hull is linear between consecutive distinct costs, so trapezoids there are exact.
    grid = np.unique(costs)
    values = np.array([brute_force_hull(costs, quals, c) for c in grid])
    area = float(np.sum(np.diff(grid) * (values[1:] + values[:-1])) / 2)
    assert aiq(costs, quals) == pytest.approx(area / (grid[-1] - grid[0]), abs=1e-12)


# ----------------------------------------------------------------------------- summary


def test_summarize(curve: Curve) -> None:
    summary = summarize(curve)
    assert isinstance(summary, Summary)
    assert summary.apgr == pytest.approx(0.6875)
    assert summary.cpt50 == pytest.approx(0.25)
    assert summary.cpt80 == pytest.approx(0.55)
    assert summary.savings95 == pytest.approx(1 - 27.85 / 40)
    assert summary.savings99 == pytest.approx(1 - 30.37 / 40)
    # Hull (4, .375) -> (13, .625) -> (31, .875), flat to 40.
    area = 9 * (0.375 + 0.625) / 2 + 18 * (0.625 + 0.875) / 2 + 9 * 0.875
    assert summary.aiq == pytest.approx(area / 36)
