"""OpenAI Chat Completions in and out: the request checked and translated, the answer built.

Every field a client may send has a rule: translated (``messages``, ``max_tokens`` /
``max_completion_tokens``, ``temperature``, ``stream``, ``stream_options``), recorded (``user``,
``safety_identifier``), accepted only at its default (``n=1``, ``top_p=1``, ``stop=[]``...), or
refused with a 400 naming it (``tools``, ``response_format``, ``seed``...). Nothing is dropped.
A field OpenAI does not define is refused as OpenAI refuses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orkestra._types import Response, Usage
from orkestra.server.errors import ProxyError, bad_request, unsupported

__all__ = [
    "ChatParams",
    "ChunkFormatter",
    "completion_json",
    "dumps",
    "finish_reason",
    "orkestra_json",
    "parse_chat_request",
    "usage_json",
]

MAX_MESSAGES = 10_000


def dumps(value: Any) -> bytes:
    """Compact JSON; ASCII-escaped, so any text (even a lone surrogate) encodes."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


@dataclass(frozen=True)
class ChatParams:
    """A checked chat request, in the library's terms."""

    model: str
    messages: tuple[Mapping[str, str], ...]
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None

    @property
    def prompt(self) -> str | None:
        """The text when the conversation is a single user turn."""
        if len(self.messages) == 1 and self.messages[0]["role"] == "user":
            return self.messages[0]["content"]
        return None

    @property
    def last_user_text(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    def conversation(self) -> dict[str, Any]:
        """``prompt=`` for a single user turn, else ``messages=`` (system/user/assistant)."""
        prompt = self.prompt
        if prompt is not None:
            return {"prompt": prompt}
        return {"messages": [dict(m) for m in self.messages]}

    def options(self) -> dict[str, Any]:
        """``max_tokens`` and ``temperature``, when the client set them."""
        out: dict[str, Any] = {}
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            out["temperature"] = self.temperature
        return out


# -- checking the request --------------------------------------------------------------------


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _kind(value: object) -> str:
    """How OpenAI's errors name a JSON value's type."""
    if value is None:
        return "null"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def _wrong_type(param: str, expected: str, value: object) -> ProxyError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        param,
        "invalid_type",
    )


def _invalid(param: str, message: str) -> ProxyError:
    return bad_request(f"Invalid value for '{param}': {message}", param, "invalid_value")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(param: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(param, "the text is not valid Unicode (a lone surrogate).") from None
    return value


def _never(value: object) -> bool:
    return False


# Accepted at these values (they ask for nothing orkestra would have to do); refused otherwise.
_NEUTRAL: dict[str, tuple[Callable[[object], bool], str]] = {
    "tools": (lambda v: v == [], "tools (function calling)"),
    "tool_choice": (lambda v: v == "none", "tool_choice (function calling)"),
    "parallel_tool_calls": (lambda v: isinstance(v, bool), "parallel_tool_calls"),
    "functions": (lambda v: v == [], "functions (function calling)"),
    "function_call": (lambda v: v == "none", "function_call (function calling)"),
    "response_format": (
        lambda v: v == {"type": "text"},
        "response_format (structured output / JSON mode)",
    ),
    "top_p": (lambda v: _is_number(v) and v == 1, "top_p other than 1"),
    "stop": (lambda v: v == [], "stop sequences"),
    "n": (lambda v: _is_int(v) and v == 1, "n other than 1 (several choices)"),
    "presence_penalty": (lambda v: _is_number(v) and v == 0, "presence_penalty"),
    "frequency_penalty": (lambda v: _is_number(v) and v == 0, "frequency_penalty"),
    "logit_bias": (lambda v: v == {}, "logit_bias"),
    "logprobs": (lambda v: v is False, "logprobs"),
    "top_logprobs": (lambda v: _is_int(v) and v == 0, "top_logprobs"),
    "seed": (_never, "seed"),
    "store": (lambda v: v is False, "store (stored completions)"),
    "metadata": (lambda v: v == {}, "metadata (stored completions)"),
    "service_tier": (lambda v: v in ("auto", "default"), "service_tier"),
    "modalities": (lambda v: v == ["text"], "modalities other than text"),
    "audio": (_never, "audio output"),
    "prediction": (_never, "predicted outputs"),
    "reasoning_effort": (_never, "reasoning_effort"),
    "verbosity": (_never, "verbosity"),
    "web_search_options": (_never, "web search"),
    "prompt_cache_key": (_never, "prompt_cache_key"),
}

_HANDLED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "stream",
        "stream_options",
        "user",
        "safety_identifier",
    }
)

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_ASSISTANT_EMPTY_FIELDS = frozenset({"refusal", "tool_calls", "function_call", "audio"})


