"""The optional parameters of a request (``stop``, ``top_p``, ``seed``, ``parallel_tool_calls``,
``reasoning_effort``, the penalties, ``logit_bias``), checked by OpenAI's rules and handed to
the library under its names (:class:`~orkestra.ModelParams`), which sends each where the
answering model takes it and reports the rest in ``Response.ignored_params``.

Strict mode (``server.strict_params`` or the ``x-orkestra-strict-params: true`` header) refuses,
before anything is sent, a parameter some model the request may go to cannot take
(:meth:`~orkestra.server.dispatch.Dispatcher.strict_problem`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from orkestra.server.fields import invalid, is_int, is_number, text_field, wrong_type

__all__ = [
    "MAX_STOP_SEQUENCES",
    "PARAMS",
    "REASONING_EFFORTS",
    "STRICT_HEADER",
    "parse_params",
    "parse_stop",
    "strict_requested",
]

PARAMS = (
    "stop",
    "top_p",
    "seed",
    "parallel_tool_calls",
    "reasoning_effort",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
)
"""The wire names, which are the library's (``orkestra.ParamArgs``)."""
MAX_STOP_SEQUENCES = 4
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
STRICT_HEADER = "x-orkestra-strict-params"
_RANGES = {"top_p": (0.0, 1.0), "presence_penalty": (-2.0, 2.0), "frequency_penalty": (-2.0, 2.0)}
_INT64 = 2**63


def strict_requested(header: str | None, configured: bool) -> bool:
    """Strict mode for one request: the config's, unless the header says otherwise."""
    if header is None:
        return configured
    return header.strip().lower() in ("1", "true", "yes", "on")


def parse_stop(param: str, value: object, limit: int | None = MAX_STOP_SEQUENCES) -> list[str]:
    """A string or an array of (at most ``limit``) non-empty strings."""
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list):
        raise wrong_type(param, "a string or an array of strings", value)
    if limit is not None and len(stops) > limit:
        raise invalid(param, f"{len(stops)} stop sequences; at most {limit} are allowed.")
    out = []
    for i, item in enumerate(stops):
        where = param if isinstance(value, str) else f"{param}[{i}]"
        text = text_field(where, item)
        if not text:
            raise invalid(where, "a stop sequence may not be empty.")
        out.append(text)
    return out


def parse_number(param: str, value: object, low: float, high: float) -> float:
    if not is_number(value):
        raise wrong_type(param, "a decimal", value)
    assert isinstance(value, (int, float))
    if not (math.isfinite(value) and low <= value <= high):
        raise invalid(param, f"{value!r} is not in [{low:g}, {high:g}].")
    return float(value)


def parse_effort(param: str, value: object) -> str:
    if value not in REASONING_EFFORTS:
        shown = repr(value) if isinstance(value, str) else f"a {type(value).__name__}"
        raise invalid(param, f"{shown}; supported: {', '.join(map(repr, REASONING_EFFORTS))}.")
    assert isinstance(value, str)
    return value


def _logit_bias(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        raise wrong_type("logit_bias", "an object", value)
    out = {}
    for token, bias in value.items():
        if not token.isdigit():
            raise invalid("logit_bias", f"{token!r} is not a token id.")
        out[token] = parse_number(f"logit_bias.{token}", bias, -100, 100)
    return out


def parse_params(body: Mapping[str, object], *, has_tools: bool) -> dict[str, Any]:  # noqa: PLR0912 (one branch per parameter)
    """The optional parameters of a Chat Completions body, checked, by the library's names.
    ``parallel_tool_calls`` without tools, or true (the default), asks for nothing and is
    left out."""
    out: dict[str, Any] = {}
    stop = body.get("stop")
    if stop is not None:
        stops = parse_stop("stop", stop)
        if stops:
            out["stop"] = stops
    for param, (low, high) in _RANGES.items():
        if body.get(param) is not None:
            out[param] = parse_number(param, body[param], low, high)
    seed = body.get("seed")
    if seed is not None:
        if not is_int(seed):
            raise wrong_type("seed", "an integer", seed)
        assert isinstance(seed, int)
        if not -_INT64 <= seed < _INT64:
            raise invalid("seed", "it must fit in 64 bits.")
        out["seed"] = seed
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise wrong_type("parallel_tool_calls", "a boolean", parallel)
        if has_tools and not parallel:  # true: what every provider does anyway
            out["parallel_tool_calls"] = False
    if body.get("reasoning_effort") is not None:
        out["reasoning_effort"] = parse_effort("reasoning_effort", body["reasoning_effort"])
    if body.get("logit_bias") is not None:
        bias = _logit_bias(body["logit_bias"])
        if bias:
            out["logit_bias"] = bias
    return out
