"""Every code block of README.md and docs/*.md runs as written (see tests/docs_samples.py for
what "runs" means per language, and how a block is marked when it cannot).

Each Markdown file runs in its own process: its samples register middleware, set process
budgets and start servers, none of which may leak into other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_samples import LANGUAGES, blocks, doc_files

RUNNER = Path(__file__).with_name("docs_samples.py")
MAX_SKIPPED = 10
"""Blocks marked ``skip`` across all the docs: keep it small; each says why."""
RUNNABLE = {"python", "bash", "toml", "yaml", "json"}


@pytest.mark.slow
@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_block_of_the_file_runs(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(blocks(path)), done.stdout[-3000:] + done.stderr[-3000:]
    failed = [
        f"{r['where']}:\n{r['error']}\n{r['output']}" for r in reports if r["status"] == "failed"
    ]
    assert not failed, "\n\n".join(failed) + "\n" + done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    ran = [r for r in reports if r["status"] == "ok"]
    assert len(ran) == sum(1 for b in blocks(path) if b.lang in RUNNABLE and b.skip is None)


def test_every_fence_has_a_known_language_and_markers_are_understood() -> None:
    for path in doc_files():
        for block in blocks(path):
            assert block.lang in LANGUAGES, f"{block.where}: fence language {block.lang!r}"
            assert not block.notes, f"{block.where}: {block.notes}"
            if block.server_port is not None:
                assert block.lang in ("python", "bash"), block.where


def test_few_blocks_are_skipped_and_each_says_why() -> None:
    every = [b for path in doc_files() for b in blocks(path)]
    skipped = [b for b in every if b.skip is not None]
    assert len(skipped) <= MAX_SKIPPED, [b.where for b in skipped]
    for block in skipped:
        assert len(block.skip or "") >= 20, f"{block.where}: say why it cannot run"
    runnable = [b for b in every if b.lang in RUNNABLE and b.skip is None]
    python = [b for b in runnable if b.lang == "python"]
    # The docs really are checked: most of their code runs (a parser that found nothing
    # would pass every other test here).
    assert len(runnable) >= 40 and len(python) >= 30, (len(runnable), len(python))
    assert len(skipped) < len(runnable) / 5
