from pathlib import Path

from orkestra.cli_docs import render_cli_docs


def test_cli_docs_are_current() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert docs.read_text(encoding="utf-8") == render_cli_docs(), (
        "docs/cli.md is stale: run python scripts/gen_cli_docs.py"
    )
