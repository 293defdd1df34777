"""OpenAI: Chat Completions, Responses and the models list, as the real API speaks them (its
checks of tools and structured output are in :mod:`._openai_checks`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from typing import Any

from . import _openai_responses as responses
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
    format_number,
    int_field,
    json_reply,
    key_accepted,
    mask_key,
    retry_headers,
    split_deltas,
    sse,
    text_of,
)
from ._models import ModelFacts, listed, lookup, served
from ._openai_checks import (
    check_format,
    check_sampling,
    check_tool_choice,
    check_tools,
    check_turns,
    openai_error,
)
from ._script import Fault

COMPAT = "compat"
"""``Route.api_version`` of the OpenAI-compatible local-server mode (``/compat/v1/...``)."""
COMPAT_MODELS = ("llama3.2:3b",)
"""What the compatible mode's model list shows (every model id is served anyway)."""

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


def _logprobs(gen: Generation) -> JSONObject:
    """``choices[].logprobs`` of a request with ``logprobs: true``: one entry per answer token,
    its ``top_logprobs`` holding the chosen token (the API may send fewer than asked)."""
    content = []
    for token, logprob in gen.logprobs:
        entry = {"token": token, "logprob": logprob, "bytes": list(token.encode())}
        content.append({**entry, "top_logprobs": [entry]})
    return {"content": content, "refusal": None}


def _finish(gen: Generation) -> str:
    return {"stop": "stop", "length": "length"}.get(gen.finish, gen.finish)


def _compat_facts(model: str) -> ModelFacts:
    """A local OpenAI-compatible server (Ollama, vLLM) serves whatever it has loaded: any id,
    one generous context and output limit, none of OpenAI's reasoning-model quirks."""
    return ModelFacts("openai", model, 128_000, 16_384, model, display_name=model)


def _canonical_turn(message: JSONObject) -> str:
    """One turn as the prompt cache sees it: role, text, tool calls, the call answered, and a
    digest for each image (so a large data: URL weighs what its turn's text weighs)."""
    parts = [str(message.get("role")), text_of(message.get("content"))]
    content = message.get("content")
    for part in content if isinstance(content, list) else []:
        image = part.get("image_url") if isinstance(part, dict) else None
        if isinstance(image, dict):
            digest = hashlib.sha256(str(image.get("url")).encode()).hexdigest()[:16]
            parts.append(f"[image {digest}]")
    for call in message.get("tool_calls") or []:
        parts.append(json.dumps(call, sort_keys=True))
    if message.get("tool_call_id") is not None:
        parts.append(str(message.get("tool_call_id")))
    return "\x1f".join(parts)


def _tool_mode(choice: object) -> tuple[str, str | None]:
    """``(tool_mode, forced tool)`` from a chat ``tool_choice``."""
    if isinstance(choice, str):
        return choice, None
    if isinstance(choice, dict):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, dict):
            return "required", str(function.get("name"))
        allowed = choice.get("allowed_tools")  # {"type": "allowed_tools", "allowed_tools": {...}}
        if isinstance(allowed, dict) and isinstance(allowed.get("mode"), str):
            return str(allowed["mode"]), None
    return "auto", None


