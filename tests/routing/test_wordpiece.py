"""The word-by-word WordPiece shortcut gives the bundled tokenizer's ids, token for token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orkestra.routing.embedder import DEFAULT_ASSETS_DIR, StaticEmbedder
from orkestra.routing.wordpiece import AsciiWordPiece

ROOT = Path(__file__).resolve().parents[2]


def _full_ids(texts: list[str]) -> list[list[int]]:
    tokenizer = StaticEmbedder.default()._load().tokenizer
    return [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def _no_word(word: str) -> list[int]:
    raise AssertionError("not called")


def _no_text(text: str) -> tuple[list[int], list[tuple[int, int]]]:
    raise AssertionError("not called")


def _words() -> AsciiWordPiece:
    words = StaticEmbedder.default()._load().words
    assert words is not None  # the bundled tokenizer is the pipeline the shortcut reproduces
    return words


# Characters where the shortcut's cut could go wrong: every kind of ASCII (controls included),
# non-ASCII letters with accents (decomposed and not), punctuation outside ASCII, CJK, Unicode
# whitespace and format characters, an emoji, and what Python but not BERT calls whitespace.
_ALPHABET = st.sampled_from(
    [chr(c) for c in range(128)]
    + list("éÉñÅßøœ’“”—…€中文日本\u00a0\u3000\u2009\u0301\u0308\u200b\u200d\ufeff\U0001f600")
    + ["\x1c", "\x1d", "\x85", "\u2028"]
)
_PIECES = st.sampled_from(
    [
        "[UNK]",
        "[PAD]",
        "[unk]",
        "unaffable",
        "Tokenization",
        "x86_64",
        "don't",
        "naïve",
        "cafe\u0301",
        "a" * 101,
        "b" * 100,
        "##ing",
        "HTTPServer",
        "\r\n",
    ]
)
_TEXTS = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=120),
    st.lists(st.one_of(_PIECES, st.text(alphabet=_ALPHABET, max_size=8)), max_size=30).map(
        " ".join
    ),
    st.text(max_size=60),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXTS, min_size=1, max_size=4))
def test_same_ids_as_the_tokenizer(texts: list[str]) -> None:
    words = _words()
    assert [words.ids(t) for t in texts] == _full_ids(texts)


def _repo_prompts() -> list[str]:
    prompts = [
        json.loads(line)["prompt"]
        for line in (ROOT / "data" / "everyday.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    for line in (ROOT / "tests/routing/data/ordinary_pairs.jsonl").read_text().splitlines():
        pair = json.loads(line)
        prompts += [pair["easy"], pair["hard"]]
    return prompts


def test_same_ids_on_real_prompts() -> None:
    prompts = _repo_prompts()
    assert len(prompts) > 800
    words = _words()
    assert [words.ids(p) for p in prompts] == _full_ids(prompts)


def test_mixed_text_is_cut_at_whitespace_only() -> None:
    text = "Résumé of the naïve café—owner’s HTTPServer logs:\tERROR\x0b42 中文 done"
    assert _words().ids(text) == _full_ids([text])[0]


def _toy(**model: Any) -> dict[str, Any]:
    vocab = {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "a": 4, "hello": 6, ",": 7}
    return {
        "normalizer": {
            "type": "BertNormalizer",
            "clean_text": True,
            "handle_chinese_chars": True,
            "strip_accents": None,
            "lowercase": True,
        },
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": None,
        "added_tokens": [{"content": "[UNK]"}],
        "model": {
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 12,
            "vocab": vocab,
        }
        | model,
    }


def test_vocabulary_words_are_looked_up_and_others_asked_once() -> None:
    asked: list[str] = []

    def no_texts(text: str) -> tuple[list[int], list[tuple[int, int]]]:
        raise AssertionError(f"plain ASCII went to the tokenizer: {text!r}")

    def word_pieces(word: str) -> list[int]:
        asked.append(word)
        return [100 + len(word)]

    words = AsciiWordPiece.from_tokenizer_json(_toy(), no_texts, word_pieces)
    assert words is not None
    assert words.ids("Hello, UN hello") == [6, 7, 1, 6]  # lowercased, "," alone, no lookups
    assert asked == []
    assert words.ids("hello unaffable zzz unaffable") == [6, 109, 103, 109]
    assert asked == ["unaffable", "zzz"]  # each word once
    assert words.ids("zzz unaffable") == [103, 109]  # remembered
    assert asked == ["unaffable", "zzz"]
    # Past max_input_chars_per_word even a vocabulary entry is not a single token.
    config = _toy()
    config["model"]["vocab"] = config["model"]["vocab"] | {"abcdefghijklm": 9}
    long_words = AsciiWordPiece.from_tokenizer_json(config, no_texts, word_pieces)
    assert long_words is not None
    assert long_words.ids("abcdefghijklm") == [113]


def test_model_word_pieces_are_the_tokenizers() -> None:
    # The shortcut's per-word call is the tokenizer's own WordPiece model.
    tokenizer = StaticEmbedder.default()._load().tokenizer
    for word in ["unaffable", "kubernetes", "x" * 101, "b2c", "zzzqqq"]:
        model_ids = [t.id for t in tokenizer.model.tokenize(word)]
        assert model_ids == _full_ids([word])[0]


@pytest.mark.parametrize(
    "change",
    [
        {"normalizer": None},
        {"pre_tokenizer": {"type": "Whitespace"}},
        {"post_processor": {"type": "BertProcessing"}},
        {"added_tokens": [{"content": "new line"}]},
    ],
)
def test_other_pipelines_get_no_shortcut(change: dict[str, Any]) -> None:
    assert AsciiWordPiece.from_tokenizer_json(_toy() | change, _no_text, _no_word) is None


def test_other_models_get_no_shortcut() -> None:
    config = _toy()
    config["model"]["type"] = "BPE"
    assert AsciiWordPiece.from_tokenizer_json(config, _no_text, _no_word) is None


def test_normalizer_variants_get_no_shortcut() -> None:
    config = _toy()
    config["normalizer"] = dict(config["normalizer"], lowercase=False)
    assert AsciiWordPiece.from_tokenizer_json(config, _no_text, _no_word) is None


def test_bundled_tokenizer_json_gets_the_shortcut() -> None:
    config = json.loads((DEFAULT_ASSETS_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    assert AsciiWordPiece.from_tokenizer_json(config, _no_text, _no_word) is not None
