"""Evaluation of routers: sweep curves, APGR/CPT/savings/AIQ and bootstrap intervals.

Pure math on numpy arrays; no I/O. See :mod:`orkestra.evaluation.curves` for the notation and
:mod:`orkestra.evaluation.metrics` for the definitions.
"""

from orkestra.evaluation.curves import (
    Axis,
    Curve,
    cascade_curve,
    curve_from_choices,
    model_points,
    oracle_choice,
    oracle_curve,
    share_per_model,
    two_tier_curve,
    zero_router_curve,
    zero_router_curve_multi,
)
from orkestra.evaluation.metrics import (
    BootstrapCI,
    Summary,
    aiq,
    apgr,
    bootstrap_ci,
    bootstrap_samples,
    cpt,
    percentile_ci,
    pgr,
    quality_ratio_at,
    roc_auc,
    savings_at,
    summarize,
    summary_ci,
)

__all__ = [
    "Axis",
    "BootstrapCI",
    "Curve",
    "Summary",
    "aiq",
    "apgr",
    "bootstrap_ci",
    "bootstrap_samples",
    "cascade_curve",
    "cpt",
    "curve_from_choices",
    "model_points",
    "oracle_choice",
    "oracle_curve",
    "percentile_ci",
    "pgr",
    "quality_ratio_at",
    "roc_auc",
    "savings_at",
    "share_per_model",
    "summarize",
    "summary_ci",
    "two_tier_curve",
    "zero_router_curve",
    "zero_router_curve_multi",
]
