"""The cost–quality picture of an evaluation (needs matplotlib: ``orkestra-router[plot]``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orkestra.evaluation.runner import EvalResult

if TYPE_CHECKING:
    from orkestra.evaluation.cascade import CascadeResult

__all__ = ["plot_cascade", "plot_result", "require_matplotlib"]


def require_matplotlib() -> Any:
    """``matplotlib.pyplot``, drawing to files; an ImportError naming the extra to install
    when matplotlib is missing (``orkestra eval --plot`` checks this before evaluating)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'orkestra-router[plot]'") from e
    return plt


def plot_result(result: EvalResult, path: Path | str, *, title: str = "") -> Path:
    """Quality against cost fraction (C / C(strong)) for the router, the zero router, the
    oracle and the single models, with the default knob marked; written as a PNG."""
    plt = require_matplotlib()
    curve, zero, oracle = result.curve, result.zero, result.oracle
    c_strong = curve.c_strong

    def frac(costs: Iterable[float]) -> list[float]:
        return [float(c) / c_strong for c in costs]

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    ax.plot(frac(oracle.cost), oracle.quality, color="#999999", ls=":", label="oracle")
    ax.plot(
        frac(zero.cost),
        zero.quality,
        color="#c44",
        ls="--",
        label="zero router (random mix of the models)",
    )
    ax.plot(frac(curve.cost), curve.quality, color="#1f5fbf", lw=2, label="orkestra KNN router")
    points = result.model_points or (
        (curve.c_weak, curve.r_weak),
        (curve.c_strong, curve.r_strong),
    )
    for i, (name, (cost, quality)) in enumerate(zip(result.models, points, strict=False)):
        last = i == len(result.models) - 1
        ax.scatter([cost / c_strong], [quality], color="black", zorder=5)
        ax.annotate(
            name,
            (cost / c_strong, quality),
            textcoords="offset points",
            xytext=(-6, 8) if last else (6, 6),
            ha="right" if last else "left",
            fontsize=8,
        )
    # The default knob, on the real-cost axis.
    x, quality = result.default_point
    default_cost = curve.c_weak + x * (curve.c_strong - curve.c_weak)
    ax.scatter(
        [default_cost / c_strong],
        [quality],
        marker="*",
        s=180,
        color="#f0a000",
        zorder=6,
        label=f"default knob ({result.figures['premium_share_default']:.0%} premium)",
    )
    ax.axhline(0.95 * curve.r_strong, color="#bbbbbb", lw=0.8)
    ax.text(0.01, 0.95 * curve.r_strong, " 95% of strong", va="bottom", fontsize=8, color="#777")
    ax.set_xlabel("cost, as a fraction of always using the strong model")
    ax.set_ylabel("mean quality")
    f = result.figures
    headline = (
        f"APGR {f['apgr']:.3f}"
        if len(result.models) == 2
        else f"AIQ {f['aiq']:.3f} (zero router {f['aiq_zero']:.3f})"
    )
    ax.set_title(
        title or f"{headline} · savings@95% {f['savings_at_95']:.0%} · n={result.n}", fontsize=10
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_cascade(result: CascadeResult, path: Path | str, *, title: str = "") -> Path:
    """Quality against cost (C / C(strong)) for the cascade, routing alone and random mixing,
    with the cascade's threshold calibrated on train rows marked; written as a PNG."""
    plt = require_matplotlib()
    cascade = result.cost["cascade"]
    c_strong = cascade.curve.c_strong
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    styles = {
        "random": ("#c44", "--", "random mixing (zero router)"),
        "routing": ("#1f5fbf", "-", "routing alone (KNN router)"),
        "cascade": ("#2a9d4b", "-", f"cascade ({result.verifier.split('(')[0]})"),
    }
    for name in ("random", "routing", "cascade"):
        m = result.cost[name]
        color, style, label = styles[name]
        f, lo_hi = m.figures, m.intervals["apgr"]
        ax.plot(
            [c / c_strong for c in m.curve.cost],
            m.curve.quality,
            color=color,
            ls=style,
            lw=2 if name != "random" else 1.2,
            label=f"{label}: APGR {f['apgr']:.2f} [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}], "
            f"savings@95 {f['savings95']:.0%}",
        )
    curve = cascade.curve
    for name, cost, quality, offset in (
        (result.models[0], curve.c_weak, curve.r_weak, (8, -3)),
        (result.models[1], curve.c_strong, curve.r_strong, (-6, -14)),
    ):
        ax.scatter([cost / c_strong], [quality], color="black", zorder=5)
        ax.annotate(
            name.split("/")[-1],
            (cost / c_strong, quality),
            textcoords="offset points",
            xytext=offset,
            ha="left" if offset[0] > 0 else "right",
            fontsize=8,
        )
    calibration = result.calibration
    if calibration:
        ax.scatter(
            [1 - calibration["test_savings"]],
            [calibration["test_quality_ratio"] * curve.r_strong],
            marker="*",
            s=180,
            color="#f0a000",
            zorder=6,
            label=f"cascade threshold set on train rows "
            f"({calibration['test_escalation_share']:.0%} escalated)",
        )
    ax.axhline(0.95 * curve.r_strong, color="#bbbbbb", lw=0.8)
    ax.text(0.01, 0.95 * curve.r_strong, " 95% of strong", va="bottom", fontsize=8, color="#777")
    ax.set_xlabel("cost, as a fraction of always using the strong model (both calls counted)")
    ax.set_ylabel("mean quality")
    ax.set_title(title or f"cascade vs routing vs random · n={result.n} test prompts", fontsize=10)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.06), fontsize=7.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
