"""The answer in OpenAI's Chat Completions shape: a ``chat.completion`` object, the
``chat.completion.chunk`` events of a stream, and the OpenAI-shaped error for a library error
(:func:`proxy_error`). Each carries the ``orkestra`` extension object: where the request went,
what it cost and saved."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from orkestra import CascadeReport, CascadeStep, Response, RoutingDecision, ToolCall, Usage
from orkestra.errors import CapabilityError, OrkestraError, StructuredOutputError
from orkestra.server.call_ids import wire_call_id
from orkestra.server.errors import ProxyError, from_library_error

__all__ = [
    "DONE",
    "ChunkFormatter",
    "InvalidOutputError",
    "cascade_json",
    "cascade_steps_header",
    "completion_json",
    "dumps",
    "orkestra_json",
    "proxy_error",
    "sse",
    "usage_json",
]


def dumps(value: Any) -> bytes:
    """Compact JSON; ASCII-escaped, so any text (even a lone surrogate) encodes."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def response_finish(response: Response) -> str:
    """OpenAI's ``finish_reason``: the library's :attr:`~orkestra.Response.stop_reason`, which
    each adapter maps from its provider's own."""
    return response.stop_reason


def tool_calls_json(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """The calls in OpenAI's form, each id carrying its signature (:func:`wire_call_id`)."""
    return [{**call.to_openai(), "id": wire_call_id(call)} for call in calls]


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
        "cascade": None if response.cascade is None else cascade_json(response.cascade),
    }


def _step_json(step: CascadeStep) -> dict[str, Any]:
    return {
        "provider": step.provider,
        "model": step.model,
        "tier": step.tier,
        "accepted": step.accepted,
        "passed": step.passed,
        "score": step.score,
        "reason": step.reason,
        "verifier": None if step.verdict is None else step.verdict.verifier,
        "cost_usd": step.cost,
        "verifier_cost_usd": step.verifier_cost,
    }


def cascade_json(report: CascadeReport) -> dict[str, Any]:
    """A cascade's steps for the ``orkestra`` object: each model asked, its check (``passed``
    None: not checked), what it and its check cost; the tiers skipped and why."""
    return {
        "escalated": report.escalated,
        "steps": [_step_json(step) for step in report.steps],
        "skipped": list(report.skipped),
        "discarded_cost_usd": report.discarded_cost,
        "verifier_cost_usd": report.verifier_cost,
        "streaming": report.streaming,
    }


def _outcome(step: CascadeStep) -> str:
    if step.verdict is not None:
        return "passed" if step.verdict.passed else "failed"
    return "unchecked" if step.accepted else "discarded"


def cascade_steps_header(report: CascadeReport, answering: str | None = None) -> str:
    """``x-orkestra-cascade-steps``: ``provider/model:outcome`` per step, in order (``passed``,
    ``failed``, ``unchecked``), and ``provider/model:answering`` for a stream's answer still
    under way."""
    parts = [f"{s.provider}/{s.model}:{_outcome(s)}" for s in report.steps]
    if answering is not None:
        parts.append(f"{answering}:answering")
    return ",".join(parts)


