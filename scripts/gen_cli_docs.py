"""Regenerate docs/cli.md from the commands' own --help (tests/test_cli_docs.py keeps it current).

.venv/bin/python scripts/gen_cli_docs.py
"""

from __future__ import annotations

from pathlib import Path

from orkestra.cli_docs import render_cli_docs

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    out.write_text(render_cli_docs(), encoding="utf-8")
    print(f"wrote {out}")
