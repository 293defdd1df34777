"""BERT uncased WordPiece, word by word, for the plain-ASCII parts of a text.

The static embedder's tokenizer (``tokenizer.json``: BertNormalizer, BertPreTokenizer, WordPiece)
costs about 0.25 µs per character of a long prompt even on its fastest path, which made
tokenizing the largest part of a routing decision's tail. Most of that is generic work that a
plain-ASCII stretch of text does not need. For such a stretch the whole pipeline comes down to:

- normalising is lowercasing (no accents, CJK characters or control characters to handle;
  tab, newline and carriage return are whitespace either way);
- pre-tokenizing splits on whitespace and isolates each of the 32 ASCII punctuation marks, so the
  words are the runs of ``[a-z0-9]`` and the single marks in between;
- WordPiece is greedy longest-match-first per word, so a word that is itself in the vocabulary
  is its own single token, which is what most words of running text are: one dict lookup. The
  other words go to the tokenizer's WordPiece model one by one, and are remembered.

Every step is local to a word, and whitespace ends a word in both the normaliser and the
pre-tokenizer, so a text can be cut at ASCII whitespace into stretches tokenized separately. The
stretches with anything else in them (non-ASCII or control characters) go to the real tokenizer,
all in one call, and the pieces are joined in order; a text with a literal added token such as
``[UNK]`` goes to it whole.
:func:`AsciiWordPiece.from_tokenizer_json` builds this only for the exact configuration it is
known to reproduce; tests compare it with the real tokenizer on generated and real text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["AsciiWordPiece", "Encode"]

Encode = Callable[[str], tuple[Sequence[int], Sequence[tuple[int, int]]]]
"""A tokenizer's token ids of one text, and each token's ``(start, end)`` characters in it."""

# Words of lowercased plain ASCII: runs of letters and digits, and each punctuation mark alone.
_WORDS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
# Anything but printable ASCII, tab, newline and carriage return; and the whitespace that ends
# a stretch of text holding such a character.
_ODD_CHAR = re.compile(r"[^ -~\t\n\r]")
_SPACE = re.compile(r"[ \t\n\r]")

_BERT_NORMALIZER = {
    "type": "BertNormalizer",
    "clean_text": True,
    "handle_chinese_chars": True,
    "strip_accents": None,
    "lowercase": True,
}

#: Words that are not vocabulary entries, remembered with their pieces (then forgotten at once).
_CACHE_LIMIT = 1 << 16


def _odd_stretches(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each whitespace-delimited stretch of ``text`` that holds a character
    other than printable ASCII, tab, newline and carriage return, in order."""
    spans: list[tuple[int, int]] = []
    done = 0
    for match in _ODD_CHAR.finditer(text):
        at = match.start()
        if at < done:
            continue  # inside the stretch just taken
        start = 1 + max(text.rfind(space, done, at) for space in " \t\n\r")
        after = _SPACE.search(text, at)
        done = after.start() if after is not None else len(text)
        spans.append((start, done))
    return spans


class AsciiWordPiece:
    """Token ids of a text, with plain-ASCII stretches tokenized here and the rest by the real
    tokenizer: ``encode`` gives the ids of a text and each token's ``(start, end)`` characters
    in it, ``word_pieces`` the WordPiece model's ids of one word."""

    def __init__(
        self,
        vocab: Mapping[str, int],
        *,
        max_chars: int,
        added_tokens: Sequence[str],
        encode: Encode,
        word_pieces: Callable[[str], list[int]],
    ) -> None:
        # A word that is a vocabulary entry is that one token (the longest match is the whole
        # word), unless it is longer than WordPiece takes at all.
        self._vocab = {word: i for word, i in vocab.items() if len(word) <= max_chars}
        self._added = tuple(added_tokens)
        self._encode = encode
        self._word_pieces = word_pieces
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_tokenizer_json(
        cls,
        config: Mapping[str, Any],
        encode: Encode,
        word_pieces: Callable[[str], list[int]],
    ) -> AsciiWordPiece | None:
        """The shortcut for a parsed ``tokenizer.json`` and that tokenizer's calls, or None when
        its pipeline is not the BERT-uncased one this module reproduces exactly."""
        model = config.get("model")
        added = config.get("added_tokens") or []
        if (
            config.get("normalizer") != _BERT_NORMALIZER
            or config.get("pre_tokenizer") != {"type": "BertPreTokenizer"}
            or config.get("post_processor") is not None
            or not isinstance(model, dict)
            or model.get("type") != "WordPiece"
            or not isinstance(model.get("vocab"), dict)
            or not isinstance(model.get("max_input_chars_per_word"), int)
            or not all(isinstance(t, dict) and isinstance(t.get("content"), str) for t in added)
        ):
            return None
        contents = [str(t["content"]) for t in added]
        if any(not c or c.strip() != c or " " in c for c in contents):
            return None  # an added token spanning whitespace would break the stretch cut
        return cls(
            model["vocab"],
            max_chars=model["max_input_chars_per_word"],
            added_tokens=contents,
            encode=encode,
            word_pieces=word_pieces,
        )

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens), as the full tokenizer gives them."""
        if any(token in text for token in self._added):
            return list(self._encode(text)[0])  # added tokens match as written, anywhere
        if _ODD_CHAR.search(text) is None:
            return self._ascii_ids(text)
        # Plain parts here; the odd stretches through the real tokenizer, all in one call on
        # them joined by spaces, each token given back to its stretch by where it starts.
        spans = _odd_stretches(text)
        starts: list[int] = []
        at = 0
        for start, end in spans:
            starts.append(at)
            at += end - start + 1
        ids, offsets = self._encode(" ".join(text[start:end] for start, end in spans))
        odd_ids: list[list[int]] = [[] for _ in spans]
        for token, (begin, _) in zip(ids, offsets, strict=True):
            odd_ids[bisect.bisect_right(starts, begin) - 1].append(token)
        out: list[int] = []
        done = 0
        for (start, end), stretch_ids in zip(spans, odd_ids, strict=True):
            out += self._ascii_ids(text[done:start])
            out += stretch_ids
            done = end
        out += self._ascii_ids(text[done:])
        return out

    def _ascii_ids(self, text: str) -> list[int]:
        words = _WORDS.findall(text.lower())
        vocab_get = self._vocab.get
        ids = [vocab_get(word) for word in words]
        if None not in ids:
            return ids  # type: ignore[return-value]  # no None in it
        out: list[int] = []
        for word, token in zip(words, ids, strict=True):
            if token is None:
                out += self._pieces(word)
            else:
                out.append(token)
        return out

    def _pieces(self, word: str) -> list[int]:
        """WordPiece ids of a word that is not a vocabulary entry (remembered)."""
        pieces = self._cache.get(word)
        if pieces is None:
            pieces = self._word_pieces(word)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = pieces
        return pieces
