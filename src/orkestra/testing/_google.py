"""Gemini: generateContent, streamGenerateContent (SSE), countTokens and models, v1 and v1beta.

Function calling follows the Gemini API: ``tools[].functionDeclarations`` (``parameters`` in
Google's OpenAPI subset or ``parametersJsonSchema``), ``toolConfig.functionCallingConfig`` (mode
AUTO/NONE/ANY, ``allowedFunctionNames``), a call as a model ``functionCall`` part (with an ``id``
on Gemini 3, which always returns one) carrying a ``thoughtSignature``, and its answer as a
``functionResponse`` part in the next ``user`` content. Gemini 3 rejects a replayed call whose
signature was dropped, so the fake remembers the signatures it issued and does the same.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from typing import Any

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
    count_tokens,
    dumps,
    format_number,
    json_reply,
    key_accepted,
    sse,
    text_of,
)
from ._google_checks import (
    _JSON,
    _STATUS,
    _declarations,
    _error,
    _get,
    _sampling_problem,
    _status_name,
    output_problem,
    tools_problem,
)
from ._models import ModelFacts, listed, served
from ._script import Fault

_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity)."
    " Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
_ROLES = ("user", "model")
_MODES = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
_RESPONSE_AFTER_CALL = (
    "Please ensure that function response turn comes immediately after a function call turn."
)
_CALL_AFTER_USER = (
    "Please ensure that function call turn comes immediately after a user turn or after a"
    " function response turn."
)
_RESPONSE_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of"
    " function call parts of the function call turn."
)


def _logprobs(gen: Generation, top: object) -> JSONObject:
    """A candidate's ``avgLogprobs`` and ``logprobsResult`` (``topCandidates`` only when the
    request asked for ``logprobs: n``; the fake's top candidate is the chosen token)."""
    chosen = [{"token": token, "logProbability": value} for token, value in gen.logprobs]
    total = sum(value for _, value in gen.logprobs)
    result: JSONObject = {"chosenCandidates": chosen, "logProbabilitySum": total}
    if isinstance(top, int) and top > 0:
        result["topCandidates"] = [{"candidates": [c]} for c in chosen]
    return {"avgLogprobs": total / len(chosen), "logprobsResult": result}


def _finish(gen: Generation) -> str:
    # Gemini has no "tool calls" finish reason: a turn that calls functions ends with STOP.
    return {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}.get(
        gen.finish, gen.finish
    )


