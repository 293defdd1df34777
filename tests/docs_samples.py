"""Every code block of README.md and docs/*.md, found and run the way a reader would run it.

Run as a script (``python tests/docs_samples.py FILE.md``) it executes one Markdown file's
blocks in order, in a fresh temporary directory with its own ``ORKESTRA_HOME``, against
orkestra's fake provider server in any-key mode (so ``"YOUR_GEMINI_API_KEY"`` works), with the
SDKs' base-URL variables pointing at it. One JSON line per block reports what happened.

What each fence's language means:

- ``python``: executed, all blocks of a file in one namespace (later blocks use earlier ones'
  names); top-level ``await`` is allowed, as in a notebook or ``python -m asyncio``.
- ``bash``: every ``orkestra …`` and ``python -m orkestra…`` command runs (exit code 0
  needed). A long-running one (``orkestra serve``, ``orkestra dashboard``, ``python -m
  orkestra.testing``...) runs on a free port (its ``--port`` replaced) until it answers HTTP,
  then is stopped. Setting up (``python3 -m venv``, ``. .venv/bin/activate``, ``pip install``)
  is what the test environment already did. Any other command needs the block marked.
- ``toml``, ``yaml``, ``json``: a file with a top-level ``models`` list is an
  ``ORKESTRA_CATALOG`` file (loaded into the catalog); any other TOML or YAML a proxy config,
  loaded by ``orkestra.server``'s loader and built into the app (each ``*_env`` variable it
  names set to a placeholder); any other JSON (a request or response body) must parse.
- ``text``: output or a diagram, not run. A fence without a language is an error.

HTML comments right above a fence change that:

- ``<!-- docs-test: skip: the reason -->``: not run (the test keeps the number of these small).
- ``<!-- docs-test: setup`` … ``-->``: hidden Python run before the block, in the directory the
  blocks run in (names a fragment uses that the page defines elsewhere, a file a command reads).
- ``<!-- docs-test: server PORT -->``: a Python block that serves forever (``uvicorn.run``):
  run in its own process with PORT replaced by a free one, until it answers HTTP.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LANGUAGES = {"python", "bash", "toml", "yaml", "json", "text"}
SETUP_COMMANDS = (("python3", "-m", "venv"), ("python", "-m", "venv"), (".",), ("source",))
LONG_RUNNING = {"serve", "dashboard"}
LONG_RUNNING_MODULES = {"orkestra.server", "orkestra.testing", "orkestra.dashboard"}
ONE_SHOT_FLAGS = {"--new-key", "--hash-key", "--help", "--print-config"}
HARMLESS = {"echo", "printf"}
"""Commands that may feed an orkestra command in a pipeline (``echo -n "$KEY" | …``)."""
_FENCE = re.compile(r"^( *)(`{3,}|~{3,})(.*)$")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->", re.S)


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    code: str
    skip: str | None = None
    setup: str = ""
    server_port: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _markers(lines: list[str], fence_index: int) -> list[str]:
    """The ``docs-test:`` comments directly above the fence at ``fence_index`` (blank lines
    between them allowed), in order."""
    found: list[str] = []
    end = fence_index
    while True:
        while end > 0 and not lines[end - 1].strip():
            end -= 1
        if end == 0 or not lines[end - 1].rstrip().endswith("-->"):
            return found
        start = end - 1
        while start > 0 and "<!--" not in lines[start]:
            start -= 1
        match = _MARKER.fullmatch("\n".join(lines[start:end]).strip())
        if match is None:
            return found
        found.insert(0, match.group(1))
        end = start


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with their markers."""
    lines = path.read_text("utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        j = i + 1
        while j < len(lines) and not lines[j].lstrip().startswith(fence):
            j += 1
        body = "\n".join(line[indent:] for line in lines[i + 1 : j])  # a fence in a list item
        block = Block(path, i + 1, info.split()[0] if info else "", body)
        for marker in _markers(lines, i):
            kind, rest = [*re.split(r"\s+", marker, maxsplit=1), ""][:2]
            if kind == "skip:":
                block.skip = rest.strip()
            elif kind == "setup":
                block.setup += rest + "\n"
            elif kind == "server":
                block.server_port = int(rest.split()[0])
            else:
                block.notes.append(f"unknown docs-test marker {marker!r}")
        found.append(block)
        i = j + 1
    return found


# -- running ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until 127.0.0.1:port answers HTTP (any status); fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"exited with {process.returncode} before serving:\n{out}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _with_port(argv: list[str], port: int) -> list[str]:
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--port" and i + 1 < len(out):
            out[i + 1] = str(port)
            return out
        if arg.startswith("--port="):
            out[i] = f"--port={port}"
            return out
    return [*out, "--port", str(port)]


def _commands(code: str) -> Iterator[list[list[str]]]:
    """Each command of a bash block, as its pipeline's parts (continuations joined, comments
    dropped)."""
    text = re.sub(r"\\\n", " ", code)
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        pipeline: list[list[str]] = [[]]
        for token in [*tokens, "&&"]:
            if token in ("&&", ";", "||"):
                if any(pipeline):
                    yield [part for part in pipeline if part]
                pipeline = [[]]
            elif token == "|":
                pipeline.append([])
            else:
                pipeline[-1].append(token)


def _is_setup(argv: list[str]) -> bool:
    if argv[:2] in (["pip", "install"], ["pip3", "install"]):
        return True
    return any(tuple(argv[: len(s)]) == s for s in SETUP_COMMANDS)


class Session:
    """One Markdown file's run: its namespace, its environment, and the servers its blocks
    started (kept until the end, on free ports standing in for the documented ones)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.ports: dict[int, int] = {}
        self.servers: list[subprocess.Popen[bytes]] = []

    def close(self) -> None:
        for process in self.servers:
            stop(process)

    def localise(self, text: str) -> str:
        """``text`` with each documented port of a running server replaced by its real one."""
        for documented, real in self.ports.items():
            text = re.sub(rf"(127\.0\.0\.1|localhost):{documented}\b", rf"\g<1>:{real}", text)
        return text

    def serve(self, argv: list[str], port: int, env: dict[str, str], keep: int | None) -> None:
        """Start a server and wait until it answers; keep it (as ``keep``'s stand-in) or stop
        it."""
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_for_http(port, process)
        except BaseException:
            stop(process)
            raise
        if keep is None:
            stop(process)
        else:
            self.servers.append(process)
            self.ports[keep] = port

    # -- the languages -----------------------------------------------------------------------

    def bash(self, block: Block) -> str:
        if block.setup.strip():
            exec(compile(block.setup, f"{block.where} (setup)", "exec"), self.namespace)
        ran = []
        for pipeline in _commands(self.localise(block.code)):
            extra: dict[str, str] = {}
            first = pipeline[0]
            while first and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", first[0]):
                name, _, value = first.pop(0).partition("=")
                extra[name] = value
            if len(pipeline) == 1 and (not first or _is_setup(first)):
                continue
            argvs = [self._argv(part) for part in pipeline]
            env = {**self.env, **extra}
            command = " | ".join(shlex.join(part) for part in pipeline)
            long_running = [a for a, running in argvs if running]
            if long_running:
                if len(pipeline) > 1:
                    raise RuntimeError(f"a server in a pipeline: {command!r}")
                port = free_port()
                self.serve(_with_port(long_running[0], port), port, env, block.server_port)
            else:
                done = subprocess.run(
                    ["bash", "-c", " | ".join(shlex.join(a) for a, _ in argvs)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                    cwd=self.cwd,
                )
                if done.returncode != 0:
                    raise RuntimeError(
                        f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
                    )
                print(done.stdout, end="")
            ran.append(command)
        return "; ".join(ran) or "setup only"

    @staticmethod
    def _argv(command: list[str]) -> tuple[list[str], bool]:
        """The command to run for a documented one, and whether it serves until stopped."""
        if command and command[0] == "orkestra":
            argv = [str(Path(sys.executable).parent / "orkestra"), *command[1:]]
            return argv, len(command) > 1 and command[1] in LONG_RUNNING
        python_m = command[:2] in (["python", "-m"], ["python3", "-m"]) and len(command) > 2
        module = command[2] if python_m else ""
        if module.startswith("orkestra"):
            running = module in LONG_RUNNING_MODULES and not ONE_SHOT_FLAGS & set(command)
            return [sys.executable, *command[1:]], running
        if command and command[0] in HARMLESS:
            return command, False
        raise RuntimeError(f"unmarked command {shlex.join(command)!r}: mark the block")

    def python(self, block: Block) -> str:
        if block.server_port is not None:
            port = free_port()
            code = block.setup + block.code.replace(str(block.server_port), str(port))
            script = self.cwd / f"server_{block.line}.py"
            script.write_text(code, "utf-8")
            self.serve([sys.executable, str(script)], port, self.env, block.server_port)
            return f"serving on a free port in place of {block.server_port}"
        for source in (block.setup, self.localise(block.code)):
            if not source.strip():
                continue
            code = compile(source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, self.namespace)
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        return "ran"


def _env_variables(value: Any) -> Iterator[tuple[str, str]]:
    """(field, variable) for each ``*_env`` field of a config, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(item, str):
                yield key, item
            yield from _env_variables(item)
    elif isinstance(value, list):
        for item in value:
            yield from _env_variables(item)


def _placeholder(field: str, cwd: Path, env: dict[str, str]) -> str:
    """A value for a variable a proxy config names (it would hold a secret or an address)."""
    if field == "database_url_env":
        return f"sqlite:///{cwd / 'proxy-usage.db'}"
    if field == "base_url_env":
        return env["OPENAI_BASE_URL"]
    return "docs-test-placeholder-value-0123456789"


def run_config(block: Block, env: dict[str, str], cwd: Path) -> str:
    suffix = {"toml": ".toml", "yaml": ".yaml", "json": ".json"}[block.lang]
    path = cwd / f"block_{block.line}{suffix}"
    path.write_text(block.code + "\n", "utf-8")
    if block.lang == "toml":
        import tomllib

        data = tomllib.loads(block.code)
    elif block.lang == "yaml":
        import yaml

        data = yaml.safe_load(block.code)
    else:
        data = json.loads(block.code)
        if not (isinstance(data, dict) and isinstance(data.get("models"), list)):
            return "a JSON document (a body or an answer: valid JSON is all there is to check)"
    if isinstance(data, dict) and isinstance(data.get("models"), list):
        from orkestra.catalog import default_catalog

        os.environ["ORKESTRA_CATALOG"] = str(path)
        try:
            catalog = default_catalog()
            for entry in data["models"]:
                catalog.model(entry["provider"], entry["id"])
        finally:
            del os.environ["ORKESTRA_CATALOG"]
        return f"ORKESTRA_CATALOG file of {len(data['models'])} models"
    from orkestra.server import create_app
    from orkestra.server.config import load_config

    config_env = dict(env)
    for name_of_field, variable in _env_variables(data):
        config_env.setdefault(variable, _placeholder(name_of_field, cwd, env))
    config = load_config(path, config_env)
    create_app(config, environ=config_env)
    return f"proxy config with {len(config.providers)} providers"


def environment(home: Path, server: Any) -> dict[str, str]:
    """The process environment for the samples: the fake server for every provider."""
    from orkestra.catalog import default_catalog

    env = dict(os.environ)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        env.pop(name, None)
    env.update(server.env())
    env["ORKESTRA_HOME"] = str(home)
    env.pop("ORKESTRA_DATABASE_URL", None)
    for info in default_catalog().providers.values():
        if info.compatible and info.env_base_url:
            env.setdefault(info.env_base_url, server.compat_base_url)
        # A key for each preset that needs one (a local server's is optional: none set).
        if info.requires_key and not any(v in env for v in info.env_keys):
            env[info.env_keys[0]] = "docs-test-key"
    return env


def run_file(path: Path) -> int:
    from orkestra.testing import FakeProviderServer

    failures = 0
    with tempfile.TemporaryDirectory(prefix="docs-") as tmp, FakeProviderServer(any_key=True) as s:
        cwd = Path(tmp)
        env = environment(cwd / "home", s)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        session = Session(env, cwd)
        try:
            for block in blocks(path):
                failures += run_block(session, block)
        finally:
            session.close()
    return 1 if failures else 0


def run_block(session: Session, block: Block) -> int:
    """Run one block, print its JSON report line; 1 if it failed."""
    report: dict[str, Any] = {"where": block.where, "lang": block.lang}
    output = io.StringIO()
    failed = 0
    try:
        if block.notes:
            raise RuntimeError("; ".join(block.notes))
        if block.lang not in LANGUAGES:
            raise RuntimeError(f"fence language {block.lang!r}: use one of {sorted(LANGUAGES)}")
        if block.skip is not None:
            report.update(status="skipped", reason=block.skip)
        elif block.lang == "text":
            report.update(status="text")
        else:
            with contextlib.redirect_stdout(output):
                if block.lang == "python":
                    detail = session.python(block)
                elif block.lang == "bash":
                    detail = session.bash(block)
                else:
                    detail = run_config(block, session.env, session.cwd)
            report.update(status="ok", detail=detail)
    except BaseException:
        failed = 1
        report.update(status="failed", error=traceback.format_exc(limit=-8))
    report["output"] = output.getvalue()[-2000:]
    print(json.dumps(report), flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(run_file(Path(sys.argv[1]).resolve()))
