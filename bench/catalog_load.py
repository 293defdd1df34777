"""Benchmark loading an ``ORKESTRA_CATALOG`` file of many model entries.

    .venv/bin/python bench/catalog_load.py                 # 1k, 5k and 20k entries
    .venv/bin/python bench/catalog_load.py --sizes 20000   # just one size

Each size is a JSON file of that many new models (half OpenAI, half Anthropic, each with its
own price, capabilities and limits), plus one override of an existing model and one tier
choice. After a warm-up load of 10 entries, each size is loaded through
``orkestra.catalog.default_catalog()`` (a new path each time, so a fresh build). Prints the time
per size, per entry, and each size's per-entry time over the smallest's: ~1× means the load is
linear in the number of entries, ~N× (N: the size ratio) quadratic.

Then the same for ``register_model()`` called once per model (``--register`` sizes, no file),
followed by one ``default_catalog()``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def catalog_file(directory: Path, entries: int) -> Path:
    models: list[dict[str, object]] = [
        {
            "provider": "openai" if i % 2 else "anthropic",
            "id": f"ft:bench-model-{i}",
            "input_price": 0.1 + i % 7,
            "output_price": 0.4 + i % 11,
            "context_window": 128_000,
            "max_output_tokens": 8192,
            "capabilities": ["tools", "json"],
        }
        for i in range(entries - 1)
    ]
    models.append(
        {"provider": "openai", "id": "gpt-4o", "context_window": 100_000, "tier": "balanced"}
    )
    path = directory / f"catalog-{entries}.json"
    path.write_text(json.dumps({"models": models}), "utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--register", type=int, nargs="*", default=[500, 2000])
    args = parser.parse_args()

    from orkestra.catalog import _default, bundled_catalog, default_catalog, register_model

    bundled_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ORKESTRA_CATALOG"] = str(catalog_file(Path(tmp), 10))
        default_catalog()  # warm: the lazy imports a first load does
        rows = []
        for size in args.sizes:
            path = catalog_file(Path(tmp), size)
            os.environ["ORKESTRA_CATALOG"] = str(path)
            started = time.perf_counter()
            catalog = default_catalog()
            elapsed = time.perf_counter() - started
            assert catalog.model("openai", f"ft:bench-model-{size - 3}").context_window == 128_000
            rows.append((size, elapsed))
    report("ORKESTRA_CATALOG file", rows)

    del os.environ["ORKESTRA_CATALOG"]
    rows = []
    for size in args.register:
        _default._reset_registered()
        started = time.perf_counter()
        for i in range(size):
            register_model("openai", f"ft:bench-{i}", input_price=0.5, output_price=1.5)
        default_catalog()
        rows.append((size, time.perf_counter() - started))
    if rows:
        report("register_model() once per model", rows)


def report(title: str, rows: list[tuple[int, float]]) -> None:
    base = rows[0][1] / rows[0][0]
    print(f"{title}\n{'entries':>8} {'load':>10} {'per entry':>11} {'per-entry ratio':>16}")
    for size, elapsed in rows:
        per = elapsed / size
        print(f"{size:>8} {elapsed:>9.3f}s {per * 1e6:>9.1f}µs {per / base:>15.2f}×")


if __name__ == "__main__":
    main()