def parse_chat_request(body: object) -> ChatParams:
    """Check a ``/v1/chat/completions`` body; a :class:`ProxyError` (400) names what is wrong."""
    if not isinstance(body, dict):
        raise bad_request(
            f"The request body must be a JSON object, not {_kind(body)}.", None, "invalid_body"
        )
    for name, value in body.items():
        if name in _HANDLED or value is None:
            continue
        rule = _NEUTRAL.get(name)
        if rule is None:
            raise bad_request(
                f"Unrecognized request argument supplied: {name}", name, "unknown_parameter"
            )
        neutral, what = rule
        if not neutral(value):
            raise unsupported(name, what)

    model = body.get("model")
    if model is None:
        raise bad_request("you must provide a model parameter", "model", "missing_required")
    model = _text("model", model)
    messages = _messages(body.get("messages"))

    max_tokens = _max_tokens(body)
    temperature = body.get("temperature")
    if temperature is not None:
        if not _is_number(temperature):
            raise _wrong_type("temperature", "a decimal", temperature)
        if not (math.isfinite(temperature) and 0 <= temperature <= 2):
            raise _invalid("temperature", f"{temperature!r} is not in [0, 2].")
        temperature = float(temperature)

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    include_usage = _stream_options(body.get("stream_options"), bool(stream))

    user = body.get("user")
    if user is not None:
        user = _text("user", user)
    safety = body.get("safety_identifier")
    if safety is not None:
        safety = _text("safety_identifier", safety)
    return ChatParams(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        stream=bool(stream),
        include_usage=include_usage,
        user=user if user is not None else safety,
    )


