"""A call's input, checked once: the :class:`Request` every layer below the public methods works
from (like ``llm``'s ``Prompt``: one object carries the call).

``Provider.chat(...)`` and its siblings put their arguments in a ``CallArgs``
(:mod:`orkestra._hooked`); after the middleware, :func:`read_input` checks everything, before
any network call, and the rest of the call (routing, planning, the resilience layer, the
endpoint) reads the :class:`Request`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orkestra._conversation import Messages, Prompt, prompt_text, resolve_input
from orkestra._options import parse_options, parse_params
from orkestra._request import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, Message, RequestOptions
from orkestra._unicode import check_unicode
from orkestra.errors import InvalidRequestError
from orkestra.resilience.budget import input_token_bound
from orkestra.routing.policy import estimate_input_tokens

__all__ = ["Request", "read_input", "validate_knob", "validate_request"]


def validate_request(prompt: object, max_tokens: object, temperature: object) -> str:
    """Check a call's arguments before anything is sent; returns the prompt."""
    if not isinstance(prompt, str):
        raise InvalidRequestError(f"prompt must be a str, not {type(prompt).__name__}")
    if not prompt.strip():
        raise InvalidRequestError("prompt is empty: there is nothing to send")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError(f"max_tokens must be an integer ≥ 1, not {max_tokens!r}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0.0 <= temperature <= 2.0
    ):
        raise InvalidRequestError(f"temperature must be a number in [0, 2], not {temperature!r}")
    return prompt


def validate_knob(quality: object) -> float:
    if (
        isinstance(quality, bool)
        or not isinstance(quality, (int, float))
        or not 0.0 <= quality <= 1.0
    ):
        raise InvalidRequestError(f"quality must be a number in [0, 1], not {quality!r}")
    return float(quality)


@dataclass(frozen=True)
class Request:
    """A call's input, checked before anything is sent: the text the router reads, what is
    sent and with which options, the capabilities it needs, the prompt's estimated size and
    the most tokens it can be (``input_bound``: what budgets reserve for)."""

    text: str
    conversation: tuple[Message, ...] | None
    options: RequestOptions
    needs: frozenset[str]
    all_text: str
    input_tokens: int
    input_bound: int = 0

    @property
    def prompt(self) -> Prompt:
        """What is sent: the prompt string (one user turn) or the whole conversation."""
        return self.conversation or self.text


def read_input(
    prompt: object,
    messages: Messages | None,
    *,
    max_tokens: object = DEFAULT_MAX_TOKENS,
    temperature: object = DEFAULT_TEMPERATURE,
    tools: Sequence[Any] | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    session_id: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Request:
    """Check everything a call (or a ``route``) was given; raises before any network call.
    ``params``: the optional parameters (``stop=``, ``top_p=``...) by name."""
    text, conversation = resolve_input(prompt, messages)
    validate_request(text, max_tokens, temperature)
    options = parse_options(tools, tool_choice, response_format, session_id)
    model_params = parse_params(params or {})
    # Everything that will be sent, so a bad character is named here, not deep in an SDK.
    if conversation is None:
        check_unicode(text, "prompt")
    else:
        check_unicode(conversation, "messages")
    check_unicode(options.tools, "tools")
    check_unicode(options.response_format, "response_format")
    check_unicode(options.session, "session_id")
    check_unicode(model_params.stop, "stop")
    options = dataclasses.replace(
        options,
        max_tokens=max_tokens,  # type: ignore[arg-type]  # checked above
        temperature=float(temperature),  # type: ignore[arg-type]
        params=model_params,
    )
    all_text = prompt_text(conversation or text)
    needs = options.needs(conversation)
    bound = _input_bound(all_text, conversation, options)
    return Request(
        text, conversation, options, needs, all_text, estimate_input_tokens(all_text), bound
    )


def _input_bound(
    all_text: str, conversation: tuple[Message, ...] | None, options: RequestOptions
) -> int:
    """:func:`~orkestra.resilience.budget.input_token_bound` of everything the prompt bills:
    its text, its images, the tools declared and the ``response_format`` schema."""
    declared = [
        {"name": t.name, "description": t.description, "parameters": t.parameters}
        for t in options.tools
    ]
    fmt = options.response_format
    extra = json.dumps([declared, fmt.schema if fmt is not None else None], default=str)
    return input_token_bound(
        all_text,
        messages=len(conversation) if conversation else 1,
        images=sum(len(m.images) for m in conversation) if conversation else 0,
        tools=bool(options.tools),
        extra=extra,
    )
