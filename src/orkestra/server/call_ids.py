"""Tool-call ids that carry provider state through OpenAI's wire.

Gemini 3 needs each call's ``thoughtSignature`` back with the next request, and OpenAI's wire
has no field for it. So a call with a signature leaves the proxy with the id
``"<id>~<signature>"`` (a signature is base64, which never contains ``~``), and an id coming back
is split at its last ``~`` (:func:`wire_call_id`, :func:`parse_call_id`). An id that itself
contains ``~`` leaves as ``"<id>~"`` so that it comes back unchanged.
"""

from __future__ import annotations

from orkestra import ToolCall

__all__ = ["SIGNATURE_SEPARATOR", "parse_call_id", "wire_call_id"]

SIGNATURE_SEPARATOR = "~"


def wire_call_id(call: ToolCall) -> str:
    """The id a tool call leaves the proxy with: its own, plus its signature when it has one."""
    if call.signature is None and SIGNATURE_SEPARATOR not in call.id:
        return call.id
    return f"{call.id}{SIGNATURE_SEPARATOR}{call.signature or ''}"


def parse_call_id(wire: str) -> tuple[str, str | None]:
    """The provider's id and signature back from an id :func:`wire_call_id` made."""
    if SIGNATURE_SEPARATOR not in wire:
        return wire, None
    call_id, _, signature = wire.rpartition(SIGNATURE_SEPARATOR)
    return call_id, signature or None
