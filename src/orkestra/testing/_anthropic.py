"""Anthropic: the Messages API (plain and SSE), token counting and the models list.

Tools, tool results, structured outputs (``output_config.format``), images and prompt-cache
breakpoints (``cache_control``) are read from the request and validated like the real API does;
tool calls are answered as ``tool_use`` blocks (streamed as ``input_json_delta`` pieces).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import string
from typing import Any

from ._anthropic_checks import content_blocks, custom_tools, dicts, marked, request_problem
from ._common import (
    ERROR_TYPE_STATUS,
    FakeTool,
    FakeToolCall,
    Generation,
    HttpReply,
    Incoming,
    JSONObject,
    Prompt,
    Route,
    StreamPlan,
    StreamReply,
    bearer,
    count_tokens,
    int_field,
    json_reply,
    key_accepted,
    retry_headers,
    split_deltas,
    sse,
    text_of,
)
from ._models import ModelFacts, listed, served
from ._script import Fault

VERSIONS = ("2023-06-01", "2026-10-21")
SAMPLING_FREE_VERSION = "2026-10-21"  # rejects temperature / top_p / top_k

_STATUS_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STATUS_MESSAGE = {
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit"
    " (https://docs.claude.com/en/api/rate-limits); see the response headers for current usage."
    " Please reduce the prompt length or the maximum tokens requested, or try again later.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Request timed out",
    529: "Overloaded",
}


_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_BASE62 = string.digits + string.ascii_letters


def _finish(gen: Generation) -> str:
    if gen.stop_sequence is not None:
        return "stop_sequence"
    return _FINISH.get(gen.finish, gen.finish)


def tool_use_id(call: FakeToolCall) -> str:
    """An id shaped like Anthropic's (``toolu_01`` and 22 base62 characters), derived from the
    fake's own so that the same call always gets the same id."""
    number = int.from_bytes(hashlib.sha256(call.id.encode()).digest()[:17], "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "toolu_01" + "".join(chars)


def _block_text(block: JSONObject) -> str:
    """What a block adds to the prompt's token count."""
    kind = block.get("type")
    if kind == "text":
        return text_of(block)
    if kind == "tool_use":
        return json.dumps(block.get("input", {}))
    if kind == "tool_result":
        return text_of(block.get("content"))
    return ""


def _canonical(block: JSONObject) -> str:
    """A block as the prompt cache compares it: without its ``cache_control`` marker (moving
    the breakpoint to a later turn must not change the cached prefix)."""
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)


def _input_usage(gen: Generation) -> JSONObject:
    return {
        "input_tokens": gen.input_tokens - gen.cached_tokens - gen.cache_write_tokens,
        "cache_creation_input_tokens": gen.cache_write_tokens,
        "cache_read_input_tokens": gen.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": gen.cache_write_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
    }


def _output_usage(gen: Generation) -> JSONObject:
    usage: JSONObject = {"output_tokens": gen.output_tokens}
    if gen.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": gen.reasoning_tokens}
    return usage


