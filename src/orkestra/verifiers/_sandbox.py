"""Run a model's Python in a separate, isolated, time- and memory-limited process.

What it does: a new interpreter in isolated mode (``-I``: no ``PYTHON*`` variables, no user
site-packages, the working directory not on ``sys.path``), in a fresh temporary directory that is
deleted afterwards, with an environment of only ``PATH``, ``HOME`` and ``TMPDIR`` (so none of your
API keys), no stdin, CPU time, address space, file size and core dumps capped with ``resource``
where the platform has it, and the whole process group killed when the wall-clock timeout
passes.

What it does not do: it is not a security boundary against hostile code. The code runs as your
user, so it could read your files, reach the network, or read other processes' environments
through ``/proc``. It stops accidents (an infinite loop, a memory blow-up, stray files in your
working directory, secrets in its own environment). Run untrusted code in a container.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxResult", "run_python"]

# Runs first in the child: caps its own resources, then runs the program as __main__.
_BOOTSTRAP = """\
import sys
try:
    import resource
except ImportError:
    resource = None
if resource is not None:
    cpu, memory, fsize = (int(v) for v in sys.argv[2:5])
    for name, value in (("RLIMIT_CPU", cpu), ("RLIMIT_AS", memory),
                        ("RLIMIT_FSIZE", fsize), ("RLIMIT_CORE", 0)):
        limit = getattr(resource, name, None)
        if limit is not None:
            try:
                resource.setrlimit(limit, (value, value))
            except (ValueError, OSError):
                pass
program = sys.argv[1]
sys.argv = [program]
import runpy
runpy.run_path(program, run_name="__main__")
"""


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed run ended. ``returncode`` is None when it was killed on timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """It ran to the end and exited with status 0."""
        return self.returncode == 0 and not self.timed_out


def _clip(data: bytes, limit: int) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "\n[... output cut ...]"


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the process and everything it started (its own process group on POSIX)."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()


def run_python(
    code: str,
    *,
    timeout: float = 5.0,
    memory_mb: int = 512,
    max_file_mb: int = 16,
    max_output: int = 64_000,
) -> SandboxResult:
    """Run ``code`` as a Python program in a sandboxed subprocess (see the module docstring).

    ``timeout`` is wall-clock seconds (CPU time is capped a little above it too);
    ``memory_mb`` caps the address space, ``max_file_mb`` any file it writes; stdout and stderr
    are kept up to ``max_output`` characters each.

    >>> run_python("print(6 * 7)").stdout  # doctest: +SKIP
    '42\\n'
    """
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
    with tempfile.TemporaryDirectory(prefix="orkestra-sandbox-") as folder:
        program = Path(folder) / "main.py"
        program.write_text(code, encoding="utf-8")
        env = {"PATH": os.defpath, "HOME": folder, "TMPDIR": folder, "LC_ALL": "C.UTF-8"}
        limits = [str(math.ceil(timeout) + 1), str(memory_mb << 20), str(max_file_mb << 20)]
        command = [sys.executable, "-I", "-X", "utf8", "-c", _BOOTSTRAP, str(program), *limits]
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, arguments as a list
            command,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=os.name == "posix",
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            out, err = process.communicate()
            return SandboxResult(None, _clip(out, max_output), _clip(err, max_output), True)
        finally:
            # Whatever it left running in its group (a background child) goes too.
            _kill(process)
            process.wait()
        return SandboxResult(process.returncode, _clip(out, max_output), _clip(err, max_output))
