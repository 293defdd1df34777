"""A big or hostile ORKESTRA_CATALOG file, and many register_model() calls: linear work, and a
DataFormatError naming the file (never a RecursionError or a bare TypeError).

The timing of a 20,000-entry file is measured by ``bench/catalog_load.py``; here the work is
counted instead (Python lines executed), which does not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import orkestra as o
from orkestra.catalog import _default, default_catalog, register_model

LINEAR = 4.0
"""Four times the entries: four times the work if linear (sixteen if quadratic)."""


@pytest.fixture(autouse=True)
def _no_user_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ORKESTRA_CATALOG", raising=False)
    _default._reset_registered()
    yield
    _default._reset_registered()


def lines_run(work: Callable[[], object]) -> int:
    """How many Python lines ``work()`` executes (every module, the library's included)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def model(i: int, provider: str = "openai") -> dict[str, Any]:
    return {
        "provider": provider,
        "id": f"ft:scale-{i}",
        "input_price": 0.5,
        "output_price": 1.5,
        "capabilities": ["tools"],
    }


def catalog_file(path: Path, entries: int) -> Path:
    models = [model(i, "openai" if i % 2 else "anthropic") for i in range(entries)]
    path.write_text(json.dumps({"models": models}), "utf-8")
    return path


def test_loading_a_catalog_file_is_linear_in_its_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_catalog()  # the bundled catalog and lazy imports, outside the count

    def load(entries: int) -> int:
        path = catalog_file(tmp_path / f"catalog-{entries}.json", entries)
        monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
        return lines_run(default_catalog)

    small, large = load(300), load(1200)
    assert large / small < LINEAR * 1.25, (small, large)
    assert default_catalog().model("openai", "ft:scale-1199").price == o.catalog.Price(0.5, 1.5)


def test_registering_models_one_by_one_is_linear() -> None:
    default_catalog()

    def register(start: int, count: int) -> None:
        for i in range(start, start + count):
            register_model("openai", f"ft:scale-{i}", input_price=0.5, output_price=1.5)
        default_catalog()

    small = lines_run(lambda: register(0, 50))
    _default._reset_registered()
    large = lines_run(lambda: register(0, 200))
    assert large / small < LINEAR * 1.25, (small, large)
    assert default_catalog().model("openai", "ft:scale-199").id == "ft:scale-199"


def test_registered_entries_act_together_as_a_file_of_them_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiers named one call at a time fill the others as if given together (the cheaper on a
    tie), exactly as the same entries in a file."""
    register_model("vllm", "big", tier="premium")
    register_model("vllm", "small", tier="budget")
    registered = default_catalog().provider("vllm").tiers
    assert registered == {"budget": "small", "balanced": "small", "premium": "big"}

    _default._reset_registered()
    path = tmp_path / "vllm.toml"
    path.write_text(
        '[[models]]\nprovider = "vllm"\nid = "big"\ntier = "premium"\n\n'
        '[[models]]\nprovider = "vllm"\nid = "small"\ntier = "budget"\n',
        "utf-8",
    )
    monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
    assert default_catalog().provider("vllm").tiers == registered


def test_a_refused_registration_changes_nothing() -> None:
    before = default_catalog()
    with pytest.raises(o.PricingError):
        register_model("openai", "ft:unpriced")
    with pytest.raises(o.ConfigurationError, match="capabilities"):
        register_model("openai", "ft:x", input_price=1, output_price=1, capabilities=["telepathy"])
    assert default_catalog() is before


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", '{"models": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("deep-entry.json", '{"models": [{"provider": ' + "[" * 50_000 + "]" * 50_000 + "}]}"),
        ("deep.toml", "models = " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("deep-table.toml", "models = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n"),
    ],
)
def test_deep_nesting_is_a_data_format_error_naming_the_file(
    name: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
    with pytest.raises(o.DataFormatError, match=rf"ORKESTRA_CATALOG file .*{name}: nested too"):
        default_catalog()
    with pytest.raises(o.DataFormatError, match=name):
        o.Provider("openai", "sk-test")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([["tools"]], r"unknown capabilities \[\['tools'\]\]"),
        ([{"tools": True}], "unknown capabilities"),
        ([1], "unknown capabilities"),
    ],
)
def test_capabilities_that_are_not_strings_are_named(
    value: object, match: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "caps.json"
    entry = {"provider": "openai", "id": "gpt-4o", "capabilities": value}
    path.write_text(json.dumps({"models": [entry]}), "utf-8")
    monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
    with pytest.raises(o.DataFormatError, match=rf"caps.json: models\[0\] .*{match}"):
        default_catalog()
