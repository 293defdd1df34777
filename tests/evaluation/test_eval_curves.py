"""Sweep curves: two-tier thresholds, k-tier choices, zero router and oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orkestra.evaluation import (
    Curve,
    apgr,
    curve_from_choices,
    model_points,
    oracle_choice,
    oracle_curve,
    share_per_model,
    two_tier_curve,
    zero_router_curve,
    zero_router_curve_multi,
)

# The running hand example: 4 prompts, one tie (prompts 1 and 2), flat costs 1 and 10.
SCORE = [0.9, 0.5, 0.5, 0.1]
QW = [0.0, 1.0, 0.0, 0.5]
QS = [1.0, 1.0, 1.0, 0.5]


def random_two_tier(seed: int, n: int, *, binary: bool = False) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    if binary:
        qw = (rng.random(n) < 0.4).astype(float)
        qs = (rng.random(n) < 0.6).astype(float)
    else:
        qw, qs = rng.random(n), rng.random(n)
    cw = rng.uniform(0.1, 1.0, n)
    cs = cw + rng.uniform(0.01, 2.0, n)
    score = rng.integers(0, 4, n).astype(float)  # few values: many ties
    return score, qw, qs, cw, cs


def test_two_tier_hand_example_share_axis() -> None:
    curve = two_tier_curve(SCORE, QW, QS, 1.0, 10.0)
    np.testing.assert_allclose(curve.x, [0, 0.25, 0.75, 1])  # the tie moves as one step
    np.testing.assert_allclose(curve.quality, [0.375, 0.625, 0.875, 0.875])
    np.testing.assert_allclose(curve.cost, [4, 13, 31, 40])
    assert (curve.r_weak, curve.r_strong, curve.c_weak, curve.c_strong) == (0.375, 0.875, 4, 40)
    assert curve.axis == "share"
    assert len(curve) == 4


def test_two_tier_hand_example_cost_axis() -> None:
    cs = [10.0, 4.0, 19.0, 10.0]  # extra costs 9, 3, 18, 9; total 39
    curve = two_tier_curve(SCORE, QW, QS, 1.0, cs, x="cost")
    np.testing.assert_allclose(curve.x, [0, 9 / 39, 30 / 39, 1])
    np.testing.assert_allclose(curve.cost, [4, 13, 34, 43])
    np.testing.assert_allclose(curve.quality, [0.375, 0.625, 0.875, 0.875])
    assert curve.axis == "cost"


def test_cost_axis_sorts_points_when_strong_is_cheaper_on_a_prompt() -> None:
    # Prompt 0 is cheaper on strong (extra cost -1): its point falls left of the all-weak one.
    curve = two_tier_curve([1, 0], [0, 0], [1, 0.5], [2, 1], [1, 5], x="cost")
    np.testing.assert_allclose(curve.x, [-1 / 3, 0, 1])
    np.testing.assert_allclose(curve.quality, [0.5, 0, 0.75])


def test_curve_is_frozen_and_read_only() -> None:
    curve = two_tier_curve(SCORE, QW, QS, 1.0, 10.0)
    with pytest.raises(AttributeError):
        curve.r_weak = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        curve.x[0] = 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": [0.0, 1.0, 0.5], "quality": [0, 1, 1], "cost": [0, 1, 1]}, "ascending"),
        ({"x": [0.0, 1.0], "quality": [0, 1, 1], "cost": [0, 1]}, "same length"),
        ({"x": [0.0], "quality": [0], "cost": [0]}, "two points"),
        ({"x": [0.0, np.nan], "quality": [0, 1], "cost": [0, 1]}, "finite"),
    ],
)
def test_curve_validation(kwargs: dict[str, list[float]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Curve(**kwargs, r_weak=0, r_strong=1, c_weak=0, c_strong=1)  # type: ignore[arg-type]


def test_two_tier_input_validation() -> None:
    with pytest.raises(ValueError, match="nan"):
        two_tier_curve([np.nan, 1], [0, 0], [1, 1], 1, 2)
    with pytest.raises(ValueError, match="shape"):
        two_tier_curve([0, 1], [0, 0, 0], [1, 1], 1, 2)
    with pytest.raises(ValueError, match="C\\(strong\\) > C\\(weak\\)"):
        two_tier_curve([0, 1], [0, 0], [1, 1], 2, 1, x="cost")
    with pytest.raises(ValueError, match="'share' or 'cost'"):
        two_tier_curve([0, 1], [0, 0], [1, 1], 1, 2, x="dollars")  # type: ignore[arg-type]
    # Infinite scores are fine: +inf means "always strong".
    curve = two_tier_curve([np.inf, -np.inf], [0, 0], [1, 1], 1, 2)
    np.testing.assert_allclose(curve.x, [0, 0.5, 1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), axis=st.sampled_from(["share", "cost"]))
def test_constant_score_is_the_zero_router(seed: int, n: int, axis: str) -> None:
    _, qw, qs, cw, cs = random_two_tier(seed, n)
    assume(qs.mean() != qw.mean())
    curve = two_tier_curve(np.full(n, 0.3), qw, qs, cw, cs, x=axis)  # type: ignore[arg-type]
    zero = zero_router_curve(qw, qs, cw, cs, x=axis)  # type: ignore[arg-type]
    for a, b in ((curve.x, zero.x), (curve.quality, zero.quality), (curve.cost, zero.cost)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(zero.x, [0.0, 1.0])
    assert apgr(curve) == 0.5
    assert apgr(zero) == 0.5


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), axis=st.sampled_from(["share", "cost"]))
def test_curve_invariant_to_monotone_transforms_of_the_score(seed: int, n: int, axis: str) -> None:
    score, qw, qs, cw, cs = random_two_tier(seed, n)
    score = score + np.random.default_rng(seed).integers(0, 3, n) * 10  # 12 levels, with ties
    base = two_tier_curve(score, qw, qs, cw, cs, x=axis)  # type: ignore[arg-type]
    rank = np.unique(score, return_inverse=True)[1]
    for transformed in (np.exp(score / 10), 3 * score - 7, score**3, rank):
        other = two_tier_curve(transformed, qw, qs, cw, cs, x=axis)  # type: ignore[arg-type]
        np.testing.assert_allclose(other.x, base.x, atol=1e-12)
        np.testing.assert_allclose(other.quality, base.quality, atol=1e-12)
        assert apgr(other) == pytest.approx(apgr(base), abs=1e-12)
    # A decreasing transform flips the order, hence the curve.
    flipped = two_tier_curve(-score, qw, qs, cw, cs)
    reverse = two_tier_curve(score.max() - score, qw, qs, cw, cs)
    np.testing.assert_allclose(flipped.quality, reverse.quality, atol=1e-12)


# ----------------------------------------------------------------------------- k tiers

# Two prompts, three models (columns cheap -> strong).
Q3 = np.array([[0.0, 0.8, 1.0], [0.5, 0.5, 1.0]])
C3 = np.array([[1.0, 2.0, 5.0], [1.0, 3.0, 4.0]])


def test_curve_from_choices_three_tiers() -> None:
    choices = np.array([[1, 0], [1, 2], [2, 0]])
    curve = curve_from_choices(choices, Q3, C3)
    # Settings: (r, C) = (.65, 3), (.9, 6), (.75, 6), plus all-weak (.25, 2), all-strong (1, 9).
    np.testing.assert_allclose(curve.x, [0, 1 / 7, 4 / 7, 4 / 7, 1])
    np.testing.assert_allclose(curve.quality, [0.25, 0.65, 0.9, 0.75, 1.0])
    np.testing.assert_allclose(curve.cost, [2, 3, 6, 6, 9])
    assert (curve.r_weak, curve.r_strong, curve.c_weak, curve.c_strong) == (0.25, 1.0, 2.0, 9.0)
    assert curve.axis == "cost"
    assert apgr(curve) == pytest.approx(73 / 105)
    one = curve_from_choices(np.array([1, 0]), Q3, C3)  # a single setting as a 1-D row
    np.testing.assert_allclose(one.quality, [0.25, 0.65, 1.0])


def test_curve_from_choices_validation() -> None:
    with pytest.raises(ValueError, match="index"):
        curve_from_choices(np.array([[3, 0]]), Q3, C3)
    with pytest.raises(TypeError, match="integer"):
        curve_from_choices(np.array([[1.0, 0.0]]), Q3, C3)
    with pytest.raises(ValueError, match="shape"):
        curve_from_choices(np.array([[1, 0, 0]]), Q3, C3)
    with pytest.raises(ValueError, match="two models"):
        curve_from_choices(np.array([[1, 0]]), Q3, C3, x="share")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 30))
def test_threshold_choices_match_two_tier_curve(seed: int, n: int) -> None:
    score, qw, qs, cw, cs = random_two_tier(seed, n)
    thresholds = np.unique(score)[::-1]
    choices = (score[None, :] >= thresholds[:, None]).astype(int)
    quality, cost = np.column_stack([qw, qs]), np.column_stack([cw, cs])
    for axis in ("share", "cost"):
        a = curve_from_choices(choices, quality, cost, x=axis)  # type: ignore[arg-type]
        b = two_tier_curve(score, qw, qs, cw, cs, x=axis)  # type: ignore[arg-type]
        # The lowest threshold repeats the all-strong endpoint, which is always added.
        keep = np.r_[True, np.diff(a.x) > 0]
        np.testing.assert_allclose(a.x[keep], b.x, atol=1e-12)
        np.testing.assert_allclose(a.quality[keep], b.quality, atol=1e-12)
        np.testing.assert_allclose(a.cost[keep], b.cost, atol=1e-12)


def test_share_per_model() -> None:
    np.testing.assert_allclose(share_per_model(np.array([0, 2, 2, 1]), 3), [0.25, 0.25, 0.5])
    np.testing.assert_allclose(share_per_model(np.array([0, 0]), 3), [1, 0, 0])
    with pytest.raises(ValueError, match="index"):
        share_per_model(np.array([0, 3]), 3)


def test_zero_router_multi_is_the_hull_of_the_models() -> None:
    totals, means = model_points(Q3, C3)
    np.testing.assert_allclose(totals, [2, 5, 9])
    np.testing.assert_allclose(means, [0.25, 0.65, 1.0])
    zero = zero_router_curve_multi(Q3, C3)
    np.testing.assert_allclose(zero.x, [0, 3 / 7, 1])
    np.testing.assert_allclose(zero.quality, [0.25, 0.65, 1.0])
    # A middle model under the weak-strong line is skipped: mixing weak and strong beats it.
    low = Q3.copy()
    low[:, 1] = 0.0
    zero = zero_router_curve_multi(low, C3)
    np.testing.assert_allclose(zero.x, [0, 1])
    # Two tiers: the straight line.
    two = zero_router_curve_multi(np.column_stack([QW, QS]), np.column_stack([[1] * 4, [10] * 4]))
    np.testing.assert_allclose(two.quality, [0.375, 0.875])


# ----------------------------------------------------------------------------- oracle


def test_oracle_two_tier_hand_example() -> None:
    # Gains 1, .5, 0, -1; extra costs 10, 1, 1, 1: per dollar .1, .5, 0, -1.
    quality = np.array([[0, 1], [0, 0.5], [0.5, 0.5], [1, 0]])
    cost = np.array([[1, 11], [1, 2], [1, 2], [1, 2]], dtype=float)
    share = oracle_curve(quality, cost)
    assert share.axis == "share"
    np.testing.assert_allclose(share.x, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(share.quality, [0.375, 0.625, 0.75, 0.75, 0.5])  # by gain
    by_cost = oracle_curve(quality, cost, x="cost")
    np.testing.assert_allclose(by_cost.cost, [4, 5, 15, 16, 17])  # by gain per dollar
    np.testing.assert_allclose(by_cost.quality, [0.375, 0.5, 0.75, 0.75, 0.5])
    np.testing.assert_allclose(by_cost.x, [0, 1 / 13, 11 / 13, 12 / 13, 1])
    np.testing.assert_array_equal(oracle_choice(quality, cost), [1, 1, 0, 0])


def test_oracle_three_tier_hand_example() -> None:
    # Prompt 0: weak -> middle (.8 per $), then -> strong (.2/3 per $); prompt 1: weak ->
    # strong (.5/3 per $; the middle model gains nothing).
    oracle = oracle_curve(Q3, C3)
    assert oracle.axis == "cost"
    np.testing.assert_allclose(oracle.cost, [2, 3, 6, 9])
    np.testing.assert_allclose(oracle.quality, [0.25, 0.65, 0.9, 1.0])
    assert apgr(oracle) == pytest.approx(31 / 42)
    with pytest.raises(ValueError, match="two models"):
        oracle_curve(Q3, C3, x="share")


def test_oracle_tail_passes_through_cheaper_losses() -> None:
    # The weak model is best; on the way to strong, the middle model loses nothing.
    oracle = oracle_curve(np.array([[1.0, 1.0, 0.0]]), np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(oracle.cost, [1, 2, 3])
    np.testing.assert_allclose(oracle.quality, [1, 1, 0])


def test_perfect_router_on_binary_data_equals_the_oracle() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    qw = (rng.random(n) < 0.7).astype(float)
    qs = np.maximum(qw, rng.random(n) < 0.8)  # strong is never worse
    gain_share = float(np.mean(qs - qw))
    cost = np.column_stack([np.full(n, 1.0), np.full(n, 10.0)])
    perfect = two_tier_curve(qs - qw, qw, qs, cost[:, 0], cost[:, 1])
    oracle = oracle_curve(np.column_stack([qw, qs]), cost)
    # PGR climbs linearly to 1 over the prompts that gain, then stays there.
    assert apgr(perfect) == pytest.approx(1 - gain_share / 2, abs=1e-12)
    assert apgr(perfect) == pytest.approx(apgr(oracle), abs=1e-12)
    assert apgr(perfect) > 0.85  # "close to 1": 1 - 0.24/2


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 30), equal_costs=st.booleans())
def test_perfect_router_equals_oracle_on_binary_data(seed: int, n: int, equal_costs: bool) -> None:
    _, qw, qs, cw, cs = random_two_tier(seed, n, binary=True)
    assume(qs.mean() != qw.mean())
    if equal_costs:  # then the cost axis orders prompts the same way
        cw, cs = np.ones(n), np.full(n, 3.0)
    quality, cost = np.column_stack([qw, qs]), np.column_stack([cw, cs])
    perfect = two_tier_curve(qs - qw, qw, qs, cw, cs)
    assert apgr(perfect) == pytest.approx(apgr(oracle_curve(quality, cost)), abs=1e-12)
    if equal_costs:
        by_cost = two_tier_curve(qs - qw, qw, qs, cw, cs, x="cost")
        oracle = oracle_curve(quality, cost, x="cost")
        assert apgr(by_cost) == pytest.approx(apgr(oracle), abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 30))
def test_oracle_dominates_any_two_tier_router(seed: int, n: int) -> None:
    score, qw, qs, cw, cs = random_two_tier(seed, n)
    quality, cost = np.column_stack([qw, qs]), np.column_stack([cw, cs])
    for axis in ("share", "cost"):
        router = two_tier_curve(score, qw, qs, cw, cs, x=axis)  # type: ignore[arg-type]
        oracle = oracle_curve(quality, cost, x=axis)  # type: ignore[arg-type]
        at_router_x = np.interp(router.x, oracle.x, oracle.quality)
        assert np.all(at_router_x >= router.quality - 1e-9)
        if qs.mean() > qw.mean():  # with a negative gap, PGR runs the other way
            assert apgr(oracle) >= apgr(router) - 1e-9


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), k=st.integers(2, 5))
def test_oracle_dominates_any_k_tier_router(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    quality = rng.random((n, k)).round(1)  # rounding makes ties between models
    cost = np.cumsum(rng.uniform(0.05, 1.0, (n, k)), axis=1)  # rises from column to column
    choices = rng.integers(0, k, (6, n))
    router = curve_from_choices(choices, quality, cost)
    oracle = oracle_curve(quality, cost, x="cost")
    assert np.all(np.diff(oracle.x) >= 0)
    assert oracle.x[0] == 0 and oracle.x[-1] == 1
    at_router_x = np.interp(router.x, oracle.x, oracle.quality)
    assert np.all(at_router_x >= router.quality - 1e-9)
    # The sweep passes through "the cheapest model with the best quality" for every prompt.
    best = oracle_choice(quality, cost)
    rows = np.arange(n)
    assert quality[rows, best].max() == quality.max(axis=1).max()
    assert np.all(quality[rows, best] == quality.max(axis=1))
    end_cost, end_quality = cost[rows, best].sum(), quality[rows, best].mean()
    hit = np.isclose(oracle.cost, end_cost, atol=1e-9) & np.isclose(
        oracle.quality, end_quality, atol=1e-9
    )
    assert hit.any()
    assert end_quality == pytest.approx(oracle.quality.max(), abs=1e-9)


def test_oracle_handles_free_upgrades() -> None:
    # On prompt 0 the strong model is better and cheaper: upgrading it comes first, for free.
    quality = np.array([[0.0, 1.0], [0.0, 1.0]])
    cost = np.array([[2.0, 1.0], [1.0, 5.0]])
    oracle = oracle_curve(quality, cost, x="cost")
    # Sorted by cost, the free upgrade's point lies left of the all-weak point (x < 0).
    np.testing.assert_allclose(oracle.x, [-1 / 3, 0, 1])
    np.testing.assert_allclose(oracle.cost, [2, 3, 6])
    np.testing.assert_allclose(oracle.quality, [0.5, 0.0, 1.0])
