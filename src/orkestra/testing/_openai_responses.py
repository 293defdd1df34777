"""OpenAI's Responses API bodies: the response object and its ``event:``/``data:`` stream."""

from __future__ import annotations

import itertools
import time
from typing import Any

from ._common import Generation, JSONObject, StreamPlan, sse

_MESSAGE_ID = "msg_fake0001"
_REASONING_ITEM: JSONObject = {"type": "reasoning", "id": "rs_fake0001", "summary": []}


def usage(gen: Generation) -> JSONObject:
    """Responses usage: input includes cached tokens, output includes reasoning tokens."""
    return {
        "input_tokens": gen.input_tokens,
        "input_tokens_details": {
            "cached_tokens": gen.cached_tokens,
            "cache_write_tokens": gen.cache_write_tokens,
        },
        "output_tokens": gen.output_tokens,
        "output_tokens_details": {"reasoning_tokens": gen.reasoning_tokens},
        "total_tokens": gen.input_tokens + gen.output_tokens,
    }


def _message_item(text: str, *, done: bool, incomplete: bool = False) -> JSONObject:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": _MESSAGE_ID,
        "status": ("incomplete" if incomplete else "completed") if done else "in_progress",
        "role": "assistant",
        "content": content if done else [],
    }


def response_object(
    body: JSONObject,
    gen: Generation,
    *,
    response_id: str,
    model: str,
    reasoning: bool,
    final: bool,
) -> JSONObject:
    """The ``response`` object: finished (with output and usage) or just started."""
    incomplete = gen.finish == "length"
    output: list[JSONObject] = []
    if final:
        output = [_REASONING_ITEM] if reasoning else []
        output.append(_message_item(gen.text, done=True, incomplete=incomplete))
    requested = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    status = ("incomplete" if incomplete else "completed") if final else "in_progress"
    now = int(time.time())
    return {
        "id": response_id,
        "object": "response",
        "created_at": now,
        "status": status,
        "background": False,
        "completed_at": now if final else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if final and incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {
            "effort": (requested or {}).get("effort", "medium") if reasoning else None,
            "summary": None,
        },
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage(gen) if final else None,
        "user": None,
    }


def stream_frames(
    body: JSONObject,
    gen: Generation,
    plan: StreamPlan,
    *,
    response_id: str,
    model: str,
    reasoning: bool,
    error_code: str,
) -> tuple[list[bytes], bool]:
    """The SSE frames of a streamed response, and whether the stream ends properly."""
    sequence = itertools.count()
    frames: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        frames.append(sse({"type": kind, **fields, "sequence_number": next(sequence)}, kind))

    def snapshot(*, final: bool) -> JSONObject:
        return response_object(
            body, gen, response_id=response_id, model=model, reasoning=reasoning, final=final
        )

    started = snapshot(final=False)
    event("response.created", response=started)
    event("response.in_progress", response=started)
    index = 0
    if reasoning:
        event("response.output_item.added", output_index=0, item=_REASONING_ITEM)
        event("response.output_item.done", output_index=0, item=_REASONING_ITEM)
        index = 1
    where = {"item_id": _MESSAGE_ID, "output_index": index, "content_index": 0}
    event("response.output_item.added", output_index=index, item=_message_item("", done=False))
    empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    event("response.content_part.added", **where, part=empty_part)
    for delta in gen.deltas[: plan.stop_at(len(gen.deltas))]:
        event("response.output_text.delta", **where, delta=delta, logprobs=[])
    if plan.cut_after is not None:
        return frames, False
    if plan.error_after is not None:
        event("error", code=error_code, message=plan.error_message, param=None)
        return frames, True
    event("response.output_text.done", **where, text=gen.text, logprobs=[])
    event("response.content_part.done", **where, part={**empty_part, "text": gen.text})
    done_item = _message_item(gen.text, done=True, incomplete=gen.finish == "length")
    event("response.output_item.done", output_index=index, item=done_item)
    final = snapshot(final=True)
    event(f"response.{final['status']}", response=final)
    return frames, True
