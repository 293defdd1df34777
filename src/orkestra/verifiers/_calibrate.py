"""A verifier's threshold from scores of cheap answers: for a target escalation rate (premium
share) or a target quality. Pure; no I/O.

An answer passes when ``score >= threshold``, so the answers that escalate at threshold t are
those scoring below t. Equal scores pass or fail together: when a target falls inside a group of
equal scores, the threshold that comes closest (premium share) or the first that reaches it
(quality) is taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from orkestra.errors import ConfigurationError

__all__ = ["calibrate_threshold", "escalation_share", "threshold_candidates"]

F64 = npt.NDArray[np.float64]


def _scores(values: Sequence[float] | F64) -> F64:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ConfigurationError("calibration needs at least one score")
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise ConfigurationError("scores must be in [0, 1]")
    return scores


def threshold_candidates(scores: F64) -> F64:
    """Every threshold that gives a different outcome, ascending: 0 (nothing escalates), then
    midway between each pair of neighbouring distinct scores (everything below escalates), and
    midway between the highest score and 1 (everything escalates) unless that score is 1.
    Midpoints rather than the scores themselves, so that a new answer scoring a hair below a
    calibration score is judged like it."""
    distinct = np.unique(scores)
    middles = (distinct[:-1] + distinct[1:]) / 2.0
    top = [] if distinct[-1] >= 1.0 else [(distinct[-1] + 1.0) / 2.0]
    return np.concatenate(([0.0], middles, top))


def escalation_share(scores: Sequence[float] | F64, threshold: float) -> float:
    """The share of answers that fail (escalate) at ``threshold``."""
    return float(np.mean(_scores(scores) < threshold))


def calibrate_threshold(
    scores: Sequence[float] | F64,
    *,
    premium_share: float | None = None,
    quality: float | None = None,
    correct: Sequence[float] | F64 | None = None,
    premium_correct: Sequence[float] | F64 | None = None,
) -> float:
    """The threshold for a target: exactly one of ``premium_share`` or ``quality``.

    ``premium_share``: the share of answers that should escalate; the threshold whose realised
    share is closest (the lower one on a tie). ``quality``: the lowest threshold (fewest
    escalations) at which the mean of ``correct`` (cheap answers kept) and ``premium_correct``
    (escalated; default 1.0 each) reaches ``quality`` × the mean of ``premium_correct``; when
    no threshold does, the one that escalates everything.
    """
    s = _scores(scores)
    if (premium_share is None) == (quality is None):
        raise ConfigurationError("calibrate to one target: premium_share=... or quality=...")
    candidates = threshold_candidates(s)
    if premium_share is not None:
        if not (isinstance(premium_share, (int, float)) and 0 <= premium_share <= 1):
            raise ConfigurationError(f"premium_share must be in [0, 1], not {premium_share!r}")
        shares = np.array([np.mean(s < t) for t in candidates])
        best = int(np.argmin(np.abs(shares - premium_share) + 1e-12 * shares))
        return float(candidates[best])
    assert quality is not None
    if not (isinstance(quality, (int, float)) and math.isfinite(quality) and quality > 0):
        raise ConfigurationError(f"quality must be a number > 0, not {quality!r}")
    if correct is None:
        raise ConfigurationError("a quality target needs correct=[...] (each answer's quality)")
    kept = _labels(correct, s.size, "correct")
    escalated = (
        np.ones(s.size) if premium_correct is None else _labels(premium_correct, s.size, "p")
    )
    target = quality * float(escalated.mean())
    for t in candidates:
        reached = float(np.where(s < t, escalated, kept).mean())
        if reached >= target - 1e-12:
            return float(t)
    return float(candidates[-1])


def _labels(values: Sequence[float] | F64, n: int, name: str) -> F64:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ConfigurationError(f"{name} needs one value per score ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ConfigurationError(f"{name} values must be in [0, 1]")
    return arr
