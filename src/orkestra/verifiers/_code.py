"""Reading a code answer: its Python, whether it parses, and the tests its prompt carries."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["PromptTests", "program_with_tests", "prompt_tests", "python_blocks", "syntax_error"]

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.S)
_PYTHON_LANGS = {"python", "py", "python3", ""}
_ASKS_PYTHON = re.compile(
    r"(?i)\bpython\b|^\s*def \w+\(|^\s*>>> |\bwrite a (?:function|program|script|class)\b",
    re.M,
)


def asks_for_python(prompt: str) -> bool:
    """The prompt asks for Python code (names Python, shows a ``def`` or doctests, or asks for
    a function/program)."""
    return bool(_ASKS_PYTHON.search(prompt))


def python_blocks(answer: str) -> list[str]:
    """The Python code in an answer: its fenced blocks tagged python (or untagged ones that
    look like Python), else the whole answer when it is a program on its own."""
    blocks = []
    for lang, body in _FENCE.findall(answer):
        if lang.lower() in _PYTHON_LANGS and (lang or _looks_like_python(body)):
            blocks.append(body)
    if blocks:
        return blocks
    if "```" not in answer and _looks_like_python(answer) and syntax_error(answer) is None:
        return [answer]
    return []


def _looks_like_python(text: str) -> bool:
    return bool(re.search(r"(?m)^\s*(def |class |import |from \w+ import |print\()", text))


def syntax_error(code: str) -> str | None:
    """None if ``code`` parses as Python, else the error ("line 3: invalid syntax")."""
    try:
        ast.parse(code)
    except SyntaxError as e:
        return f"line {e.lineno}: {e.msg}"
    except ValueError as e:  # null bytes
        return str(e)
    return None


@dataclass(frozen=True)
class PromptTests:
    """The tests a prompt states: ``assert`` lines (MBPP style) and doctest examples."""

    asserts: tuple[str, ...] = ()
    doctest: str = ""

    def __bool__(self) -> bool:
        return bool(self.asserts or self.doctest)

    @property
    def count(self) -> int:
        return len(self.asserts) + self.doctest.count(">>>")


def prompt_tests(prompt: str) -> PromptTests:
    """The ``assert ...`` lines and ``>>>`` examples (with their expected output) in a prompt."""
    asserts = tuple(
        line.strip()
        for line in prompt.splitlines()
        if line.strip().startswith("assert ") and syntax_error(line.strip()) is None
    )
    lines = prompt.splitlines()
    examples: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith(">>> "):
            examples.append(stripped)
            i += 1
            while i < len(lines) and lines[i].strip().startswith("... "):
                examples.append(lines[i].strip())
                i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
                if lines[i].strip().startswith(('"""', "'''")):
                    break
                examples.append(lines[i].strip())
                i += 1
            examples.append("")
            continue
        i += 1
    return PromptTests(asserts, "\n".join(examples).strip())


def _defined(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def program_with_tests(prompt: str, code: str, tests: PromptTests) -> str:
    """A program that runs ``code`` and then the prompt's tests; it exits non-zero when one
    fails. When the answer does not define the function the prompt declares (it wrote only
    the body, say), the prompt's own code is put first."""
    declared = set(re.findall(r"(?m)^\s*def (\w+)\(", prompt))
    program = code
    if declared and not declared & _defined(code) and syntax_error(prompt) is None:
        program = prompt + "\n" + code
    parts = [program, ""]
    parts += list(tests.asserts)
    if tests.doctest:
        parts += [
            "import doctest as _doctest, sys as _sys",
            f"_examples = {tests.doctest!r}",
            "_test = _doctest.DocTestParser().get_doctest(_examples, globals(), 'prompt', None, 0)",
            "_runner = _doctest.DocTestRunner(",
            "    optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)",
            "_runner.run(_test)",
            "_sys.exit(1 if _runner.failures else 0)",
        ]
    return "\n".join(parts) + "\n"
