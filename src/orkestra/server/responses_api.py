"""OpenAI's Responses API, ``POST /v1/responses``: what openai-agents, LangChain's
``use_responses_api`` and Codex speak.

A request's ``input`` (a string, or items: messages with ``input_text``/``input_image`` parts,
``function_call`` and ``function_call_output`` items), ``instructions``, function ``tools``,
``tool_choice``, ``text.format`` (``json_schema``/``json_object``), ``reasoning.effort``,
``max_output_tokens``, ``temperature``, ``top_p``, ``parallel_tool_calls`` and ``stream``
become the library's vocabulary, whatever the ``model`` names. The answer is a ``response``
object (a ``message`` item with ``output_text``, a ``function_call`` item per call, usage with
``input_tokens_details.cached_tokens`` and ``output_tokens_details.reasoning_tokens``) or its
stream of events (``event:`` + ``data:``, a ``sequence_number`` on each, no ``[DONE]``).
Errors are OpenAI's. This module answers; :mod:`~orkestra.server.responses_request` reads
the request.

The proxy keeps no responses: ``previous_response_id``, ``conversation`` and stored items
(``item_reference``) are a 400 — send the whole conversation in ``input``, as openai-agents
and LangChain do by default. ``store`` is answered ``false``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from orkestra import (
    ForcedTool,
    Response,
    RoutingDecision,
    Tool,
    ToolCall,
)
from orkestra.errors import OrkestraError
from orkestra.server.body import parse_json
from orkestra.server.call_ids import wire_call_id
from orkestra.server.errors import ProxyError, error_json
from orkestra.server.request import ChatParams
from orkestra.server.response import cut_report, dumps, orkestra_json, proxy_error
from orkestra.server.responses_request import parse_responses_request

__all__ = ["RESPONSES", "ResponsesWire", "parse_responses_request", "response_json"]


def _usage(response: Response) -> dict[str, Any]:
    usage = response.usage
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _message_item(request_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": f"msg_{request_id}",
        "status": status,
        "role": "assistant",
        "content": content if status != "in_progress" else [],
    }


def _call_item(request_id: str, index: int, call: ToolCall, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{request_id}_{index}",
        "call_id": wire_call_id(call),
        "name": call.name,
        "arguments": call.arguments if status == "completed" else "",
        "status": status,
    }


def _output(response: Response, request_id: str) -> list[dict[str, Any]]:
    status = "incomplete" if response.stop_reason == "length" else "completed"
    items = []
    if response.text or not response.tool_calls:
        items.append(_message_item(request_id, response.text, status))
    items += [
        _call_item(request_id, i, call, "completed") for i, call in enumerate(response.tool_calls)
    ]
    return items


def _tool_json(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
        "strict": False,
    }


def _skeleton(params: ChatParams, request_id: str, created: int, model: str) -> dict[str, Any]:
    """The ``response`` object's fields that do not depend on the answer."""
    choice = params.tool_choice
    fmt = params.response_format
    if fmt is None:
        text_format: dict[str, Any] = {"type": "text"}
    elif fmt.schema is None:
        text_format = {"type": "json_object"}
    else:
        text_format = {
            "type": "json_schema",
            "name": fmt.name,
            "schema": dict(fmt.schema),
            "strict": fmt.strict,
        }
    instructions = next((m.content for m in params.messages if m.role == "system"), None)
    return {
        "id": f"resp_{request_id}",
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": params.max_tokens,
        "metadata": {},
        "model": model,
        "output": [],
        "parallel_tool_calls": params.params.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": params.params.get("reasoning_effort"), "summary": None},
        "service_tier": "default",
        "store": False,
        "temperature": params.temperature,
        "text": {"format": text_format, "verbosity": "medium"},
        "tool_choice": (
            {"type": "function", "name": choice.name}
            if isinstance(choice, ForcedTool)
            else (choice or "auto")
        ),
        "tools": [_tool_json(t) for t in params.tools],
        "top_p": params.params.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": params.user,
    }


