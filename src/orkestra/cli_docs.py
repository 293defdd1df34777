"""docs/cli.md, rendered from the CLI's own ``--help`` (so the docs cannot drift)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from orkestra.cli import app

__all__ = ["render_cli_docs"]


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(
        app, [*args, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    )
    return result.output.rstrip()


def render_cli_docs() -> str:
    commands: dict[str, object] = getattr(typer.main.get_command(app), "commands", {})
    parts = [
        "# The `orkestra` command line",
        "",
        "Generated from each command's `--help` by `scripts/gen_cli_docs.py`; "
        "`tests/test_cli_docs.py` fails when it is out of date.",
        "",
        "```text",
        _help([]),
        "```",
    ]
    for name in sorted(commands):
        parts += ["", f"## orkestra {name}", "", "```text", _help([name]), "```"]
    return "\n".join(parts) + "\n"