def _chat_prompt(body: JSONObject, text: str, cap: int | None) -> Prompt:
    """A chat request's tools, tool choice, trailing tool results, output format and segments."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last_user = next(
        (text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    tools = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict):
            parameters = function.get("parameters")
            declared = parameters if isinstance(parameters, dict) else {}
            tools.append(FakeTool(str(function.get("name")), declared))
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, text_of(message.get("content")))
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str))
    tool_mode, forced = _tool_mode(body.get("tool_choice"))
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
    schema = spec.get("schema", {}) if kind == "json_schema" and isinstance(spec, dict) else None
    # Segments: the leading system turns, the declared tools and output format, then each turn.
    first_turn = next(
        (i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer")),
        len(messages),
    )
    segments = []
    if first_turn:
        segments.append("\n".join(text_of(m.get("content")) for m in messages[:first_turn]))
    header = {k: body[k] for k in ("tools", "response_format") if body.get(k)}
    if header:
        segments.append(json.dumps(header, sort_keys=True))
    segments += [_canonical_turn(m) for m in messages[first_turn:]]
    return Prompt(
        text,
        last_user,
        cap,
        tools=tuple(tools),
        tool_mode=tool_mode,
        forced_tool=forced,
        tool_results=tuple(results),
        schema=schema if isinstance(schema, dict) else None,
        json_mode=kind == "json_object",
        segments=tuple(segments),
        cache_upto=None,  # OpenAI caches every prompt automatically
        stop=stops,
    )


def _tool_call(call: FakeToolCall) -> JSONObject:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


class OpenAIProtocol:
    """The OpenAI API at ``/v1``."""

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ validation

    def check(self, incoming: Incoming, route: Route) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        if route.endpoint == "unknown":
            return None
        compat = route.api_version == COMPAT
        key = bearer(incoming.headers)
        if not compat and not key:  # a local compatible server takes any key, or none
            return openai_error(401, _NO_KEY, headers=self._headers())
        if not compat and not key_accepted(self._api_key, key or ""):
            message = (
                f"Incorrect API key provided: {mask_key(key or '')}. You can find your API key"
                " at https://platform.openai.com/account/api-keys."
            )
            return openai_error(401, message, code="invalid_api_key", headers=self._headers())
        if not route.generates:
            return None
        body = incoming.body
        if incoming.body_error or not isinstance(body, dict):
            return openai_error(400, _PARSE_ERROR)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        facts = _compat_facts(model) if compat else served("openai", model)
        if facts is None:
            return self._not_found(model)
        if route.endpoint == "chat":
            return self._check_chat(body, facts)
        return self._check_responses(body, facts)

    def _check_chat(self, body: JSONObject, facts: ModelFacts) -> HttpReply | None:  # noqa: PLR0911
        messages = body.get("messages")
        if messages is None:
            return openai_error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list) or not messages:
            return openai_error(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but"
                " got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        if facts.reasoning and body.get("max_tokens") is not None:
            return openai_error(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model."
                " Use 'max_completion_tokens' instead.",
                param="max_tokens",
                code="unsupported_parameter",
            )
        temperature = body.get("temperature")
        if facts.reasoning and temperature is not None and temperature != 1:
            return openai_error(
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
        problem = (
            check_sampling(body, reasoning=facts.reasoning)
            or check_turns(messages)
            or check_tools(body.get("tools"))
            or check_tool_choice(body)
            or check_format(body.get("response_format"), messages)
        )
        if problem is not None:
            return problem
        return self._check_context(self.prompt_text(body), facts, "messages")

    def _check_responses(self, body: JSONObject, facts: ModelFacts) -> HttpReply | None:
        if body.get("input") is None and not any(
            body.get(k) for k in ("previous_response_id", "conversation", "prompt")
        ):
            return openai_error(
                400,
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        for name in ("temperature", "top_p"):
            if facts.reasoning and body.get(name) is not None and body.get(name) != 1:
                return openai_error(
                    400,
                    f"Unsupported parameter: '{name}' is not supported with this model.",
                    param=name,
                    code="unsupported_parameter",
                )
        reasoning = body.get("reasoning")
        if not facts.reasoning and isinstance(reasoning, dict) and reasoning.get("effort"):
            return openai_error(
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
            return openai_error(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum},"
                f" but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        if value > facts.output_limit:
            return openai_error(
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
        return openai_error(
            400,
            f"This model's maximum context length is {facts.context_window} tokens. However,"
            f" your messages resulted in {tokens} tokens. Please reduce the length of the"
            " messages.",
            param=param,
            code="context_length_exceeded",
        )

    def _not_found(self, model: str) -> HttpReply:
        return openai_error(
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
                # The calls an assistant turn made are prompt tokens of the next request too.
                for call in message.get("tool_calls") or []:
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict):
                        parts.append(f"{function.get('name')}({function.get('arguments')})")
        if body.get("tools"):  # tool declarations are billed as prompt tokens
            parts.append(json.dumps(body["tools"], sort_keys=True))
        return "\n".join(p for p in parts if p)

    def prompt(self, route: Route, body: JSONObject) -> Prompt:
        if route.endpoint == "chat":
            cap = int_field(body, "max_completion_tokens") or int_field(body, "max_tokens")
            return _chat_prompt(body, self.prompt_text(body), cap)
        last_user = ""
        items = body.get("input")
        if isinstance(items, str):
            last_user = items
        elif isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("role") == "user":
                    last_user = text_of(item.get("content"))
        return Prompt(self.prompt_text(body), last_user, int_field(body, "max_output_tokens"))

    # ------------------------------------------------------------ replies

    def _headers(self) -> list[tuple[str, str]]:
        return [
            ("x-request-id", f"req_fake{next(self._ids):024d}"),
            ("openai-version", "2020-10-01"),
            ("openai-processing-ms", "1"),
        ]

    def _served_as(self, route: Route, model: str) -> str:
        facts = None if route.api_version == COMPAT else lookup("openai", model)
        return facts.served_as if facts else model

    def complete(self, route: Route, body: JSONObject, gen: Generation) -> HttpReply:
        if route.endpoint == "responses":
            args = self._responses_args(route, gen)
            response = responses.response_object(body, gen, **args, final=True)
            return json_reply(200, response, self._headers())
        message: JSONObject = {
            "role": "assistant",
            # A turn that only calls tools has null content, as the real API sends it.
            "content": gen.text if gen.text or not gen.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if gen.tool_calls:
            message["tool_calls"] = [_tool_call(c) for c in gen.tool_calls]
        choices = int_field(body, "n") or 1  # n choices: the fake's answer n times
        reply = {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._served_as(route, gen.model),
            "choices": [
                {
                    "index": index,
                    "message": message,
                    "logprobs": _logprobs(gen) if body.get("logprobs") is True else None,
                    "finish_reason": _finish(gen),
                }
                for index in range(choices)
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
            return self._stream_responses(route, body, gen, plan)
        base = {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._served_as(route, gen.model),
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }

        def chunk(delta: JSONObject, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse({**base, "choices": [choice], "usage": None})

        # The real stream: a role chunk, the text deltas, then per tool call a chunk with its
        # index, id, type and name (arguments "") and chunks with pieces of its arguments.
        first: JSONObject = {"role": "assistant", "content": "", "refusal": None}
        deltas: list[JSONObject] = [{"content": d} for d in gen.deltas]
        for index, call in enumerate(gen.tool_calls):
            head = {**_tool_call(call), "function": {"name": call.name, "arguments": ""}}
            deltas.append({"tool_calls": [{"index": index, **head}]})
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in split_deltas(call.arguments)
            ]
        if gen.tool_calls and not gen.deltas:
            first = {**first, "content": None, **deltas.pop(0)}  # the first call rides along
        frames = [chunk(first)]
        sent = plan.stop_at(len(deltas))
        frames += [chunk(d) for d in deltas[:sent]]
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

    def _responses_args(self, route: Route, gen: Generation) -> dict[str, Any]:
        facts = None if route.api_version == COMPAT else lookup("openai", gen.model)
        return {
            "response_id": f"resp_fake{next(self._ids):024d}",
            "model": self._served_as(route, gen.model),
            "reasoning": facts is not None and facts.reasoning,
        }

    def _stream_responses(
        self, route: Route, body: JSONObject, gen: Generation, plan: StreamPlan
    ) -> StreamReply:
        _, code, _ = self._status_info(plan.error_type)
        args = self._responses_args(route, gen)
        frames, complete = responses.stream_frames(
            body, gen, plan, **args, error_code=code or plan.error_type
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
        return openai_error(status, message, type_=type_, code=code, headers=headers)

    def other(self, incoming: Incoming, route: Route) -> HttpReply:
        compat = route.api_version == COMPAT
        if route.endpoint == "models":
            models = [_compat_facts(m) for m in COMPAT_MODELS] if compat else listed("openai")
            data = [self._model_entry(m) for m in models]
            return json_reply(200, {"object": "list", "data": data}, self._headers())
        if route.endpoint == "model" and route.model is not None:
            facts = _compat_facts(route.model) if compat else served("openai", route.model)
            if facts is None:
                return self._not_found(route.model)
            return json_reply(200, self._model_entry(facts), self._headers())
        message = f"Invalid URL ({incoming.method} {incoming.path})"
        return openai_error(404, message, headers=self._headers())

    @staticmethod
    def _model_entry(facts: ModelFacts) -> JSONObject:
        return {
            "id": facts.model_id,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "system",
        }
