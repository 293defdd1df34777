"""Cascades measured on answer texts: the curve, the AUC, and `orkestra eval --answers` on a
small slice (the full GSM8K evaluation is a command, see docs/evaluation.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orkestra.cli import app
from orkestra.errors import DataFormatError
from orkestra.evaluation import apgr, cascade_curve, roc_auc, savings_at, two_tier_curve
from orkestra.evaluation.cascade import answer_costs, evaluate_cascade, load_answers
from orkestra.routing.data import load_rows
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.knn import KNNRouter
from orkestra.routing.train import build_index

WEAK, STRONG = "small-model", "large-model"
runner = CliRunner()


def test_a_cascade_curve_pays_both_calls_when_it_escalates() -> None:
    qw, qs = [1, 0, 1, 0], [1, 1, 0, 1]
    score = [0.9, 0.1, 0.8, 0.2]  # the verifier scores the two wrong cheap answers lowest
    curve = cascade_curve(score, qw, qs, 1.0, 10.0)
    assert (curve.r_weak, curve.r_strong, curve.c_weak, curve.c_strong) == (0.5, 0.75, 4, 40)
    assert list(curve.cost) == [4, 14, 24, 34, 44]  # every escalation adds a whole strong call
    assert list(curve.quality) == [0.5, 0.75, 1.0, 0.75, 0.75]
    assert np.allclose(curve.x, [0, 10 / 36, 20 / 36, 30 / 36, 40 / 36])
    # 95% of strong (0.7125) is reached 85% of the way to the first escalation: cost 12.5.
    assert savings_at(curve, 0.95) == pytest.approx(1 - 12.5 / 40)
    share = cascade_curve(score, qw, qs, 1.0, 10.0, x="share")
    assert list(share.x) == [0, 0.25, 0.5, 0.75, 1.0]
    assert apgr(share) == pytest.approx((0.5 + 1.5 + 1.5 + 1.0) * 0.25)


def test_a_verifier_that_costs_something_starts_from_the_all_weak_point() -> None:
    curve = cascade_curve([0.9, 0.1], [1, 0], [1, 1], 1.0, 10.0, 0.5)
    assert list(curve.cost) == [2, 3, 13, 23]
    assert list(curve.quality) == [0.5, 0.5, 1.0, 1.0]
    assert curve.x[0] == 0 and curve.x[1] == pytest.approx(1 / 18)


def test_a_constant_verifier_is_a_random_cascade() -> None:
    qw, qs = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 1])
    curve = cascade_curve(np.zeros(4), qw, qs, 0.0, 10.0, x="share")
    assert apgr(curve) == pytest.approx(apgr(two_tier_curve(np.zeros(4), qw, qs, 0.0, 10.0)))


def test_roc_auc() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([1, 1, 1], [0, 1, 1]) == 0.5  # ties count half
    assert np.isnan(roc_auc([1, 2], [1, 1]))
    with pytest.raises(ValueError, match="same length"):
        roc_auc([1, 2], [1])


def _rows_and_answers(tmp_path: Path) -> tuple[Path, Path]:
    """Word problems: the weak model gets half of them wrong, and its wrong answers show it
    (bad arithmetic or no final answer); the strong model gets them all right."""
    data, answers = tmp_path / "graded.jsonl", tmp_path / "answers.csv"
    with data.open("w") as rows, answers.open("w", newline="") as texts:
        writer = csv.writer(texts)
        writer.writerow(["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"])
        for i in range(120):
            split = "train" if i < 80 else "test"
            a, b = 10 + i, 3 + i % 7
            prompt = f"Sam has {a} marbles and wins {b} more. How many marbles does Sam have?"
            right = f"{a} + {b} = {a + b}\n#### {a + b}"
            wrong = f"{a} + {b} = {a + b + 1}\n#### {a + b + 1}" if i % 4 else f"Sam has {a}"
            ok = i % 2 == 0
            row = {
                "id": f"q{i}",
                "source": "mine",
                "task": "marbles",
                "prompt": prompt,
                "scores": {WEAK: 1.0 if ok else 0.0, STRONG: 1.0},
                "split": split,
            }
            rows.write(json.dumps(row) + "\n")
            if i != 119:  # one test row has no answer text
                writer.writerow([prompt, ok, True, right if ok else wrong, right + " marbles"])
    return data, answers


PRICES = {WEAK: (1.0, 1.0), STRONG: (10.0, 30.0)}


def test_evaluate_a_cascade_on_a_small_slice(tmp_path: Path) -> None:
    data, answers = _rows_and_answers(tmp_path)
    train, test = load_rows(data, split="train"), load_rows(data, split="test")
    tiers = {"mine": {"budget": WEAK, "premium": STRONG}}
    router = KNNRouter(build_index(train, StaticEmbedder.default(), tiers=tiers, n_clusters=4))
    texts = load_answers(answers, [WEAK, STRONG])
    result = evaluate_cascade(
        test, texts, router, [WEAK, STRONG], train_rows=train, prices=PRICES, n_boot=100
    )
    assert result.n == 39 and result.without_answers == 1 and result.excluded_in_index == 0
    assert result.auc["verifier"][0] == 1.0  # every wrong answer shows it
    cascade, routing = result.cost["cascade"].figures, result.cost["routing"].figures
    # Half the cheap answers are wrong and every one is caught: the oracle's 0.75, less the
    # cheap calls the escalated prompts also paid for.
    assert cascade["apgr"] == pytest.approx(0.75, abs=0.02)
    assert routing["apgr"] < cascade["apgr"]
    assert result.cost["random"].figures["apgr"] == pytest.approx(0.5)
    assert cascade["savings95"] > 0.4
    lo, hi = result.cost["cascade"].intervals["apgr"]
    assert lo <= cascade["apgr"] <= hi
    # Calibrated on the 80 train rows for 95% of strong's quality: it escalates the wrong half.
    calibration = result.calibration
    assert calibration["train_rows"] == 80
    assert calibration["test_escalation_share"] == pytest.approx(19 / 39)
    assert calibration["test_quality_ratio"] == 1.0
    # Kept answers pay one cheap call; escalated ones pay both calls.
    cost = answer_costs(test[:39], texts, [WEAK, STRONG], PRICES)
    escalated = np.array([r.scores[WEAK] == 0 for r in test[:39]])
    expected = 1 - (cost[:, 0].sum() + cost[escalated, 1].sum()) / cost[:, 1].sum()
    assert calibration["test_savings"] == pytest.approx(expected)
    out = json.loads(json.dumps(result.to_json()))
    assert out["cost_axis"]["cascade"]["apgr_ci"][0] <= out["cost_axis"]["cascade"]["apgr"]


def test_answer_costs_count_the_real_answer_lengths(tmp_path: Path) -> None:
    data, answers = _rows_and_answers(tmp_path)
    row = load_rows(data)[0]
    texts = load_answers(answers, [WEAK, STRONG])
    cost = answer_costs([row], texts, [WEAK, STRONG], PRICES, prompt_overhead_tokens=100)
    tokens_in = (len(row.prompt) + 3) // 4 + 100
    strong_out = (len(texts[row.prompt][STRONG]) + 3) // 4
    assert cost[0, 1] == pytest.approx((tokens_in * 10 + strong_out * 30) / 1e6)


def test_bad_answer_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("prompt,small-model_response\nhi,hello\n")
    with pytest.raises(DataFormatError, match="large-model_response"):
        load_answers(path, [WEAK, STRONG])
    with pytest.raises(DataFormatError, match="no such answers file"):
        load_answers(tmp_path / "missing.csv", [WEAK])


def test_eval_cli_with_answers(tmp_path: Path) -> None:
    data, answers = _rows_and_answers(tmp_path)
    folder = tmp_path / "router"
    tiers = {"mine": {"budget": WEAK, "premium": STRONG}}
    index = build_index(load_rows(data, split="train"), StaticEmbedder.default(), tiers=tiers)
    index.save(folder)
    args = [
        "eval",
        str(data),
        "--router",
        str(folder),
        "--weak",
        WEAK,
        "--strong",
        STRONG,
        "--answers",
        str(answers),
        "--prices",
        f"{WEAK}=1,1",
        "--prices",
        f"{STRONG}=10,30",
        "--n-boot",
        "50",
    ]
    png = tmp_path / "cascade.png"
    result = runner.invoke(app, [*args, "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out["cost_axis"]) == {"cascade", "routing", "random"}
    assert out["auc_weak_errors"]["verifier"][0] == 1.0
    assert out["calibration"]["train_rows"] == 80
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "cascade - routing (cost axis, paired)" in table.output
    assert "AUC for the weak model's errors: verifier 1.000" in table.output