def response_json(
    response: Response,
    *,
    request_id: str,
    created: int,
    params: ChatParams,
    ignored: Sequence[str] = (),
) -> dict[str, Any]:
    """The finished ``response`` object (with the ``orkestra`` extension)."""
    body = _skeleton(params, request_id, created, response.model)
    incomplete = response.stop_reason == "length"
    body.update(
        status="incomplete" if incomplete else "completed",
        completed_at=created,
        incomplete_details={"reason": "max_output_tokens"} if incomplete else None,
        output=_output(response, request_id),
        usage=_usage(response),
        orkestra=orkestra_json(response, ignored),
    )
    return body


class _ResponsesStream:
    """A streamed ``response``: lifecycle events around a ``message`` item's text deltas, then
    a ``function_call`` item per call (its arguments in one delta), then the terminal event."""

    def __init__(self, request_id: str, created: int, model: str, params: ChatParams) -> None:
        self.request_id, self.created, self.params = request_id, created, params
        self.model = model
        self.sequence = itertools.count()
        self.written: list[str] = []
        self.text_open = False

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, **fields, "sequence_number": next(self.sequence)}
        return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"

    def _where(self) -> dict[str, Any]:
        return {"item_id": f"msg_{self.request_id}", "output_index": 0, "content_index": 0}

    def opening(self, routing: RoutingDecision, only_calls: bool) -> list[bytes]:
        self.model = routing.model
        started = _skeleton(self.params, self.request_id, self.created, self.model)
        events = [
            self._event("response.created", response=started),
            self._event("response.in_progress", response=started),
        ]
        if not only_calls:
            self.text_open = True
            item = _message_item(self.request_id, "", "in_progress")
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events += [
                self._event("response.output_item.added", output_index=0, item=item),
                self._event("response.content_part.added", **self._where(), part=part),
            ]
        return events

    def text(self, chunk: str) -> bytes:
        self.written.append(chunk)
        return self._event("response.output_text.delta", **self._where(), delta=chunk, logprobs=[])

    def closing(self, response: Response, ignored: Sequence[str]) -> list[bytes]:
        events: list[bytes] = []
        final = response_json(
            response,
            request_id=self.request_id,
            created=self.created,
            params=self.params,
            ignored=ignored,
        )
        index = 0
        if self.text_open:
            text = "".join(self.written)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            done = final["output"][0]
            events += [
                self._event("response.output_text.done", **self._where(), text=text, logprobs=[]),
                self._event("response.content_part.done", **self._where(), part=part),
                self._event("response.output_item.done", output_index=0, item=done),
            ]
            index = 1
        for i, call in enumerate(response.tool_calls):
            added = _call_item(self.request_id, i, call, "in_progress")
            done = _call_item(self.request_id, i, call, "completed")
            item_id = added["id"]
            events += [
                self._event("response.output_item.added", output_index=index, item=added),
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=call.arguments,
                ),
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    name=call.name,
                    arguments=call.arguments,
                ),
                self._event("response.output_item.done", output_index=index, item=done),
            ]
            index += 1
        events.append(self._event(f"response.{final['status']}", response=final))
        return events

    def cut(self, error: OrkestraError, routing: RoutingDecision | None) -> list[bytes]:
        """An ``error`` event (the openai client raises), with what was billed."""
        fields = proxy_error(error).body()["error"]
        report = cut_report(error, routing)
        return [self._event("error", **fields, orkestra=report)]


class ResponsesWire:
    """OpenAI's Responses API: ``POST /v1/responses``."""

    name = "responses"

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    def parse(self, raw: bytes) -> ChatParams:
        return parse_json(raw, parse_responses_request)

    def error_body(self, error: ProxyError) -> bytes:
        return error_json(error)

    def answer(
        self,
        response: Response,
        *,
        request_id: str,
        created: int,
        params: ChatParams,
        ignored: Sequence[str],
    ) -> dict[str, Any]:
        return response_json(
            response, request_id=request_id, created=created, params=params, ignored=ignored
        )

    def stream_format(
        self, *, request_id: str, created: int, model: str, params: ChatParams
    ) -> _ResponsesStream:
        return _ResponsesStream(request_id, created, model, params)


RESPONSES = ResponsesWire()
