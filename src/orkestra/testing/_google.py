"""Gemini: generateContent, streamGenerateContent (SSE), countTokens and models, v1 and v1beta."""

from __future__ import annotations

import itertools
from typing import Any

from ._common import (
    ERROR_TYPE_STATUS,
    Generation,
    HttpReply,
    Incoming,
    JSONObject,
    Prompt,
    Route,
    StreamPlan,
    StreamReply,
    count_tokens,
    dumps,
    format_number,
    json_reply,
    sse,
    text_of,
)
from ._models import ModelFacts, listed, served
from ._script import Fault

_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more"
        " information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in"
        " https://developers.generativeai.google/guide/troubleshooting",
    ),
    501: ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity)."
    " Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
_ROLES = ("user", "model")


def _status_name(status: int) -> str:
    if status in _STATUS:
        return _STATUS[status][0]
    if status == 529:
        return "UNAVAILABLE"
    return "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"


def _error(status: int, message: str, details: list[JSONObject] | None = None) -> HttpReply:
    error: JSONObject = {"code": status, "message": message, "status": _status_name(status)}
    if details:
        error["details"] = details
    # Google's front end pretty-prints its error bodies.
    return HttpReply(status, dumps({"error": error}, indent=2) + b"\n")


def _get(obj: object, camel: str) -> Any:
    """A field by its camelCase name or its snake_case twin (the REST API accepts both)."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


def _finish(gen: Generation) -> str:
    return {"stop": "STOP", "length": "MAX_TOKENS"}.get(gen.finish, gen.finish)


def _usage(gen: Generation, *, final: bool) -> JSONObject:
    usage: JSONObject = {"promptTokenCount": gen.input_tokens}
    if final:
        if gen.visible_tokens:
            usage["candidatesTokenCount"] = gen.visible_tokens
        usage["totalTokenCount"] = gen.input_tokens + gen.output_tokens
        if gen.cached_tokens:
            usage["cachedContentTokenCount"] = gen.cached_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": gen.input_tokens}]
        if gen.cached_tokens:
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": gen.cached_tokens}]
        if gen.reasoning_tokens:
            usage["thoughtsTokenCount"] = gen.reasoning_tokens
    else:
        usage["totalTokenCount"] = gen.input_tokens
    return usage


class GoogleProtocol:
    """The Gemini API (``generativelanguage.googleapis.com``) under ``/v1`` and ``/v1beta``."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ validation

    def check(self, incoming: Incoming, route: Route) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        if route.endpoint == "unknown":
            return None
        key = incoming.headers.get("x-goog-api-key") or incoming.query.get("key")
        if not key:
            return _error(403, _NO_KEY)
        if key != self._api_key:
            details: list[JSONObject] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": _BAD_KEY,
                },
            ]
            return _error(400, _BAD_KEY, details)
        if route.endpoint == "models":
            return None
        facts = served("google", route.model or "")
        if facts is None or (facts.v1beta_only and route.api_version == "v1"):
            return self._not_found(route)
        if route.endpoint not in ("generate", "count_tokens"):
            return None
        body = incoming.body
        if incoming.body_error or not isinstance(body, dict):
            return _error(400, "Invalid JSON payload received. Unexpected token.")
        return self._check_body(body, facts)

    def _not_found(self, route: Route) -> HttpReply:
        return _error(
            404,
            f"models/{route.model} is not found for API version {route.api_version}, or is not"
            f" supported for {route.method or 'get'}. Call ListModels to see the list of available"
            " models and their supported methods.",
        )

    def _check_body(self, body: JSONObject, facts: ModelFacts) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return _error(400, "* GenerateContentRequest.contents: contents is not specified\n")
        for content in contents:
            role = _get(content, "role")
            if role is not None and role not in _ROLES:
                return _error(400, "Please use a valid role: user, model.")
        config = _get(body, "generationConfig") or {}
        cap = _get(config, "maxOutputTokens")
        if isinstance(cap, int) and not 1 <= cap <= facts.output_limit:
            return _error(
                400,
                f"Unable to submit request because it has a maxOutputTokens value of {cap} but"
                f" the supported range is from 1 (inclusive) to {facts.output_limit + 1}"
                " (exclusive). Update the value and try again.",
            )
        temperature = _get(config, "temperature")
        if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
            return _error(
                400,
                f"Unable to submit request because it has a temperature value of"
                f" {format_number(temperature)} but the supported range is from 0 (inclusive)"
                " to 2.0001 (exclusive). Update the value and try again.",
            )
        budget = _get(_get(config, "thinkingConfig"), "thinkingBudget")
        if budget == 0 and facts.model_id == "gemini-2.5-pro":
            return _error(400, "Budget 0 is invalid. This model only works in thinking mode.")
        tokens = count_tokens(self._prompt_text(body))
        if tokens > facts.context_window:
            return _error(
                400,
                f"The input token count ({tokens}) exceeds the maximum number of tokens allowed"
                f" ({facts.context_window}).",
            )
        return None

    # ------------------------------------------------------------ prompt

    @staticmethod
    def _prompt_text(body: JSONObject) -> str:
        parts = [text_of(_get(_get(body, "systemInstruction"), "parts"))]
        for content in body.get("contents") or []:
            parts.append(text_of(_get(content, "parts")))
        return "\n".join(p for p in parts if p)

    def prompt(self, route: Route, body: JSONObject) -> Prompt:
        last_user = ""
        for content in body.get("contents") or []:
            if (_get(content, "role") or "user") == "user":
                last_user = text_of(_get(content, "parts"))
        cap = _get(_get(body, "generationConfig"), "maxOutputTokens")
        return Prompt(self._prompt_text(body), last_user, cap if isinstance(cap, int) else None)

    # ------------------------------------------------------------ replies

    def _chunk(self, gen: Generation, text: str, response_id: str, *, final: bool) -> JSONObject:
        content: JSONObject = (
            {"parts": [{"text": text}], "role": "model"} if text else {"role": "model"}
        )
        candidate: JSONObject = {"content": content}
        if final:
            candidate["finishReason"] = _finish(gen)
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": _usage(gen, final=final),
            "modelVersion": gen.model,
            "responseId": response_id,
        }

    def _response_id(self) -> str:
        return f"fakeResponse{next(self._ids):012d}"

    def complete(self, route: Route, body: JSONObject, gen: Generation) -> HttpReply:
        response = self._chunk(gen, gen.text, self._response_id(), final=True)
        if route.stream:  # streamGenerateContent without alt=sse: one JSON array
            response_id = response["responseId"]
            chunks = [self._chunk(gen, d, response_id, final=False) for d in gen.deltas[:-1]]
            chunks.append(
                self._chunk(gen, gen.deltas[-1] if gen.deltas else "", response_id, final=True)
            )
            return HttpReply(200, dumps(chunks, indent=2))
        return json_reply(200, response)

    def stream(
        self, route: Route, body: JSONObject, gen: Generation, plan: StreamPlan
    ) -> StreamReply:
        response_id = self._response_id()
        sent = plan.stop_at(len(gen.deltas))
        failing = plan.cut_after is not None or plan.error_after is not None
        frames: list[bytes] = []
        if failing:
            for delta in gen.deltas[:sent]:
                frames.append(sse(self._chunk(gen, delta, response_id, final=False), crlf=True))
            if plan.cut_after is not None:
                return StreamReply(frames, complete=False)
            status = ERROR_TYPE_STATUS.get(plan.error_type, 500)
            status = 503 if status == 529 else status
            error = {"code": status, "message": plan.error_message, "status": _status_name(status)}
            frames.append(sse({"error": error}, crlf=True))
            return StreamReply(frames)
        for delta in gen.deltas[:-1]:
            frames.append(sse(self._chunk(gen, delta, response_id, final=False), crlf=True))
        last = gen.deltas[-1] if gen.deltas else ""
        frames.append(sse(self._chunk(gen, last, response_id, final=True), crlf=True))
        return StreamReply(frames)

    # ------------------------------------------------------------ errors and other endpoints

    def error(self, route: Route, fault: Fault) -> HttpReply:
        if fault.kind == "stream_error":
            status = ERROR_TYPE_STATUS.get(fault.error_type, 500)
            status = 503 if status == 529 else status
            return _error(status, fault.message or _STATUS[503][1])
        status = fault.status_code
        default = _STATUS.get(503 if status == 529 else status, ("", "Internal error encountered."))
        message = fault.message or default[1]
        details: list[JSONObject] = []
        if status == 429:
            details += [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": route.model or ""},
                            "quotaValue": "250",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                        }
                    ],
                },
            ]
        delay = fault.retry_after
        if fault.retry_after_ms is not None:
            delay = fault.retry_after_ms / 1000
        if delay is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{format_number(round(delay, 3))}s",
                }
            )
        return _error(status, message, details)

    def other(self, incoming: Incoming, route: Route) -> HttpReply:
        if route.endpoint == "count_tokens" and isinstance(incoming.body, dict):
            tokens = max(1, count_tokens(self._prompt_text(incoming.body)))
            details = [{"modality": "TEXT", "tokenCount": tokens}]
            return json_reply(200, {"totalTokens": tokens, "promptTokensDetails": details})
        if route.endpoint == "models":
            models = [
                self._model_entry(m)
                for m in listed("google")
                if route.api_version == "v1beta" or not m.v1beta_only
            ]
            return json_reply(200, {"models": models})
        if route.endpoint == "model":
            facts = served("google", route.model or "")
            if facts is not None:
                return json_reply(200, self._model_entry(facts))
        if route.model is not None:
            return self._not_found(route)
        return _error(404, _STATUS[404][1])

    @staticmethod
    def _model_entry(facts: ModelFacts) -> JSONObject:
        return {
            "name": f"models/{facts.model_id}",
            "version": "001",
            "displayName": facts.display_name,
            "inputTokenLimit": facts.context_window,
            "outputTokenLimit": facts.output_limit,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": True,
        }