class AnthropicProtocol:
    """The Anthropic API at ``/v1``."""

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key
        self._ids = itertools.count(1)

    def _request_id(self) -> str:
        return f"req_fake{next(self._ids):024d}"

    def _error(
        self,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> HttpReply:
        request_id = self._request_id()
        error_type = type_ or _STATUS_TYPE.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
        return json_reply(status, body, [("request-id", request_id), *(headers or [])])

    def _invalid(self, message: str) -> HttpReply:
        return self._error(400, message)

    # ------------------------------------------------------------ validation

    def check(self, incoming: Incoming, route: Route) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        if route.endpoint == "unknown":
            return None
        headers = incoming.headers
        key = headers.get("x-api-key") or bearer(headers)
        if not key:
            return self._error(401, "x-api-key header is required")
        if not key_accepted(self._api_key, key):
            return self._error(401, "invalid x-api-key")
        version = headers.get("anthropic-version")
        if version is None:
            return self._invalid("anthropic-version: header is required")
        if version not in VERSIONS:
            return self._invalid(f"anthropic-version: unknown version '{version}'")
        if route.endpoint not in ("messages", "count_tokens"):
            return None
        body = incoming.body
        if incoming.body_error or not isinstance(body, dict):
            return self._invalid("There was an error parsing the body of your request.")
        return self._check_body(body, version, counting=route.endpoint == "count_tokens")

    def _check_body(self, body: JSONObject, version: str, *, counting: bool) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        required = ("model", "messages") if counting else ("model", "max_tokens", "messages")
        for name in required:
            if name not in body:
                return self._invalid(f"{name}: Field required")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self._invalid("messages: at least one message is required")
        for name in ("temperature", "top_p", "top_k"):
            if name in body and version == SAMPLING_FREE_VERSION:
                return self._invalid(f"{name}: Extra inputs are not permitted")
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)) and not 0 <= temperature <= 1:
            return self._invalid("temperature: range: 0..1")
        malformed = request_problem(body)
        if malformed is not None:
            return self._invalid(malformed)
        model = body["model"]
        facts = served("anthropic", model) if isinstance(model, str) else None
        if facts is None:
            return self._error(404, f"model: {model}")
        if not counting:
            problem = self._check_max_tokens(body, facts)
            if problem is not None:
                return problem
        tokens = count_tokens(self._prompt_text(body))
        if tokens > facts.context_window:
            return self._invalid(
                f"prompt is too long: {tokens} tokens > {facts.context_window} maximum"
            )
        return None

    def _check_max_tokens(self, body: JSONObject, facts: ModelFacts) -> HttpReply | None:
        max_tokens = int_field(body, "max_tokens")
        if max_tokens is None:
            return self._invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            return self._invalid("max_tokens: Input should be greater than or equal to 1")
        if max_tokens > facts.output_limit:
            return self._invalid(
                f"max_tokens: {max_tokens} > {facts.output_limit}, which is the maximum allowed"
                f" number of output tokens for {facts.served_as}"
            )
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            budget = int_field(thinking, "budget_tokens")
            if budget is not None and budget >= max_tokens:
                return self._invalid(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult"
                    " our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                    "extended-thinking#max-tokens-and-context-window-size"
                )
        return None

    # ------------------------------------------------------------ prompt

    @staticmethod
    def _prompt_text(body: JSONObject) -> str:
        parts = [
            f"{tool.get('name')} {tool.get('description') or ''} "
            + json.dumps(tool.get("input_schema"))
            for _, tool in custom_tools(body)
        ]
        parts.append(text_of(body.get("system")))
        schema = _output_schema(body)
        if schema is not None:  # structured outputs bill the schema as prompt tokens
            parts.append(json.dumps(schema))
        for message in dicts(body.get("messages")):
            texts = (_block_text(block) for block in content_blocks(message.get("content")))
            parts.append("\n".join(t for t in texts if t))
        return "\n".join(p for p in parts if p)

    def prompt(self, route: Route, body: JSONObject) -> Prompt:
        messages = dicts(body.get("messages"))
        last_user = ""
        for message in messages:
            if message.get("role") == "user":
                last_user = text_of(message.get("content"))
        choice: JSONObject = (
            body["tool_choice"] if isinstance(body.get("tool_choice"), dict) else {}
        )
        kind = choice.get("type", "auto")
        tool_results: tuple[str, ...] = ()
        if messages and messages[-1].get("role") == "user":
            tool_results = tuple(
                text_of(block.get("content"))
                for block in content_blocks(messages[-1].get("content"))
                if block.get("type") == "tool_result"
            )
        segments, cache_upto = _segments(body)
        return Prompt(
            self._prompt_text(body),
            last_user,
            int_field(body, "max_tokens"),
            tools=tuple(
                FakeTool(str(tool.get("name")), tool.get("input_schema") or {})
                for _, tool in custom_tools(body)
            ),
            tool_mode={"any": "required", "tool": "required", "none": "none"}.get(kind, "auto"),
            forced_tool=choice.get("name") if kind == "tool" else None,
            tool_results=tool_results,
            schema=_output_schema(body),
            segments=segments,
            cache_upto=cache_upto,
            stop=tuple(s for s in body.get("stop_sequences") or () if isinstance(s, str)),
        )

    # ------------------------------------------------------------ replies

    def _message(self, gen: Generation, *, final: bool) -> JSONObject:
        content: list[JSONObject] = []
        if final:
            content = [{"type": "text", "text": gen.text}] if gen.text else []
            content += [
                {
                    "type": "tool_use",
                    "id": tool_use_id(call),
                    "name": call.name,
                    "input": json.loads(call.arguments),
                }
                for call in gen.tool_calls
            ]
        usage = {**_input_usage(gen), "output_tokens": 1, "service_tier": "standard"}
        if final:
            usage.update(_output_usage(gen), inference_geo="not_available")
        return {
            "id": f"msg_fake{next(self._ids):020d}",
            "type": "message",
            "role": "assistant",
            "model": gen.model,
            "content": content,
            "stop_reason": _finish(gen) if final else None,
            "stop_sequence": gen.stop_sequence if final else None,
            "usage": usage,
        }

    def complete(self, route: Route, body: JSONObject, gen: Generation) -> HttpReply:
        return json_reply(200, self._message(gen, final=True), [("request-id", self._request_id())])

    def stream(
        self, route: Route, body: JSONObject, gen: Generation, plan: StreamPlan
    ) -> StreamReply:
        frames: list[bytes] = []

        def event(kind: str, **fields: Any) -> None:
            frames.append(sse({"type": kind, **fields}, kind))

        request_id = self._request_id()
        headers = [("request-id", request_id)]
        event("message_start", message=self._message(gen, final=False))
        sent = plan.stop_at(len(gen.deltas))
        if gen.deltas:
            event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        event("ping")
        for delta in gen.deltas[:sent]:
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": delta})
        if plan.cut_after is not None:
            return StreamReply(frames, headers, complete=False)
        if plan.error_after is not None:
            error = {"type": plan.error_type, "message": plan.error_message}
            event("error", error=error, request_id=request_id)
            return StreamReply(frames, headers)
        if gen.deltas:
            event("content_block_stop", index=0)
        for index, call in enumerate(gen.tool_calls, start=1 if gen.deltas else 0):
            start = {"type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": {}}
            event("content_block_start", index=index, content_block=start)
            for piece in ["", *split_deltas(call.arguments)]:  # the API's first piece is empty
                json_delta = {"type": "input_json_delta", "partial_json": piece}
                event("content_block_delta", index=index, delta=json_delta)
            event("content_block_stop", index=index)
        usage = {**_input_usage(gen), **_output_usage(gen)}
        usage.pop("cache_creation")
        event(
            "message_delta",
            delta={"stop_reason": _finish(gen), "stop_sequence": gen.stop_sequence},
            usage=usage,
        )
        event("message_stop")
        return StreamReply(frames, headers)

    # ------------------------------------------------------------ errors and other endpoints

    def error(self, route: Route, fault: Fault) -> HttpReply:
        if fault.kind == "stream_error":
            status = ERROR_TYPE_STATUS.get(fault.error_type, 500)
            return self._error(status, fault.message or "Overloaded", type_=fault.error_type)
        status = fault.status_code
        message = fault.message or _STATUS_MESSAGE.get(status, "Error")
        headers = retry_headers(fault)
        if status == 429:
            for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
                headers += [
                    (f"anthropic-ratelimit-{kind}-limit", "50"),
                    (f"anthropic-ratelimit-{kind}-remaining", "0"),
                    (f"anthropic-ratelimit-{kind}-reset", "2026-11-26T00:00:01Z"),
                ]
        return self._error(status, message, headers=headers)

    def other(self, incoming: Incoming, route: Route) -> HttpReply:
        headers = [("request-id", self._request_id())]
        if route.endpoint == "count_tokens" and isinstance(incoming.body, dict):
            tokens = max(1, count_tokens(self._prompt_text(incoming.body)))
            return json_reply(200, {"input_tokens": tokens}, headers)
        if route.endpoint == "models":
            data = [self._model_entry(m) for m in listed("anthropic")]
            page = {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
            return json_reply(200, page, headers)
        if route.endpoint == "model" and route.model is not None:
            facts = served("anthropic", route.model)
            if facts is None:
                return self._error(404, f"model: {route.model}")
            return json_reply(200, self._model_entry(facts), headers)
        return self._error(404, "Not found")

    @staticmethod
    def _model_entry(facts: ModelFacts) -> JSONObject:
        entry: JSONObject = {
            "type": "model",
            "id": facts.served_as,
            "display_name": facts.display_name,
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "deprecated" if facts.retires_on else "active",
            "max_input_tokens": facts.context_window,
            "max_tokens": facts.output_limit,
        }
        if facts.retires_on:
            entry["retires_at"] = f"{facts.retires_on}T00:00:00Z"
        return entry


# ---------------------------------------------------------------- request reading


def _output_schema(body: JSONObject) -> JSONObject | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _segments(body: JSONObject) -> tuple[tuple[str, ...], int]:
    """The prompt in Anthropic's cache order (tools, system, messages), one segment a block,
    and how many leading segments are cacheable: up to the last ``cache_control`` breakpoint
    (a top-level ``cache_control`` marks the last block)."""
    segments: list[str] = []
    upto = 0

    def add(tag: str, block: JSONObject) -> None:
        nonlocal upto
        segments.append(f"{tag}\x1e{_canonical(block)}")
        if marked(block):
            upto = len(segments)

    # One-letter tags keep each segment's token count close to its text's.
    for _, tool in custom_tools(body):
        add("t", tool)
    for block in content_blocks(body.get("system")):
        add("s", block)
    for message in dicts(body.get("messages")):
        for block in content_blocks(message.get("content")):
            add(str(message.get("role"))[:1], block)
    if isinstance(body.get("cache_control"), dict):
        upto = len(segments)
    return tuple(segments), upto
