"""Pieces shared by the three protocol modules: requests, replies, the generated answer."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._models import ProviderName
from ._script import Fault, Reply

JSONObject = dict[str, Any]

# Anthropic's error types, used to name in-stream errors, and the HTTP status each stands for.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


@dataclass(frozen=True)
class Incoming:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes
    body: Any  # parsed JSON, or None when empty or not JSON
    body_error: bool  # a body was sent but is not valid JSON


@dataclass(frozen=True)
class Route:
    """Where a request goes: the provider, the endpoint and its parameters."""

    provider: ProviderName
    endpoint: str  # "chat", "responses", "messages", "count_tokens", "generate", "models", ...
    model: str | None = None
    stream: bool = False
    api_version: str | None = None  # Gemini: "v1" or "v1beta"
    method: str | None = None  # Gemini: generateContent, streamGenerateContent, ...
    sse: bool = True  # Gemini streams as SSE only with ?alt=sse (else one JSON array)

    @property
    def generates(self) -> bool:
        """True for the endpoints that produce model output (and so consume script items)."""
        return self.endpoint in ("chat", "responses", "messages", "generate")


@dataclass(frozen=True)
class HttpReply:
    """A complete, non-streaming HTTP response."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


@dataclass(frozen=True)
class StreamReply:
    """A streamed response: frames sent as HTTP chunks; ``complete`` False cuts the body."""

    frames: list[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = True
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"


@dataclass(frozen=True)
class FakeTool:
    """A tool the request offers: its name and its arguments' JSON Schema."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake answers with (``arguments`` is JSON text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Prompt:
    """What the generator needs to know about a request."""

    text: str  # every piece of message/system text, concatenated
    last_user: str  # the text of the last user message
    max_output: int | None  # the request's output-token cap, if any
    tools: tuple[FakeTool, ...] = ()
    tool_mode: str = "auto"  # "auto", "none", "required"
    forced_tool: str | None = None  # tool_choice naming one function
    tool_results: tuple[str, ...] = ()  # the results, when the last turn answers tool calls
    schema: Mapping[str, Any] | None = None  # structured output: the answer's JSON Schema
    json_mode: bool = False  # any JSON object (no schema)
    segments: tuple[str, ...] = ()
    """The prompt in order (system, tools, each turn) as canonical strings: the prompt cache
    matches on whole leading segments."""
    cache_upto: int | None = None
    """How many leading segments may be cached: None = all (OpenAI's and Gemini's automatic
    caching); Anthropic: up to the last ``cache_control`` breakpoint (0 = none)."""
    stop: tuple[str, ...] = ()
    """Stop sequences: the answer ends before the first one it would write."""


@dataclass(frozen=True)
class Generation:
    """A provider-independent answer: text, its stream deltas, usage totals, finish reason."""

    model: str
    text: str
    deltas: list[str]
    input_tokens: int  # total prompt, cache included
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int  # total output, reasoning included
    reasoning_tokens: int
    finish: str  # "stop", "length", "tool_calls" or a provider-native value
    tool_calls: tuple[FakeToolCall, ...] = ()
    logprobs: tuple[tuple[str, float], ...] = ()  # (token, log probability) of the text
    stop_sequence: str | None = None  # the stop sequence the answer ended at, if one

    @property
    def visible_tokens(self) -> int:
        return self.output_tokens - self.reasoning_tokens


@dataclass(frozen=True)
class StreamPlan:
    """How a stream should go wrong, if at all."""

    cut_after: int | None = None
    error_after: int | None = None
    error_type: str = "overloaded_error"
    error_message: str = "Overloaded"

    @classmethod
    def from_fault(cls, fault: Fault | None) -> StreamPlan:
        if fault is not None and fault.kind == "cut_stream":
            return cls(cut_after=fault.after_chunks)
        if fault is not None and fault.kind == "stream_error":
            return cls(
                error_after=fault.after_chunks,
                error_type=fault.error_type,
                error_message=fault.message or "Overloaded",
            )
        return cls()

    def stop_at(self, n_deltas: int) -> int:
        """How many deltas to send before cutting or failing."""
        limit = self.cut_after if self.cut_after is not None else self.error_after
        return n_deltas if limit is None else min(limit, n_deltas)


class ProtocolHandler(Protocol):
    """What each provider module implements for the server."""

    def check(self, incoming: Incoming, route: Route) -> HttpReply | None:
        """Authenticate and validate; an error reply, or None if the request is fine."""

    def prompt(self, route: Route, body: JSONObject) -> Prompt: ...

    def complete(self, route: Route, body: JSONObject, gen: Generation) -> HttpReply: ...

    def stream(
        self, route: Route, body: JSONObject, gen: Generation, plan: StreamPlan
    ) -> StreamReply: ...

    def error(self, route: Route, fault: Fault) -> HttpReply:
        """The reply for ``Fault.status`` (or a ``stream_error`` on a non-streaming request)."""

    def other(self, incoming: Incoming, route: Route) -> HttpReply:
        """Non-generating endpoints (model lists, token counts) and unknown paths."""


# ---------------------------------------------------------------- helpers


def dumps(obj: object, *, indent: int | None = None) -> bytes:
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators).encode()


def json_reply(status: int, obj: object, headers: list[tuple[str, str]] | None = None) -> HttpReply:
    return HttpReply(status, dumps(obj), list(headers or []))


def sse(data: object, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One server-sent event frame (``data`` is JSON-encoded unless it is already a str)."""
    payload = data if isinstance(data, str) else dumps(data).decode()
    eol = "\r\n" if crlf else "\n"
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {payload}{eol}{eol}".encode()


def count_tokens(text: str) -> int:
    """The fake's tokenizer: about four characters a token."""
    return math.ceil(len(text) / 4)


def text_of(content: object) -> str:
    """The text in a message ``content``: a string or a list of blocks/parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        value = content.get("text")
        return value if isinstance(value, str) else ""
    if isinstance(content, list):
        return "\n".join(t for t in (text_of(part) for part in content) if t)
    return ""


DEFAULT_LOGPROB = -0.01


def token_logprobs(text: str, values: Sequence[float] | None) -> tuple[tuple[str, float], ...]:
    """The text's tokens (the fake's: 4-character pieces, as :func:`count_tokens` counts them)
    with a log probability each, taken from ``values`` in turn."""
    cycle = list(values) if values else [DEFAULT_LOGPROB]
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    return tuple((piece, float(cycle[i % len(cycle)])) for i, piece in enumerate(pieces))


def split_deltas(text: str) -> list[str]:
    """Split ``text`` into stream deltas: at least three when it has three characters."""
    words = re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    if len(words) < 3:
        if len(text) < 3:
            return [text] if text else []
        cuts = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
        return [text[a:b] for a, b in itertools.pairwise(cuts)]
    size = max(1, math.ceil(len(words) / 16))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def default_text(model: str, last_user: str) -> str:
    words = last_user.split()[:12]
    answer = " ".join(words) if words else "Hello from the fake provider."
    return f"[{model}] {answer}"


_SCALARS: dict[str, Any] = {"integer": 1, "number": 1.5, "boolean": True, "null": None}


def sample_json(schema: Any, name: str = "value") -> Any:
    """A small deterministic instance of a JSON Schema (enough for the fake's answers)."""
    if not isinstance(schema, Mapping):
        return f"example {name}"
    if "const" in schema or schema.get("enum"):
        return schema["const"] if "const" in schema else schema["enum"][0]
    branches = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if branches:
        return sample_json(branches[0], name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {k: sample_json(v, k) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [sample_json(schema.get("items", {}), name)]
    return schema.get("minimum", _SCALARS[kind]) if kind in _SCALARS else f"example {name}"


def _tool_calls(model: str, prompt: Prompt, reply: Reply) -> tuple[FakeToolCall, ...]:
    if reply.tool_calls is not None:
        chosen = [(name, json.dumps(args)) for name, args in reply.tool_calls]
    elif (
        not prompt.tools
        or prompt.tool_mode == "none"
        or reply.text is not None
        or (prompt.tool_results and prompt.tool_mode != "required" and prompt.forced_tool is None)
    ):
        return ()
    else:
        tool = next((t for t in prompt.tools if t.name == prompt.forced_tool), prompt.tools[0])
        chosen = [(tool.name, json.dumps(sample_json(tool.parameters)))]
    stem = re.sub(r"[^a-z0-9]", "", model.lower())[-6:] or "model"
    return tuple(
        FakeToolCall(f"call_{stem}_{i}_{abs(hash((prompt.text, name))) % 10**8:08d}", name, args)
        for i, (name, args) in enumerate(chosen)
    )


def _default_text(model: str, prompt: Prompt) -> str:
    if prompt.schema is not None:
        return json.dumps(sample_json(prompt.schema))
    if prompt.json_mode:
        return json.dumps({"answer": default_text(model, prompt.last_user)})
    if prompt.tool_results:
        return f"[{model}] tool results: " + "; ".join(prompt.tool_results)
    return default_text(model, prompt.last_user)


class PromptCache:
    """The fake's prompt cache: the leading segments of every prompt a model has seen.

    A request whose first segments match an earlier request's (for the same model) reads those
    tokens from the cache; the rest is written. Prefixes under ``min_tokens`` are never cached
    (1024, the smallest cacheable prompt at OpenAI, Anthropic's Sonnet and Gemini Flash).
    """

    def __init__(self, min_tokens: int = 1024) -> None:
        self.min_tokens = min_tokens
        self._seen: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def lookup(self, provider: str, model: str, prompt: Prompt) -> tuple[int, int]:
        """``(cached, written)`` tokens for this request, remembering its prefixes."""
        segments = prompt.segments
        upto = len(segments) if prompt.cache_upto is None else min(prompt.cache_upto, len(segments))
        if upto == 0:
            return 0, 0
        keys, tokens = [], []
        digest = hashlib.sha256()
        total = 0
        for segment in segments[:upto]:
            digest.update(segment.encode() + b"\x00")
            total += count_tokens(segment)
            keys.append(digest.hexdigest())
            tokens.append(total)
        with self._lock:
            hit = 0
            for key, n in zip(keys, tokens, strict=True):
                if (provider, model, key) in self._seen and n >= self.min_tokens:  # type: ignore[comparison-overlap]
                    hit = n
            for key, n in zip(keys, tokens, strict=True):
                if n >= self.min_tokens:
                    self._seen.add((provider, model, key))  # type: ignore[arg-type]
        written = tokens[-1] - hit if tokens[-1] >= self.min_tokens else 0
        # Only Anthropic bills cache writes; OpenAI and Gemini cache implicitly for free.
        return hit, written if prompt.cache_upto is not None else 0


def generate(
    model: str,
    prompt: Prompt,
    reply: Reply | None,
    cache: tuple[int, int] = (0, 0),
) -> Generation:
    """The deterministic answer for a request, with ``reply``'s overrides and the output cap.

    ``cache``: the prompt cache's ``(cached, written)`` tokens, unless ``reply`` sets them.
    """
    reply = reply or Reply()
    tool_calls = _tool_calls(model, prompt, reply)
    if reply.text is not None:
        text = reply.text
    else:
        text = "" if tool_calls else _default_text(model, prompt)
    text, stopped_at = _apply_stop(text, prompt.stop)
    if stopped_at is not None:  # the model stopped writing before any call it would make
        tool_calls = ()
    cached, written, reasoning = (
        reply.cached_tokens or cache[0],
        reply.cache_write_tokens or cache[1],
        reply.reasoning_tokens,
    )
    if reply.input_tokens is not None:
        input_tokens = reply.input_tokens
    else:
        input_tokens = max(1, count_tokens(prompt.text), cached + written)
    if reply.output_tokens is not None:
        output_tokens = reply.output_tokens
    else:
        output_tokens = count_tokens(text + "".join(c.arguments for c in tool_calls)) + reasoning
    finish = "tool_calls" if tool_calls else "stop"
    cap = prompt.max_output
    if cap is not None and output_tokens > cap:
        finish = "length"
        reasoning = min(reasoning, cap)
        visible = cap - reasoning
        text = text[: visible * 4]
        output_tokens = cap
    if reply.finish_reason is not None:
        finish = reply.finish_reason
    return Generation(
        model=model,
        text=text,
        deltas=split_deltas(text),
        input_tokens=input_tokens,
        cached_tokens=cached,
        cache_write_tokens=written,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
        finish=finish,
        tool_calls=tool_calls,
        logprobs=token_logprobs(text, reply.logprobs),
        stop_sequence=stopped_at if finish == "stop" else None,
    )


def _apply_stop(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """The text up to the first stop sequence in it (not included), and that sequence."""
    found = [(text.find(stop), stop) for stop in stops if stop and stop in text]
    if not found:
        return text, None
    at, stop = min(found)
    return text[:at], stop


def retry_headers(fault: Fault) -> list[tuple[str, str]]:
    """``retry-after``/``retry-after-ms`` for OpenAI and Anthropic (instant retry by default)."""
    headers: list[tuple[str, str]] = []
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", format_number(fault.retry_after_ms)))
    if fault.retry_after is not None:
        headers.append(("retry-after", format_number(fault.retry_after)))
    retryable = fault.status_code in (408, 409, 429) or fault.status_code >= 500
    if not headers and retryable:
        headers.append(("retry-after-ms", "1"))
    return headers


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def int_field(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mask_key(key: str) -> str:
    """Mask a key the way providers echo it in errors: a few leading and trailing characters."""
    if len(key) <= 10:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def key_accepted(expected: str | None, given: str) -> bool:
    """Whether ``given`` is the key the fake expects; ``expected`` None: any key ("any key"
    mode, so samples with placeholder keys like ``"YOUR_API_KEY"`` run)."""
    return expected is None or given == expected


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
