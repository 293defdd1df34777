"""The sandbox a code answer's tests run in: a separate, isolated, limited process."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from orkestra.verifiers import run_python


def test_it_runs_code_and_reports_its_output() -> None:
    result = run_python("import sys\nprint(6 * 7)\nprint('oops', file=sys.stderr)")
    assert result.ok
    assert result.returncode == 0
    assert result.stdout == "42\n"
    assert result.stderr == "oops\n"


def test_a_failing_assert_fails() -> None:
    result = run_python("def add(a, b):\n    return a - b\n\nassert add(2, 2) == 4\n")
    assert not result.ok
    assert result.returncode == 1
    assert "AssertionError" in result.stderr


def test_an_endless_loop_is_killed_on_timeout() -> None:
    started = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout=1.0)
    assert result.timed_out
    assert not result.ok
    assert result.returncode is None
    assert time.monotonic() - started < 5


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_what_the_code_started_dies_with_it(tmp_path: Path) -> None:
    marker = tmp_path / "still-alive"
    # A grandchild that would write the marker well after the timeout; the parent says it
    # started it, then hangs.
    grandchild = f"import time; time.sleep(3); open({str(marker)!r}, 'w').write('x')"
    code = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "print(child.pid, flush=True)\n"
        "while True:\n    pass\n"
    )
    result = run_python(code, timeout=1.5)
    assert result.timed_out
    assert result.stdout.strip().isdigit()  # the grandchild was started before the kill
    time.sleep(3.5)
    assert not marker.exists()


def test_the_code_sees_none_of_our_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-for-the-sandbox-test")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    result = run_python(
        "import os, sys\n"
        "print(sorted(os.environ))\n"
        "print(os.environ.get('OPENAI_API_KEY'))\n"
        "print(sys.flags.isolated)\n"
    )
    assert result.ok
    names, key, isolated = result.stdout.splitlines()
    assert "OPENAI_API_KEY" not in names and "PYTHONPATH" not in names
    assert key == "None"
    assert isolated == "1"
    assert "sk-secret" not in result.stdout + result.stderr


def test_it_runs_in_a_fresh_directory_that_is_removed(tmp_path: Path) -> None:
    result = run_python("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n")
    assert result.ok
    folder = Path(result.stdout.strip())
    assert folder != Path.cwd()
    assert not folder.exists()
    assert not (Path.cwd() / "scratch.txt").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is enforced on Linux")
def test_memory_is_capped() -> None:
    result = run_python("block = bytearray(2_000_000_000)\nprint('allocated')\n", memory_mb=256)
    assert not result.ok
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


def test_output_is_clipped() -> None:
    result = run_python("print('x' * 10_000)", max_output=100)
    assert result.ok
    assert result.stdout.startswith("x" * 100)
    assert result.stdout.endswith("[... output cut ...]")


def test_a_bad_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        run_python("pass", timeout=0)