def _canonical(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _parts(content: object) -> list[JSONObject]:
    parts = _get(content, "parts")
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _calls(content: object) -> list[JSONObject]:
    """The ``functionCall`` parts of a content (the whole parts, signature included)."""
    return [p for p in _parts(content) if isinstance(_get(p, "functionCall"), dict)]


def _responses(content: object) -> list[JSONObject]:
    return [r for p in _parts(content) if isinstance(r := _get(p, "functionResponse"), dict)]


def _has_text(content: object) -> bool:
    return any(isinstance(p.get("text"), str) for p in _parts(content))


def _part_text(part: JSONObject) -> str:
    """A part as prompt text: its text, or a function call/response in canonical JSON."""
    if isinstance(part.get("text"), str):
        return str(part["text"])
    if isinstance(call := _get(part, "functionCall"), dict):
        return f"{call.get('name')}({_canonical(call.get('args') or {})})"
    if isinstance(response := _get(part, "functionResponse"), dict):
        return f"{response.get('name')} -> {_canonical(response.get('response'))}"
    return ""


def _content_text(content: object) -> str:
    return "\n".join(t for t in (_part_text(p) for p in _parts(content)) if t)


def _segment(content: object) -> str:
    """A turn for the prompt cache: its role and parts, media by digest (not by size)."""
    pieces = [str(_get(content, "role") or "user")]
    for part in _parts(content):
        media = _get(part, "inlineData") or _get(part, "fileData")
        if isinstance(media, dict):
            source = str(_get(media, "data") or _get(media, "fileUri"))
            digest = hashlib.sha256(source.encode()).hexdigest()[:16]
            pieces.append(f"<{_get(media, 'mimeType')} {digest}>")
        else:
            pieces.append(_part_text(part))
    return "\n".join(pieces)


def _result_text(response: object) -> str:
    """A ``functionResponse.response`` as the text a model would quote: the ``result`` (or
    ``output``) value when that is the only key, else the whole object."""
    if isinstance(response, dict) and len(response) == 1:
        value = response.get("result", response.get("output"))
        if isinstance(value, str):
            return value
        if value is not None:
            return _canonical(value)
    return _canonical(response)


def _lower_types(schema: Any) -> Any:
    """Google's OpenAPI-subset ``responseSchema`` (``"type": "OBJECT"``) as JSON Schema."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    lowered = {key: _lower_types(value) for key, value in schema.items()}
    if isinstance(lowered.get("type"), str):
        lowered["type"] = lowered["type"].lower()
    return lowered


def _signs_calls(model: str) -> bool:
    """Gemini 3 models reject a function call replayed without its thought signature."""
    return model.startswith("gemini-3")


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

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key
        self._ids = itertools.count(1)
        # The thought signatures issued, by call id and by (name, canonical args): a replayed
        # call that had one must carry it back (Gemini 3).
        self._signatures: dict[object, bytes] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ validation

    def check(self, incoming: Incoming, route: Route) -> HttpReply | None:  # noqa: PLR0911 (one return per API rule)
        if route.endpoint == "unknown":
            return None
        key = incoming.headers.get("x-goog-api-key") or incoming.query.get("key")
        if not key:
            return _error(403, _NO_KEY)
        if not key_accepted(self._api_key, key):
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
        problem = _sampling_problem(config)
        if problem is not None:
            return problem
        budget = _get(_get(config, "thinkingConfig"), "thinkingBudget")
        if budget == 0 and facts.model_id == "gemini-2.5-pro":
            return _error(400, "Budget 0 is invalid. This model only works in thinking mode.")
        problem = (
            tools_problem(body)
            or output_problem(config)
            or self._check_turns(contents, facts.model_id)
        )
        if problem is not None:
            return problem
        tokens = count_tokens(self._prompt_text(body))
        if tokens > facts.context_window:
            return _error(
                400,
                f"The input token count ({tokens}) exceeds the maximum number of tokens allowed"
                f" ({facts.context_window}).",
            )
        return None

    def _check_turns(self, contents: list[Any], model: str) -> HttpReply | None:
        """Calls follow a user (or function response) turn, responses answer the turn before
        them one for one, and on Gemini 3 the calls of the current turn keep their
        signatures (the current turn starts at the last user content with text)."""
        current = max((k for k, c in enumerate(contents) if _has_text(c)), default=0)
        for k, content in enumerate(contents):
            role = _get(content, "role") or "user"
            calls = _calls(content)
            before = contents[k - 1] if k else None
            if calls and (before is None or (_get(before, "role") or "user") == "model"):
                return _error(400, _CALL_AFTER_USER)
            responses = _responses(content)
            if responses:
                answered = _calls(before) if (_get(before, "role") or "user") == "model" else []
                if not answered:
                    return _error(400, _RESPONSE_AFTER_CALL)
                if len(responses) != len(answered):
                    return _error(400, _RESPONSE_COUNT)
            if role == "model" and k >= current and _signs_calls(model):
                for part in calls:
                    call = _get(part, "functionCall")
                    if self._issued(call) is not None and not _get(part, "thoughtSignature"):
                        return _error(
                            400,
                            "Function call is missing a thought_signature in functionCall"
                            " parts. This is required for tools to work correctly, and missing"
                            " thought_signature may lead to degraded model performance."
                            f" Additional data, function call `{call.get('name')}` , position"
                            f" {k + 1}. Please refer to"
                            " https://ai.google.dev/gemini-api/docs/thought-signatures for more"
                            " details.",
                        )
        return None

    # ------------------------------------------------------------ thought signatures

    @staticmethod
    def _call_keys(call: JSONObject) -> list[object]:
        keys: list[object] = [("call", call.get("name"), _canonical(call.get("args") or {}))]
        if isinstance(call.get("id"), str):
            keys.append(call["id"])
        return keys

    def _issued(self, call: JSONObject) -> bytes | None:
        with self._lock:
            for key in self._call_keys(call):
                if key in self._signatures:
                    return self._signatures[key]
        return None

    def _call_part(self, model: str, call: FakeToolCall) -> JSONObject:
        """A ``functionCall`` part as the API sends it, with a fresh thought signature."""
        function_call: JSONObject = {"name": call.name, "args": json.loads(call.arguments)}
        if _signs_calls(model):  # Gemini 3 always returns an id with each call
            function_call = {"id": call.id, **function_call}
        signature = f"orkestra-fake-thought-signature:{call.id}".encode()
        with self._lock:
            if len(self._signatures) > 100_000:  # a long-running fake forgets the oldest
                self._signatures.clear()
            for key in self._call_keys(function_call):
                self._signatures[key] = signature
        return {
            "functionCall": function_call,
            "thoughtSignature": base64.b64encode(signature).decode(),
        }

    # ------------------------------------------------------------ prompt

    @staticmethod
    def _prompt_text(body: JSONObject) -> str:
        """System text, the tool declarations and every turn (calls and results as JSON)."""
        parts = [text_of(_get(_get(body, "systemInstruction"), "parts"))]
        if _declarations(body):
            parts.append(_canonical(body.get("tools")))
        for content in body.get("contents") or []:
            parts.append(_content_text(content))
        return "\n".join(p for p in parts if p)

    def prompt(self, route: Route, body: JSONObject) -> Prompt:
        contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
        last_user = ""
        for content in contents:
            if (_get(content, "role") or "user") == "user" and _has_text(content):
                last_user = text_of(_get(content, "parts"))
        config = _get(body, "generationConfig") or {}
        cap = _get(config, "maxOutputTokens")
        tools = tuple(
            FakeTool(
                str(d.get("name")),
                _lower_types(_get(d, "parametersJsonSchema") or _get(d, "parameters") or {}),
            )
            for _, _, d in _declarations(body)
        )
        calling = _get(_get(body, "toolConfig"), "functionCallingConfig") or {}
        mode = _MODES.get(str(_get(calling, "mode") or "AUTO").upper(), "auto")
        allowed = _get(calling, "allowedFunctionNames")
        forced = (
            allowed[0] if mode == "required" and isinstance(allowed, list) and allowed else None
        )
        last = contents[-1] if contents else None
        results = (
            tuple(_result_text(r.get("response")) for r in _responses(last))
            if last is not None and not _has_text(last)
            else ()
        )
        schema = _get(config, "responseJsonSchema")
        if schema is None and _get(config, "responseSchema") is not None:
            schema = _lower_types(_get(config, "responseSchema"))
        # Segments are sized like the prompt text, so cached tokens are a part of the prompt's.
        segments = []
        if _get(body, "systemInstruction") is not None:
            segments.append(text_of(_get(_get(body, "systemInstruction"), "parts")))
        if _declarations(body):
            segments.append(_canonical(body.get("tools")))
        segments += [_segment(c) for c in contents]
        return Prompt(
            self._prompt_text(body),
            last_user,
            cap if isinstance(cap, int) else None,
            tools=tools,
            tool_mode=mode,
            forced_tool=forced,
            tool_results=results,
            schema=schema if isinstance(schema, dict) else None,
            json_mode=schema is None and _get(config, "responseMimeType") == _JSON,
            segments=tuple(segments),
            cache_upto=None,  # Gemini 2.5+ caches implicitly: any repeated prefix may hit
            stop=tuple(x for x in _get(config, "stopSequences") or () if isinstance(x, str)),
        )

    # ------------------------------------------------------------ replies

    def _chunk(
        self, gen: Generation, parts: list[JSONObject], response_id: str, *, final: bool
    ) -> JSONObject:
        content: JSONObject = {"parts": parts, "role": "model"} if parts else {"role": "model"}
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

    def _chunks(self, gen: Generation, response_id: str) -> list[JSONObject]:
        """A stream's chunks: one per text delta, then one per function call (Gemini sends
        each call whole, never as argument deltas); the last carries the finish reason."""
        parts: list[list[JSONObject]] = [[{"text": delta}] for delta in gen.deltas]
        parts += [[self._call_part(gen.model, call)] for call in gen.tool_calls]
        parts = parts or [[]]
        last = len(parts) - 1
        return [self._chunk(gen, p, response_id, final=i == last) for i, p in enumerate(parts)]

    def complete(self, route: Route, body: JSONObject, gen: Generation) -> HttpReply:
        response_id = self._response_id()
        if route.stream:  # streamGenerateContent without alt=sse: one JSON array
            return HttpReply(200, dumps(self._chunks(gen, response_id), indent=2))
        parts: list[JSONObject] = [{"text": gen.text}] if gen.text else []
        parts += [self._call_part(gen.model, call) for call in gen.tool_calls]
        reply = self._chunk(gen, parts, response_id, final=True)
        config = _get(body, "generationConfig") or {}
        if _get(config, "responseLogprobs") is True and gen.logprobs:
            reply["candidates"][0].update(_logprobs(gen, _get(config, "logprobs")))
        return json_reply(200, reply)

    def stream(
        self, route: Route, body: JSONObject, gen: Generation, plan: StreamPlan
    ) -> StreamReply:
        response_id = self._response_id()
        sent = plan.stop_at(len(gen.deltas))
        failing = plan.cut_after is not None or plan.error_after is not None
        frames: list[bytes] = []
        if failing:
            for delta in gen.deltas[:sent]:
                chunk = self._chunk(gen, [{"text": delta}], response_id, final=False)
                frames.append(sse(chunk, crlf=True))
            if plan.cut_after is not None:
                return StreamReply(frames, complete=False)
            status = ERROR_TYPE_STATUS.get(plan.error_type, 500)
            status = 503 if status == 529 else status
            error = {"code": status, "message": plan.error_message, "status": _status_name(status)}
            frames.append(sse({"error": error}, crlf=True))
            return StreamReply(frames)
        frames += [sse(chunk, crlf=True) for chunk in self._chunks(gen, response_id)]
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
