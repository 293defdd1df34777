"""Checking a JSON Schema a caller sent (``response_format``, a tool's ``parameters``): bounded
first, then checked against its metaschema, once per distinct schema.

``jsonschema`` checks a schema in pure Python, recursively, at about 20 ms per KB on a busy
core: a 3 MB schema took a minute, and a few hundred levels of nesting ran into Python's
recursion limit. So a schema is first measured without recursion — at most
:data:`MAX_SCHEMA_DEPTH` levels of JSON nesting and :data:`MAX_SCHEMA_BYTES` of JSON — and only
then checked; a schema seen recently (the same JSON) is not checked again. The library
(:meth:`~orkestra._request.ResponseFormat.schema_problem`, a tool's ``parameters``) and the
proxy (``server/request.py``) both ask these two functions, and refuse what they name before
anything is sent.

These are orkestra's limits, above what providers accept for structured output (OpenAI: 10
levels of object nesting, 5,000 properties), so a schema a provider takes is never refused here.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "SchemaProblem",
    "limits_problem",
    "schema_problem",
]

MAX_SCHEMA_DEPTH = 64
"""Levels of JSON nesting (each object or array is one; a property's schema is two below its
parent's: ``properties``, then the property)."""
MAX_SCHEMA_BYTES = 64 * 1024
"""Bytes of the schema as compact JSON."""

_CHECKED_CAPACITY = 512


@dataclass(frozen=True)
class SchemaProblem:
    """Why a schema cannot be used: ``message``, and ``code`` (``"schema_too_deep"``,
    ``"schema_too_large"`` or ``"invalid_schema"``)."""

    message: str
    code: str

    def __str__(self) -> str:
        return self.message


def _depth_over(value: object, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` containers (no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"), sort_keys=True, default=str)


def limits_problem(schema: Mapping[str, Any]) -> SchemaProblem | None:
    """Whether ``schema`` is too deep or too large (measured without recursion)."""
    return _measure(schema)[0]


def _measure(schema: Mapping[str, Any]) -> tuple[SchemaProblem | None, str]:
    if _depth_over(schema, MAX_SCHEMA_DEPTH):
        return SchemaProblem(
            f"the schema nests more than {MAX_SCHEMA_DEPTH} levels deep (JSON objects and "
            "arrays); use $defs and $ref for recursive or repeated parts",
            "schema_too_deep",
        ), ""
    text = _canonical(schema)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SCHEMA_BYTES:
        return SchemaProblem(
            f"the schema is {size:,} bytes of JSON; at most {MAX_SCHEMA_BYTES:,} are accepted",
            "schema_too_large",
        ), text
    return None, text


class _Checked:
    """The schemas (by sha256 of their canonical JSON) that passed their metaschema lately."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, digest: bytes) -> bool:
        with self._lock:
            if digest in self._seen:
                self._seen.move_to_end(digest)
                return True
            return False

    def add(self, digest: bytes) -> None:
        with self._lock:
            self._seen[digest] = None
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


_checked = _Checked(_CHECKED_CAPACITY)


def schema_problem(schema: Mapping[str, Any]) -> SchemaProblem | None:
    """Why ``schema`` cannot be used, or None: within the limits and a valid JSON Schema (of the
    draft its ``$schema`` names, else the latest). A schema that passed lately passes at once."""
    problem, text = _measure(schema)
    if problem is not None:
        return problem
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    if digest in _checked:
        return None
    import jsonschema  # only calls with a schema pay for the import

    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except jsonschema.SchemaError as error:
        return SchemaProblem(f"not a valid JSON Schema: {error.message}", "invalid_schema")
    except RecursionError:  # pragma: no cover - the depth limit is far below Python's
        return SchemaProblem("the schema nests too deeply", "schema_too_deep")
    _checked.add(digest)
    return None
