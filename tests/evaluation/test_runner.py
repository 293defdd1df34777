"""`orkestra train` and `orkestra eval` end to end on small real-embedder data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orkestra.cli import app
from orkestra.errors import DataFormatError
from orkestra.evaluation import apgr
from orkestra.evaluation.runner import evaluate, models_for
from orkestra.routing.data import load_rows
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.knn import KNNRouter
from orkestra.routing.train import build_index

WEAK, STRONG = "small-model", "large-model"
runner = CliRunner()


def _write(path: Path, split: str, n: int, offset: int = 0) -> Path:
    """Trivia both models answer; proofs only the large model does. Costs per call included."""
    with path.open("w") as f:
        for i in range(offset, offset + n):
            easy = i % 2 == 0
            prompt = (
                f"What is the capital city of country number {i}?"
                if easy
                else f"Prove rigorously that the sum of the first {i} odd numbers is a square."
            )
            row = {
                "id": f"{split}-{i}",
                "source": "mine",
                "task": "trivia" if easy else "proof",
                "prompt": prompt,
                "scores": {WEAK: 1.0 if easy else 0.0, STRONG: 1.0},
                "cost_usd": {WEAK: 0.001, STRONG: 0.01},
                "split": split,
            }
            f.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "graded.jsonl"
    _write(path, "train", 80)
    with path.open("a") as f:
        f.write(_write(tmp_path / "t.jsonl", "test", 40, offset=1000).read_text())
    return path


def test_evaluate_a_router_that_sees_the_difficulty(data: Path) -> None:
    train = load_rows(data, split="train")
    test = load_rows(data, split="test")
    tiers = {"mine": {"budget": WEAK, "premium": STRONG}}
    router = KNNRouter(
        build_index(train, StaticEmbedder.default(), tiers=tiers, n_clusters=4), k=10
    )
    result = evaluate(test, router, [WEAK, STRONG], n_boot=200)
    f = result.figures
    assert result.n == 40 and result.excluded == 0
    # Proofs go strong first: as good as the oracle (half the prompts gain, so APGR 0.75).
    assert f["apgr"] == pytest.approx(apgr(result.oracle), abs=0.01)
    assert f["apgr"] == pytest.approx(0.75, abs=0.01)
    assert f["aiq"] > f["aiq_zero"]
    assert f["aiq_oracle"] >= f["aiq"] - 1e-9
    assert f["savings_at_95"] > 0.3
    lo, hi = result.intervals["apgr"]
    assert lo <= f["apgr"] <= hi


def test_rows_in_the_index_are_left_out(data: Path) -> None:
    rows = load_rows(data)
    tiers = {"mine": {"budget": WEAK, "premium": STRONG}}
    router = KNNRouter(build_index(rows[:80], StaticEmbedder.default(), tiers=tiers, n_clusters=4))
    result = evaluate(rows, router, [WEAK, STRONG], n_boot=50)
    assert result.excluded == 80 and result.n == 40
    with pytest.raises(DataFormatError, match="router's own index"):
        evaluate(rows[:80], router, [WEAK, STRONG], n_boot=50)


def test_models_need_naming_for_unknown_data(data: Path) -> None:
    rows = load_rows(data)
    with pytest.raises(DataFormatError, match="--weak/--strong"):
        models_for(rows)
    assert models_for(rows, weak=WEAK, strong=STRONG) == [WEAK, STRONG]


def test_train_then_eval_cli_with_json_and_plot(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "router"
    result = runner.invoke(
        app,
        [
            "train",
            str(data),
            "--split",
            "train",
            "--out",
            str(out),
            "--tiers",
            f"budget={WEAK},premium={STRONG}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    png = tmp_path / "curve.png"
    result = runner.invoke(
        app,
        [
            "eval",
            str(data),
            "--router",
            str(out),
            "--weak",
            WEAK,
            "--strong",
            STRONG,
            "--json",
            "--n-boot",
            "100",
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    for name in (
        "apgr",
        "cpt50",
        "cpt80",
        "savings_at_95",
        "savings_at_99",
        "quality_ratio_default",
        "aiq",
        "aiq_zero",
        "aiq_oracle",
        "premium_share_default",
        "n",
    ):
        assert name in figures
    assert len(figures["apgr_ci"]) == 2
    assert figures["n"] == 40
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_costs_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    row = {
        "id": "1",
        "source": "x",
        "task": "t",
        "prompt": "hi there",
        "scores": {"a": 1, "b": 0},
        "split": "test",
    }
    path.write_text(json.dumps(row) + "\n")
    result = runner.invoke(
        app, ["eval", str(path), "--weak", "a", "--strong", "b", "--n-boot", "10"]
    )
    assert result.exit_code == 2
    assert "--prices a=IN,OUT" in result.output


def test_eval_plot_without_matplotlib_says_what_to_install_before_evaluating(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    png = tmp_path / "curve.png"
    args = ["eval", str(data), "--weak", WEAK, "--strong", STRONG, "--plot", str(png)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: --plot: plotting needs matplotlib: pip install 'orkestra-router[plot]'" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert "routing" not in result.output  # refused before the evaluation ran
    assert not png.exists()
