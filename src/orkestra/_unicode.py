"""Text must be valid Unicode before anything is sent.

A Python ``str`` can hold a lone UTF-16 surrogate (U+D800–U+DFFF): a ``"\\ud800"`` literal, a
JSON ``"\\ud800"`` escape, half of an emoji cut out of a UTF-16 string, or bytes decoded with
``errors="surrogateescape"``. No UTF-8 encoder accepts one, so without this check the call fails
deep down (a bare ``TypeError`` in the tokenizer, or a "connection error" in the SDK's HTTP layer
that the resilience layer retries). We look for them once, in everything a call sends, and say
where the bad character is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from orkestra.errors import InvalidRequestError

__all__ = ["LoneSurrogate", "check_unicode", "find_lone_surrogate"]


@dataclass(frozen=True)
class LoneSurrogate:
    """Where a lone surrogate is: the path to the string (``messages[1].content``; for a
    mapping's key, the mapping's path and ``in_key``), the index of the character in it, and
    the character's code point."""

    path: str
    index: int
    codepoint: int
    in_key: bool = False

    @property
    def where(self) -> str:
        if self.in_key:
            return f"a key of {self.path}" if self.path else "a key"
        return self.path or "the text"

    def describe(self) -> str:
        where = self.where
        return (
            f"{where}: character {self.index} is a lone surrogate (U+{self.codepoint:04X}), "
            "which is not valid Unicode: it cannot be encoded as UTF-8 or sent; fix the text "
            "(was it decoded with errors='surrogateescape', or an emoji cut in half?)"
        )


def _bad_char(text: str) -> int | None:
    """The index of the first lone surrogate in ``text``, or None (fast: C encoders)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def _key_path(path: str, key: object) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def find_lone_surrogate(value: object, path: str = "") -> LoneSurrogate | None:
    """The first lone surrogate in ``value``: a string, or mappings (keys and values),
    lists, tuples and dataclasses of them, nested to any depth (walked without recursion)."""
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            index = _bad_char(item)
            if index is not None:
                return LoneSurrogate(where, index, ord(item[index]))
        elif isinstance(item, Mapping):
            for key in item:
                index = _bad_char(key) if isinstance(key, str) else None
                if index is not None:
                    return LoneSurrogate(where, index, ord(key[index]), in_key=True)
            stack.extend((_key_path(where, k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(
                (_key_path(where, f.name), getattr(item, f.name))
                for f in reversed(dataclasses.fields(item))
            )
    return None


def check_unicode(value: object, path: str = "") -> None:
    """Raise :class:`InvalidRequestError` (naming the place) if ``value`` holds a lone
    surrogate anywhere."""
    if value is None:  # most optional arguments of most calls: nothing to walk
        return
    found = find_lone_surrogate(value, path)
    if found is not None:
        raise InvalidRequestError(found.describe())
