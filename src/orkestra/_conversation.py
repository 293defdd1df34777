"""A call's input: one prompt string, or a conversation of OpenAI-style messages.

``messages=[{"role": "system" | "user" | "assistant" | "tool", "content": "..."}, ...]`` in
OpenAI's format is translated faithfully by each adapter (Anthropic's top-level ``system`` and
``tool_use``/``tool_result`` blocks, Gemini's ``systemInstruction``, ``model`` role and
``functionCall``/``functionResponse`` parts, OpenAI's roles). Content may be a string or a list
of ``{"type": "text"}`` parts, plus ``{"type": "image_url"}`` parts in user turns (``data:``
or ``http(s)`` URLs); other part types (audio, files) are refused rather than dropped. An
assistant turn may carry ``tool_calls``; a ``tool`` turn answers one by its ``tool_call_id``.

Routing reads the **last user turn**: it is what the model must answer now, and what the
reference prompts of the router's index look like (single questions or tasks). A last turn of
fewer than eight words ("yes, do that") is read together with the user turn before it, so a
follow-up is routed by what it follows up on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from orkestra._request import Image, Message
from orkestra._types import ToolCall
from orkestra.errors import InvalidRequestError

__all__ = ["Messages", "Prompt", "prompt_text", "resolve_input"]

Messages = Sequence[Mapping[str, Any] | Message]
_ROLES = ("system", "user", "assistant", "tool")


def _content(value: Any, index: int, role: str) -> tuple[str, tuple[Image, ...]]:
    """The text of a turn's content, and its images (user turns only)."""
    if value is None:
        return "", ()
    if isinstance(value, str):
        return value, ()
    if isinstance(value, list):
        texts: list[str] = []
        images: list[Image] = []
        for part in value:
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            if kind == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidRequestError(
                        f"messages[{index}]: a text part needs a 'text' string"
                    )
                texts.append(text)
            elif kind == "image_url" and role == "user":
                images.append(_image(part.get("image_url"), index))
            else:
                where = "in a user turn " if kind == "image_url" else ""
                raise InvalidRequestError(
                    f"messages[{index}]: content part of type {kind!r} is not supported "
                    f"{where}(text parts, and image_url parts in user turns)"
                )
        return "".join(texts), tuple(images)
    raise InvalidRequestError(
        f"messages[{index}]: content must be a string or a list of content parts, "
        f"not {type(value).__name__}"
    )


def _image(value: Any, index: int) -> Image:
    url = value.get("url") if isinstance(value, Mapping) else value
    if not isinstance(url, str):
        raise InvalidRequestError(f"messages[{index}]: an image_url part needs a 'url' string")
    image = Image(url)
    try:
        image.validate()
    except ValueError as e:
        raise InvalidRequestError(f"messages[{index}]: {e}") from None
    return image


def _tool_call(value: Any, index: int) -> ToolCall:
    if isinstance(value, ToolCall):
        return value
    function = value.get("function") if isinstance(value, Mapping) else None
    call_id = value.get("id") if isinstance(value, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(
            f"messages[{index}]: a tool call needs an 'id' and a 'function' "
            "{'name', 'arguments'} (OpenAI's format)"
        )
    name, arguments = function.get("name"), function.get("arguments", "{}")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"messages[{index}]: a tool call needs a function name")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ToolCall(call_id, name, arguments, signature=value.get("signature"))


def _message(item: Mapping[str, Any] | Message, index: int) -> Message:
    if isinstance(item, Message):
        return item
    if not isinstance(item, Mapping):
        raise InvalidRequestError(
            f"messages[{index}] must be a {{'role': ..., 'content': ...}} mapping"
        )
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequestError(
            f"messages[{index}]: role must be one of {', '.join(_ROLES)}, not {role!r}"
        )
    text, images = _content(item.get("content"), index, role)
    calls = item.get("tool_calls") or ()
    if calls and role != "assistant":
        raise InvalidRequestError(f"messages[{index}]: only assistant turns carry tool_calls")
    if not isinstance(calls, (list, tuple)):
        raise InvalidRequestError(f"messages[{index}]: tool_calls must be a list")
    tool_call_id = item.get("tool_call_id")
    if role == "tool" and not (isinstance(tool_call_id, str) and tool_call_id):
        raise InvalidRequestError(f"messages[{index}]: a tool turn needs its 'tool_call_id'")
    return Message(
        role,
        text,
        tool_calls=tuple(_tool_call(c, index) for c in calls),
        tool_call_id=tool_call_id if role == "tool" else None,
        name=item.get("name") if role == "tool" else None,
        images=images,
    )


def _link_tool_results(conversation: tuple[Message, ...]) -> tuple[Message, ...]:
    """Give each tool turn the name of the call it answers (Gemini needs it); refuse a result
    for a call no earlier assistant turn made."""
    names: dict[str, str] = {}
    linked = []
    for index, turn in enumerate(conversation):
        for call in turn.tool_calls:
            names[call.id] = call.name
        m = turn
        if m.role == "tool":
            assert m.tool_call_id is not None
            if m.tool_call_id not in names:
                raise InvalidRequestError(
                    f"messages[{index}]: tool result for {m.tool_call_id!r}, which no earlier "
                    "assistant turn called"
                )
            if m.name is None:
                m = Message(
                    "tool", m.content, tool_call_id=m.tool_call_id, name=names[m.tool_call_id]
                )
        linked.append(m)
    return tuple(linked)


def resolve_input(
    prompt: object, messages: Messages | None
) -> tuple[str, tuple[Message, ...] | None]:
    """The text to route on, and the conversation to send (None: just the prompt).

    Raises :class:`InvalidRequestError` for both or neither given, an unknown role, or a
    conversation without a user turn.
    """
    if messages is None:
        if prompt is None:
            raise InvalidRequestError("give a prompt or messages=[...]")
        return prompt, None  # type: ignore[return-value]  # validated by validate_request
    if prompt is not None:
        raise InvalidRequestError("give a prompt or messages=[...], not both")
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError("messages must be a list of {'role': ..., 'content': ...}")
    conversation = _link_tool_results(tuple(_message(m, i) for i, m in enumerate(messages)))
    users = [m for m in conversation if m.role == "user"]
    if not users:
        raise InvalidRequestError("messages need at least one user turn")
    if not users[-1].content.strip() and not users[-1].images:
        raise InvalidRequestError("the last user turn is empty: there is nothing to answer")
    return routing_text(users), conversation


SHORT_TURN_WORDS = 8
"""A last user turn shorter than this ("yes, go on") is routed with the turn before it."""


def routing_text(users: Sequence[Message]) -> str:
    """What the router reads: the last user turn, prefixed with the previous user turn when the
    last one is too short to say what is being asked."""
    last = users[-1].content.strip() or "(image)"
    if len(last.split()) < SHORT_TURN_WORDS and len(users) > 1:
        previous = users[-2].content.strip()
        if previous:
            return f"{previous}\n{last}"
    return last


Prompt = str | tuple[Message, ...]
"""What a call sends: a prompt string (one user turn) or a whole conversation."""


def prompt_text(prompt: Prompt) -> str:
    """All the text of a call's input (for token estimates)."""
    if isinstance(prompt, str):
        return prompt
    parts = []
    for m in prompt:
        parts.append(m.content)
        parts.extend(f"{c.name}({c.arguments})" for c in m.tool_calls)
    return "\n".join(parts)
