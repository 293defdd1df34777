"""Bootstrap confidence intervals over prompts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orkestra.evaluation import (
    BootstrapCI,
    apgr,
    bootstrap_ci,
    bootstrap_samples,
    percentile_ci,
    summarize,
    summary_ci,
    two_tier_curve,
)


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Binary qualities where the router score is informative but noisy."""
    rng = np.random.default_rng(seed)
    qw = (rng.random(n) < 0.5).astype(float)
    qs = np.maximum(qw, rng.random(n) < 0.7)
    score = (qs - qw) + rng.normal(0, 1, n)
    cw = rng.uniform(1.0, 2.0, n)
    return score, qw, qs, cw, cw * 10


def apgr_statistic(data: tuple[np.ndarray, ...]):  # type: ignore[no-untyped-def]
    score, qw, qs, cw, cs = data

    def statistic(idx: np.ndarray) -> float:
        return apgr(two_tier_curve(score[idx], qw[idx], qs[idx], cw[idx], cs[idx]))

    return statistic


def test_ci_contains_the_point_estimate() -> None:
    data = synthetic(2000)
    point = apgr(two_tier_curve(*data))
    ci = bootstrap_ci(apgr_statistic(data), 2000, n_boot=300)
    assert isinstance(ci, tuple)
    assert len(ci) == 2
    low, high = ci
    assert low < point < high
    assert (ci.low, ci.high) == (low, high)
    assert ci.n_nan == 0
    assert ci.n_boot == 300
    assert low > 0.5


def test_ci_narrows_with_more_prompts() -> None:
    widths = []
    for n in (200, 5000):
        ci = bootstrap_ci(apgr_statistic(synthetic(n)), n, n_boot=200)
        widths.append(ci.high - ci.low)
    assert widths[1] < widths[0] / 3  # ~ 1/sqrt(25) = 1/5


def test_ci_of_a_mean_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 2.0, 400)
    ci = bootstrap_ci(lambda idx: float(values[idx].mean()), values.size, n_boot=2000)
    half = 1.96 * values.std() / math.sqrt(values.size)
    assert ci.low == pytest.approx(values.mean() - half, abs=0.05)
    assert ci.high == pytest.approx(values.mean() + half, abs=0.05)


def test_seed_makes_it_reproducible() -> None:
    values = np.random.default_rng(2).random(100)

    def stat(idx: np.ndarray) -> float:
        return float(values[idx].mean())

    assert bootstrap_ci(stat, 100, n_boot=50, seed=4) == bootstrap_ci(stat, 100, n_boot=50, seed=4)
    assert bootstrap_ci(stat, 100, n_boot=50, seed=4) != bootstrap_ci(stat, 100, n_boot=50, seed=5)


def test_nan_draws_are_left_out_and_counted() -> None:
    ci = bootstrap_ci(lambda idx: float("nan") if idx[0] % 2 else float(idx[0]), 10, n_boot=400)
    assert 100 < ci.n_nan < 300
    assert not math.isnan(ci.low)
    assert 0 <= ci.low <= ci.high <= 8
    all_nan = bootstrap_ci(lambda idx: float("nan"), 10, n_boot=20)
    assert math.isnan(all_nan.low)
    assert math.isnan(all_nan.high)
    assert all_nan.n_nan == 20
    assert "n_nan=20" in repr(all_nan)


def test_vector_statistic_shares_resamples() -> None:
    values = np.arange(10.0)
    samples = bootstrap_samples(lambda idx: [values[idx].mean(), values[idx].max()], 10, n_boot=30)
    assert samples.shape == (30, 2)
    assert np.all(samples[:, 0] <= samples[:, 1])
    with pytest.raises(ValueError, match="single float"):
        bootstrap_ci(lambda idx: values[idx][:2], 10, n_boot=5)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="at least 1"):
        bootstrap_samples(lambda idx: 0.0, 0)


def test_percentile_ci_direct() -> None:
    ci = percentile_ci(np.arange(101.0), alpha=0.1)
    assert ci == BootstrapCI(5.0, 95.0)
    assert ci.n_boot == 101
    with pytest.raises(ValueError, match="alpha"):
        percentile_ci([1.0, 2.0], alpha=1.5)


def test_summary_ci_covers_every_figure() -> None:
    data = synthetic(1500, seed=3)
    point = summarize(two_tier_curve(*data))
    score, qw, qs, cw, cs = data
    cis = summary_ci(
        lambda idx: two_tier_curve(score[idx], qw[idx], qs[idx], cw[idx], cs[idx]),
        score.size,
        n_boot=200,
    )
    assert set(cis) == {"apgr", "cpt50", "cpt80", "savings95", "savings99", "aiq"}
    for name, ci in cis.items():
        assert ci.low <= getattr(point, name) <= ci.high, name
        assert ci.n_nan == 0