def _max_tokens(body: Mapping[str, object]) -> int | None:
    found: dict[str, int] = {}
    for param in ("max_tokens", "max_completion_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if not _is_int(value):
            raise _wrong_type(param, "an integer", value)
        assert isinstance(value, int)
        if value < 1:
            raise _invalid(param, f"{value} is below the minimum of 1.")
        found[param] = value
    if len(set(found.values())) > 1:
        raise bad_request(
            "max_tokens and max_completion_tokens disagree; send one of them.",
            "max_completion_tokens",
            "invalid_value",
        )
    return next(iter(found.values()), None)


def _stream_options(value: object, stream: bool) -> bool:
    if value is None:
        return False
    if not isinstance(value, dict):
        raise _wrong_type("stream_options", "an object", value)
    if not stream:
        raise bad_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    include_usage = False
    for name, option in value.items():
        param = f"stream_options.{name}"
        if name == "include_usage":
            if option is not None and not isinstance(option, bool):
                raise _wrong_type(param, "a boolean", option)
            include_usage = bool(option)
        elif name == "include_obfuscation":
            if option is not None and not isinstance(option, bool):
                raise _wrong_type(param, "a boolean", option)
            # Padding against length side channels: orkestra adds none (only ever less).
        else:
            raise bad_request(f"Unrecognized stream option: {name}", param, "unknown_parameter")
    return include_usage


def _messages(value: object) -> tuple[Mapping[str, str], ...]:
    if value is None:
        raise bad_request("you must provide messages", "messages", "missing_required")
    if not isinstance(value, list):
        raise _wrong_type("messages", "an array", value)
    if not value:
        raise _invalid("messages", "empty array. Expected an array with minimum length 1.")
    if len(value) > MAX_MESSAGES:
        raise _invalid("messages", f"more than {MAX_MESSAGES} messages.")
    out = tuple(_message(i, m) for i, m in enumerate(value))
    if not any(m["role"] == "user" for m in out):
        raise _invalid("messages", "there is no user message: orkestra routes on the last one.")
    return out


def _message(index: int, value: object) -> dict[str, str]:
    where = f"messages[{index}]"
    if not isinstance(value, dict):
        raise _wrong_type(where, "an object", value)
    role = value.get("role")
    if not isinstance(role, str):
        raise _wrong_type(f"{where}.role", "a string", role)
    if role in ("tool", "function"):
        raise unsupported(f"{where}.role", f"{role} messages (function calling)")
    if role not in _ROLES:
        raise _invalid(
            f"{where}.role", f"{role!r}; supported: 'system', 'developer', 'user', 'assistant'."
        )
    for name, field_value in value.items():
        if name in ("role", "content"):
            continue
        param = f"{where}.{name}"
        if name == "name":
            raise unsupported(param, "participant names in messages")
        if role == "assistant" and name in _ASSISTANT_EMPTY_FIELDS:
            if field_value is None or field_value == []:
                continue
            raise unsupported(param, f"assistant {name}")
        raise bad_request(f"Unrecognized field in a message: {name}", param, "unknown_parameter")
    return {"role": _ROLES[role], "content": _content(f"{where}.content", value.get("content"))}


def _content(param: str, value: object) -> str:
    if value is None:
        raise bad_request(f"Missing '{param}': every message needs text content.", param)
    if isinstance(value, str):
        return _text(param, value)
    if not isinstance(value, list):
        raise _wrong_type(param, "a string or an array of content parts", value)
    if not value:
        raise _invalid(param, "empty array of content parts.")
    texts = []
    for i, part in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise _wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind != "text":
            if isinstance(kind, str):
                raise unsupported(f"{where}.type", f"{kind!r} content (only text is routed)")
            raise _wrong_type(f"{where}.type", "a string", kind)
        extra = set(part) - {"type", "text"}
        if extra:
            name = sorted(extra)[0]
            raise bad_request(f"Unrecognized field in a content part: {name}", f"{where}.{name}")
        texts.append(_text(f"{where}.text", part.get("text")))
    return "".join(texts)


# -- building the answer ---------------------------------------------------------------------

# Each provider's own finish reasons, as OpenAI names them (unknown ones: "stop").
_FINISH_REASONS = {
    # OpenAI
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "function_call",
    # Anthropic
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # Gemini
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}


def finish_reason(native: str | None) -> str:
    """OpenAI's ``finish_reason`` for a provider's own (``end_turn``, ``MAX_TOKENS``...)."""
    if native is None:
        return "stop"
    return _FINISH_REASONS.get(native, _FINISH_REASONS.get(native.upper(), "stop"))


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def orkestra_json(response: Response, ignored: Sequence[str] = ()) -> dict[str, Any]:
    """The ``orkestra`` extension object: where the request went, what it cost and saved, and
    which parameters the answering model could not take (``ignored_params``)."""
    routing = response.routing
    return {
        "provider": response.provider,
        "model": response.model,
        "tier": routing.tier,
        "strategy": routing.strategy,
        "cost_usd": response.total_cost,
        "savings_usd": response.base_cost - response.total_cost,
        "base_model": response.base_model,
        "base_cost_usd": response.base_cost,
        "routing_ms": routing.latency_ms,
        "attempts": len(response.attempts) or 1,
        "reason": routing.reason,
        "ignored_params": list(ignored),
    }


def completion_json(
    response: Response, *, request_id: str, created: int, ignored: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``chat.completion`` object for a finished call."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(response.finish_reason),
            }
        ],
        "usage": usage_json(response.usage),
        "system_fingerprint": None,
        "orkestra": orkestra_json(response, ignored),
    }


DONE = b"data: [DONE]\n\n"


def sse(value: Any) -> bytes:
    return b"data: " + dumps(value) + b"\n\n"


class ChunkFormatter:
    """The ``chat.completion.chunk`` events of one streamed answer, as SSE ``data:`` lines."""

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool) -> None:
        self.request_id, self.created, self.model = request_id, created, model
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]], model: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model or self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _delta(self, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

    def role(self) -> bytes:
        return sse(self._chunk([self._delta({"role": "assistant", "content": ""})]))

    def text(self, text: str) -> bytes:
        return sse(self._chunk([self._delta({"content": text})]))

    def finish(self, response: Response, ignored: Sequence[str] = ()) -> bytes:
        chunk = self._chunk(
            [self._delta({}, finish_reason(response.finish_reason))], response.model
        )
        chunk["orkestra"] = orkestra_json(response, ignored)
        return sse(chunk)

    def usage(self, response: Response, ignored: Sequence[str] = ()) -> bytes:
        chunk = self._chunk([], response.model)
        chunk["usage"] = usage_json(response.usage)
        chunk["orkestra"] = orkestra_json(response, ignored)
        return sse(chunk)
