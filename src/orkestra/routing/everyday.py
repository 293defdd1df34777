"""Everyday prompts: a second, small set of neighbours and the gate that says how much it counts.

The outcome data (``shared/data``) is benchmarks: multiple-choice exams, maths word problems,
MBPP-style coding tasks, graded with models of 2023–24. It teaches which *benchmark* prompts a
weak model fails, and that signal is what the evaluation measures. Ordinary prompts ("What is
2+2?", "Write a haiku about autumn", "Explain quantum computing") have no benchmark neighbour
worth the name: the static embedder matches them on their few words, to commonsense quizzes,
MMLU world religions or MBPP tasks that the old budget model failed, and they went premium.

So an index may also hold *everyday* rows (``data/everyday.jsonl``: ordinary prompts written by
the orkestra developers, each labelled by a three-level rubric, see ``data/README.md``), kept
apart from the outcome rows:

- the **everyday neighbours**: the ``everyday_k`` most similar everyday rows, averaged like the
  outcome neighbours (same weighting);
- the **gate** g(prompt) in (0, 1): a logistic regression fitted when the index is built, on the
  prompt embedding and its log length, to tell everyday rows from outcome rows (classes
  weighted equally), plus ``prior_log_odds`` — how much more common ordinary prompts are than
  benchmark-like ones in real traffic;
- the prediction is ``g · everyday + (1 − g) · outcome``: a prompt that looks like a benchmark
  question keeps the benchmark's verdict; one that does not is judged by similar everyday
  prompts, with the benchmark's verdict still weighing ``1 − g``.

Pure numpy, deterministic (Newton's method from zero, no randomness).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "EVERYDAY_SOURCES",
    "fit_gate",
    "gate_features",
    "gate_logit",
    "gate_probability",
]

F32 = npt.NDArray[np.float32]

EVERYDAY_SOURCES = frozenset({"orkestra_everyday"})
"""Data sets (``source``) whose rows are everyday rows, not measured outcomes."""

# The length feature, centred near the data's typical prompt (e^5 ≈ 150 characters) and scaled
# so that its weight is on the same footing as the embedding's unit-norm coordinates.
_LENGTH_CENTRE = 5.0
_LENGTH_SCALE = 2.0


def gate_features(embeddings: F32, prompts: Sequence[str]) -> F32:
    """(n, d + 2): the unit embedding, the scaled log length of the prompt, and a constant 1."""
    lengths = np.fromiter((np.log1p(len(p)) for p in prompts), np.float32, len(prompts))
    scaled = (lengths - _LENGTH_CENTRE) / _LENGTH_SCALE
    ones = np.ones(len(prompts), dtype=np.float32)
    return np.ascontiguousarray(np.column_stack([embeddings, scaled, ones]), dtype=np.float32)


def fit_gate(
    features: F32,
    everyday: npt.NDArray[np.bool_],
    *,
    l2: float = 1.0,
    iterations: int = 30,
) -> F32:
    """Weights of a logistic regression of ``everyday`` on ``features``, both classes weighted
    equally in total, L2-penalised; Newton's method (iteratively reweighted least squares)."""
    y = everyday.astype(np.float64)
    n_everyday = float(y.sum())
    if n_everyday == 0 or n_everyday == len(y):
        raise ValueError("the gate needs both everyday rows and outcome rows")
    x = features.astype(np.float64)
    sample = np.where(y == 1, len(y) / (2 * n_everyday), len(y) / (2 * (len(y) - n_everyday)))
    sample /= sample.mean()
    w = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (sample * (p - y)) + l2 * w
        hessian = (x * (sample * p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-7:
            break
    return w.astype(np.float32)


def gate_logit(weights: F32, embedding: F32, prompt: str) -> float:
    """The gate's log odds for one prompt (no prior): :func:`gate_features` without the arrays,
    for the per-request path."""
    dim = embedding.shape[0]
    length = (math.log1p(len(prompt)) - _LENGTH_CENTRE) / _LENGTH_SCALE
    return float(embedding @ weights[:dim]) + float(weights[dim]) * length + float(weights[dim + 1])


def gate_probability(weights: F32, features: F32, prior_log_odds: float = 0.0) -> F32:
    """g for each row of ``features``: the probability that the prompt is an everyday one."""
    logits = features @ weights + np.float32(prior_log_odds)
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float32)
