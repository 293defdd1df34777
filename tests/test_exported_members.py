"""The public surface is deliberate: ``orkestra.__all__`` is exactly the public names the package
defines, sorted, and each of them is documented somewhere a user reads (README or docs/)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import orkestra

DOCS = Path(__file__).resolve().parent.parent
PUBLIC_DUNDERS = ("__version__",)


def test_all_imports_are_exported() -> None:
    """Every public name in ``orkestra`` is in ``__all__`` and nothing else is (a new name is
    added on purpose, not leaked by an import)."""
    names = [n for n in vars(orkestra) if not n.startswith("_") or n in PUBLIC_DUNDERS]
    submodules = {n for n in names if isinstance(getattr(orkestra, n), ModuleType)}
    lazy = set(orkestra._LAZY_MODULES)  # o.verifiers: imported on first use
    assert sorted(orkestra.__all__) == sorted((set(names) - submodules) | lazy)
    assert len(set(orkestra.__all__)) == len(orkestra.__all__)


def test_every_exported_name_resolves() -> None:
    for name in orkestra.__all__:
        assert getattr(orkestra, name) is not None, name


def test_every_exported_name_is_documented() -> None:
    text = (DOCS / "README.md").read_text("utf-8") + "".join(
        p.read_text("utf-8") for p in sorted((DOCS / "docs").glob("*.md"))
    )
    missing = [n for n in orkestra.__all__ if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert missing == []
