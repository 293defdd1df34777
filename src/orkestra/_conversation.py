"""A call's input: one prompt string, or a conversation of OpenAI-style messages.

``messages=[{"role": "system" | "user" | "assistant", "content": "..."}, ...]`` is translated
faithfully by each adapter (Anthropic's top-level ``system``, Gemini's ``systemInstruction`` and
``model`` role, OpenAI's roles). Content may be a string or a list of ``{"type": "text"}`` parts;
other part types (images, audio) are refused with a clear error rather than dropped.

Routing reads the **last user turn**: it is what the model must answer now, and what the
reference prompts of the router's index look like (single questions or tasks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orkestra.errors import InvalidRequestError
from orkestra.providers.base import Message

__all__ = ["Messages", "Prompt", "prompt_text", "resolve_input"]

Messages = Sequence[Mapping[str, Any] | Message]
_ROLES = ("system", "user", "assistant")


def _content(value: Any, index: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if not (isinstance(part, Mapping) and part.get("type") == "text"):
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise InvalidRequestError(
                    f"messages[{index}]: content part of type {kind!r} is not supported yet "
                    "(text only)"
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequestError(f"messages[{index}]: a text part needs a 'text' string")
            texts.append(text)
        return "".join(texts)
    raise InvalidRequestError(
        f"messages[{index}]: content must be a string or a list of text parts, "
        f"not {type(value).__name__}"
    )


def _message(item: Mapping[str, Any] | Message, index: int) -> Message:
    if isinstance(item, Message):
        return item
    if not isinstance(item, Mapping):
        raise InvalidRequestError(
            f"messages[{index}] must be a {{'role': ..., 'content': ...}} mapping"
        )
    role = item.get("role")
    if role not in _ROLES:
        hint = " (tool messages are not supported yet)" if role == "tool" else ""
        raise InvalidRequestError(
            f"messages[{index}]: role must be one of {', '.join(_ROLES)}, not {role!r}{hint}"
        )
    return Message(role, _content(item.get("content"), index))


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
    conversation = tuple(_message(m, i) for i, m in enumerate(messages))
    users = [m.content for m in conversation if m.role == "user"]
    if not users:
        raise InvalidRequestError("messages need at least one user turn")
    return users[-1], conversation


Prompt = str | tuple[Message, ...]
"""What a call sends: a prompt string (one user turn) or a whole conversation."""


def prompt_text(prompt: Prompt) -> str:
    """All the text of a call's input (for token estimates)."""
    return prompt if isinstance(prompt, str) else "\n".join(m.content for m in prompt)