def message_json(response: Response) -> dict[str, Any]:
    """The assistant message: ``content`` is null when the answer is only tool calls (as
    OpenAI sends it), and ``tool_calls`` is there only when there are some."""
    content: str | None = response.text
    if not content and response.tool_calls:
        content = None
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = tool_calls_json(response.tool_calls)
    return message


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
                "message": message_json(response),
                "logprobs": None,
                "finish_reason": response_finish(response),
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

    def role(self, content: str | None = "") -> bytes:
        """The first chunk (``content: null`` when the answer has no text: only tool calls)."""
        return sse(self._chunk([self._delta({"role": "assistant", "content": content})]))

    def text(self, text: str) -> bytes:
        return sse(self._chunk([self._delta({"content": text})]))

    def tool_calls(self, response: Response) -> list[bytes]:
        """One chunk per tool call, after the text and before the finish: ``index``, ``id``,
        ``type`` and the whole ``function`` (the library hands the calls over assembled)."""
        return [
            sse(self._chunk([self._delta({"tool_calls": [{"index": i, **call}]})]))
            for i, call in enumerate(tool_calls_json(response.tool_calls))
        ]

    def finish(self, response: Response, ignored: Sequence[str] = ()) -> bytes:
        chunk = self._chunk([self._delta({}, response_finish(response))], response.model)
        chunk["orkestra"] = orkestra_json(response, ignored)
        return sse(chunk)

    def usage(self, response: Response, ignored: Sequence[str] = ()) -> bytes:
        chunk = self._chunk([], response.model)
        chunk["usage"] = usage_json(response.usage)
        chunk["orkestra"] = orkestra_json(response, ignored)
        return sse(chunk)

    # -- the StreamFormat of Chat Completions (orkestra.server.wire) -----------------------

    def opening(self, routing: RoutingDecision, only_calls: bool) -> list[bytes]:
        """The role chunk (read after the first text: a fallback or cascade may have changed
        which model answers since the stream was made)."""
        self.model = routing.model
        return [self.role(None if only_calls else "")]

    def closing(self, response: Response, ignored: Sequence[str]) -> list[bytes]:
        """The tool calls, the finish, the usage (if asked) and ``[DONE]``."""
        events = [*self.tool_calls(response), self.finish(response, ignored)]
        if self.include_usage:
            events.append(self.usage(response, ignored))
        return [*events, DONE]

    def cut(self, error: OrkestraError, routing: RoutingDecision | None) -> list[bytes]:
        """The end of a stream that broke after text was sent: what it billed, as a normal end
        tells it. A usage chunk (when ``include_usage``) with the tokens its attempts billed,
        then the OpenAI-shaped error event (after which no ``[DONE]``), both carrying the
        ``orkestra`` object with the cost (the ``openai`` client raises ``APIError`` whose
        ``body`` is the error object: the cost is in ``body["orkestra"]``)."""
        extra = cut_report(error, routing)
        events = []
        if self.include_usage:
            chunk = self._chunk([], extra["model"])
            chunk["usage"] = extra["usage"]
            chunk["orkestra"] = extra
            events.append(sse(chunk))
        body: dict[str, Any] = dict(proxy_error(error).body())
        body["error"] = {**body["error"], "orkestra": {**body.get("orkestra", {}), **extra}}
        events.append(sse(body))
        return events


def cut_report(error: OrkestraError, routing: RoutingDecision | None) -> dict[str, Any]:
    """What a stream that broke after text billed (the ``orkestra`` object of its end, on
    every wire): provider, model, tier, cost, attempts, status and the tokens billed (in Chat
    Completions' usage shape)."""
    billed = Usage(
        sum(a.usage.input_tokens for a in error.attempts),
        sum(a.usage.output_tokens for a in error.attempts),
    )
    answered = error.response if isinstance(error, StructuredOutputError) else None
    cost = (
        answered.total_cost
        if isinstance(answered, Response)
        else sum(a.cost for a in error.attempts)
    )
    last = error.attempts[-1] if error.attempts else None
    model: str | None = getattr(error, "model", None) or (last.model if last else None)
    return {
        "provider": getattr(error, "provider", None) or (last.provider if last else None),
        "model": model,
        "tier": routing.tier if routing is not None else (last.tier if last else None),
        "cost_usd": cost,
        "attempts": len(error.attempts),
        "status": type(error).__name__,
        "usage": usage_json(billed),
    }


# -- errors ----------------------------------------------------------------------------------

_NEED_PARAMS = {"tools": "tools", "vision": "messages", "json": "response_format"}


class InvalidOutputError(ProxyError):
    """A ``response_format`` answer that did not validate: a 502 (the model, not the client,
    got it wrong), with the raw answer and what it cost in an ``orkestra`` object beside the
    error, since the call was made and billed."""

    def __init__(self, error: StructuredOutputError) -> None:
        super().__init__(
            502,
            f"The model's answer did not match the response_format: {error}. "
            "Its raw text is in orkestra.text; the call was billed.",
            type="invalid_model_output",
            param="response_format",
            code="invalid_model_output",
        )
        self.text = error.text
        self.reason = error.reason
        self.response = error.response if isinstance(error.response, Response) else None

    def body(self) -> dict[str, Any]:
        """The error, and beside it the raw answer, why it failed and what it cost."""
        body: dict[str, Any] = dict(super().body())
        extra: dict[str, Any] = {"text": self.text, "reason": self.reason}
        if self.response is not None:
            extra.update(orkestra_json(self.response))
        body["orkestra"] = extra
        return body


def proxy_error(error: OrkestraError) -> ProxyError:
    """The OpenAI-shaped answer for a library error: :func:`from_library_error`, plus the two
    errors of tools and structured output.

    :class:`CapabilityError` (no configured model has tools, vision or JSON output, or the
    context, the request needs) is the client's request: a 400 ``no_capable_model``.
    :class:`StructuredOutputError` is :class:`InvalidOutputError` (502).
    """
    if isinstance(error, CapabilityError):
        named = sorted(error.needs & set(_NEED_PARAMS))
        return ProxyError(
            400,
            str(error) or "No configured model can serve this request.",
            param=_NEED_PARAMS[named[0]] if len(named) == 1 else None,
            code="no_capable_model",
        )
    if isinstance(error, StructuredOutputError):
        return InvalidOutputError(error)
    return from_library_error(error)
