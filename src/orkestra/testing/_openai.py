"""OpenAI: Chat Completions, Responses and the models list, as the real API speaks them."""

from __future__ import annotations

import itertools
import time
from typing import Any

from . import _openai_responses as responses
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
    bearer,
    count_tokens,
    format_number,
    int_field,
    json_reply,
    mask_key,
    retry_headers,
    sse,
    text_of,
)
from ._models import ModelFacts, listed, lookup, served
from ._script import Fault

_PARSE_ERROR = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using"
    " your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was"
    " not valid JSON. If you have trouble figuring out how to fix this, please contact us through"
    " our help center at help.openai.com.)"
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header"
    " using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with"
    " blank username) if you're accessing the API from your browser and are prompted for a"
    " username and password. You can obtain an API key from"
    " https://platform.openai.com/account/api-keys."
)
# status -> (type, code, message); {model} and {delay} are filled in.
_STATUS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM):"
        " Limit 3, Used 3, Requested 1. Please try again in {delay}. Visit"
        " https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> HttpReply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_reply(status, body, headers)


def _usage_chat(gen: Generation) -> JSONObject:
    return {
        "prompt_tokens": gen.input_tokens,
        "completion_tokens": gen.output_tokens,
        "total_tokens": gen.input_tokens + gen.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": gen.cached_tokens,
            "cache_write_tokens": gen.cache_write_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": gen.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish(gen: Generation) -> str:
    return {"stop": "stop", "length": "length"}.get(gen.finish, gen.finish)


class OpenAIProtocol:
    """The OpenAI API at ``/v1``."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ validation

    def check(self, incoming: Incoming, route: Route) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        if route.endpoint == "unknown":
            return None
        key = bearer(incoming.headers)
        if not key:
            return _error(401, _NO_KEY, headers=self._headers())
        if key != self._api_key:
            message = (
                f"Incorrect API key provided: {mask_key(key)}. You can find your API key at"
                " https://platform.openai.com/account/api-keys."
            )
            return _error(401, message, code="invalid_api_key", headers=self._headers())
        if not route.generates:
            return None
        body = incoming.body
        if incoming.body_error or not isinstance(body, dict):
            return _error(400, _PARSE_ERROR)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "you must provide a model parameter")
        facts = served("openai", model)
        if facts is None:
            return self._not_found(model)
        if route.endpoint == "chat":
            return self._check_chat(body, facts)
        return self._check_responses(body, facts)

    def _check_chat(self, body: JSONObject, facts: ModelFacts) -> HttpReply | None:
        messages = body.get("messages")
        if messages is None:
            return _error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list) or not messages:
            return _error(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but"
                " got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        if facts.reasoning and body.get("max_tokens") is not None:
            return _error(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model."
                " Use 'max_completion_tokens' instead.",
                param="max_tokens",
                code="unsupported_parameter",
            )
        temperature = body.get("temperature")
        if facts.reasoning and temperature is not None and temperature != 1:
            return _error(
                400,
                f"Unsupported value: 'temperature' does not support {temperature} with this"
                " model. Only the default (1) value is supported.",
                param="temperature",
                code="unsupported_value",
            )
        for name in ("max_completion_tokens", "max_tokens"):
            problem = self._check_cap(body, name, facts, minimum=1)
            if problem is not None:
                return problem
        return self._check_context(self.prompt_text(body), facts, "messages")

    def _check_responses(self, body: JSONObject, facts: ModelFacts) -> HttpReply | None:
        if body.get("input") is None and not any(
            body.get(k) for k in ("previous_response_id", "conversation", "prompt")
        ):
            return _error(
                400,
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        for name in ("temperature", "top_p"):
            if facts.reasoning and body.get(name) is not None and body.get(name) != 1:
                return _error(
                    400,
                    f"Unsupported parameter: '{name}' is not supported with this model.",
                    param=name,
                    code="unsupported_parameter",
                )
        reasoning = body.get("reasoning")
        if not facts.reasoning and isinstance(reasoning, dict) and reasoning.get("effort"):
            return _error(
                400,
                "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                param="reasoning.effort",
                code="unsupported_parameter",
            )
        problem = self._check_cap(body, "max_output_tokens", facts, minimum=16)
        if problem is not None:
            return problem
        return self._check_context(self.prompt_text(body), facts, "input")

    def _check_cap(
        self, body: JSONObject, name: str, facts: ModelFacts, *, minimum: int
    ) -> HttpReply | None:
        value = int_field(body, name)
        if value is None:
            return None
        if value < minimum:
            return _error(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum},"
                f" but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        if value > facts.output_limit:
            return _error(
                400,
                f"{name} is too large: {value}. This model supports at most"
                f" {facts.output_limit} completion tokens, whereas you provided {value}.",
                param=name,
            )
        return None

    def _check_context(self, text: str, facts: ModelFacts, param: str) -> HttpReply | None:
        tokens = count_tokens(text)
        if tokens <= facts.context_window:
            return None
        return _error(
            400,
            f"This model's maximum context length is {facts.context_window} tokens. However,"
            f" your messages resulted in {tokens} tokens. Please reduce the length of the"
            " messages.",
            param=param,
            code="context_length_exceeded",
        )

    def _not_found(self, model: str) -> HttpReply:
        return _error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
            headers=self._headers(),
        )

    # ------------------------------------------------------------ prompt

    @staticmethod
    def prompt_text(body: JSONObject) -> str:
        parts: list[str] = []
        for key in ("instructions", "input"):
            value = body.get(key)
            if isinstance(value, str):
                parts.append(value)
            elif isinstance(value, list):
                parts.extend(
                    text_of(item.get("content", item)) for item in value if isinstance(item, dict)
                )
        for message in body.get("messages") or []:
            if isinstance(message, dict):
                parts.append(text_of(message.get("content")))
        return "\n".join(p for p in parts if p)

    def prompt(self, route: Route, body: JSONObject) -> Prompt:
        last_user = ""
        items = body.get("messages") if route.endpoint == "chat" else body.get("input")
        if isinstance(items, str):
            last_user = items
        elif isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("role") == "user":
                    last_user = text_of(item.get("content"))
        if route.endpoint == "chat":
            cap = int_field(body, "max_completion_tokens") or int_field(body, "max_tokens")
        else:
            cap = int_field(body, "max_output_tokens")
        return Prompt(self.prompt_text(body), last_user, cap)

    # ------------------------------------------------------------ replies

    def _headers(self) -> list[tuple[str, str]]:
        return [
            ("x-request-id", f"req_fake{next(self._ids):024d}"),
            ("openai-version", "2020-10-01"),
            ("openai-processing-ms", "1"),
        ]

    def _served_as(self, model: str) -> str:
        facts = lookup("openai", model)
        return facts.served_as if facts else model

    def complete(self, route: Route, body: JSONObject, gen: Generation) -> HttpReply:
        if route.endpoint == "responses":
            response = responses.response_object(body, gen, **self._responses_args(gen), final=True)
            return json_reply(200, response, self._headers())
        reply = {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._served_as(gen.model),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": gen.text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": _finish(gen),
                }
            ],
            "usage": _usage_chat(gen),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        return json_reply(200, reply, self._headers())

    def stream(
        self, route: Route, body: JSONObject, gen: Generation, plan: StreamPlan
    ) -> StreamReply:
        if route.endpoint == "responses":
            return self._stream_responses(body, gen, plan)
        base = {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._served_as(gen.model),
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }

        def chunk(delta: JSONObject, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse({**base, "choices": [choice], "usage": None})

        frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
        sent = plan.stop_at(len(gen.deltas))
        frames += [chunk({"content": d}) for d in gen.deltas[:sent]]
        if plan.cut_after is not None:
            return StreamReply(frames, self._headers(), complete=False)
        if plan.error_after is not None:
            type_, code, _ = self._status_info(plan.error_type)
            error = {"message": plan.error_message, "type": type_, "param": None, "code": code}
            frames.append(sse({"error": error}))
            return StreamReply(frames, self._headers())
        frames.append(chunk({}, _finish(gen)))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            frames.append(sse({**base, "choices": [], "usage": _usage_chat(gen)}))
        frames.append(sse("[DONE]"))
        return StreamReply(frames, self._headers())

    def _responses_args(self, gen: Generation) -> dict[str, Any]:
        facts = lookup("openai", gen.model)
        return {
            "response_id": f"resp_fake{next(self._ids):024d}",
            "model": self._served_as(gen.model),
            "reasoning": facts is not None and facts.reasoning,
        }

    def _stream_responses(self, body: JSONObject, gen: Generation, plan: StreamPlan) -> StreamReply:
        _, code, _ = self._status_info(plan.error_type)
        frames, complete = responses.stream_frames(
            body, gen, plan, **self._responses_args(gen), error_code=code or plan.error_type
        )
        return StreamReply(frames, self._headers(), complete=complete)

    # ------------------------------------------------------------ errors and other endpoints

    @staticmethod
    def _status_info(error_type: str) -> tuple[str, str | None, str]:
        status = ERROR_TYPE_STATUS.get(error_type, 500)
        return _STATUS.get(503 if status == 529 else status, ("server_error", None, ""))

    def error(self, route: Route, fault: Fault) -> HttpReply:
        status = fault.status_code
        if fault.kind == "stream_error":
            status = ERROR_TYPE_STATUS.get(fault.error_type, 500)
            status = 503 if status == 529 else status
        default_type = "invalid_request_error" if status < 500 else "server_error"
        type_, code, template = _STATUS.get(
            503 if status == 529 else status, (default_type, None, "Error.")
        )
        if fault.retry_after_ms is not None:
            delay = f"{format_number(fault.retry_after_ms)}ms"
        elif fault.retry_after is not None:
            delay = f"{format_number(fault.retry_after)}s"
        else:
            delay = "1ms"
        message = fault.message or template.format(model=route.model or "the model", delay=delay)
        headers = self._headers()
        if fault.kind == "status":
            headers += retry_headers(fault)
        if status == 429:
            headers += [
                ("x-ratelimit-limit-requests", "3"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", delay),
            ]
        return _error(status, message, type_=type_, code=code, headers=headers)

    def other(self, incoming: Incoming, route: Route) -> HttpReply:
        if route.endpoint == "models":
            data = [self._model_entry(m) for m in listed("openai")]
            return json_reply(200, {"object": "list", "data": data}, self._headers())
        if route.endpoint == "model" and route.model is not None:
            facts = served("openai", route.model)
            if facts is None:
                return self._not_found(route.model)
            return json_reply(200, self._model_entry(facts), self._headers())
        message = f"Invalid URL ({incoming.method} {incoming.path})"
        return _error(404, message, headers=self._headers())

    @staticmethod
    def _model_entry(facts: ModelFacts) -> JSONObject:
        return {
            "id": facts.model_id,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "system",
        }
