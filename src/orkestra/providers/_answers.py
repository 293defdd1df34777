"""A whole answer read as the JSON the provider sent (``post(..., cast_to=object)`` in the
Stainless SDKs), and the fields the adapters read from it or from the SDK's typed objects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orkestra.providers._errors import malformed

__all__ = ["answer_object", "read_field"]


def read_field(value: Any, name: str) -> Any:
    """``name`` of an SDK object or of the JSON object it was made from (None when absent, or
    when ``value`` is None)."""
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def answer_object(body: Any, provider: str, model: str) -> dict[str, Any]:
    """``body`` as the JSON object a whole answer is: text sent under another content type than
    JSON is parsed (a body that is not JSON raises, and ``map_error`` makes that a
    :class:`~orkestra.errors.MalformedResponseError`); any other JSON value is one already."""
    if isinstance(body, str | bytes):
        body = json.loads(body)
    if not isinstance(body, dict):
        raise malformed(provider, model, f"JSON {type(body).__name__}, not an object")
    return body
