"""The request vocabulary every layer speaks, from the public methods and the proxy down to the
adapters: a conversation's :class:`Message` turns (with :class:`Image` parts and tool calls), the
:class:`Tool` functions a model may call, a :class:`ForcedTool` choice, a :class:`ResponseFormat`,
a call's :class:`ModelParams` (stop sequences, sampling, seed, reasoning effort...) and its
:class:`RequestOptions`.

These are plain values, already checked: user input (OpenAI-style dicts, pydantic models, JSON
Schemas) is parsed into them by :mod:`orkestra._conversation` and :mod:`orkestra._options`, the
proxy parses its wire format into them, and each adapter translates them into its SDK's call.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from orkestra._schema import SchemaProblem, schema_problem
from orkestra._types import ToolCall

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TEMPERATURE",
    "PARAM_NAMES",
    "REASONING_EFFORTS",
    "ForcedTool",
    "Image",
    "Message",
    "ModelParams",
    "ParamArgs",
    "ReasoningEffort",
    "RequestOptions",
    "ResponseFormat",
    "Role",
    "Tool",
    "ToolChoice",
]

DEFAULT_MAX_TOKENS = 8192
DEFAULT_TEMPERATURE = 1.0

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class Image:
    """An image in a user turn: a ``data:`` URL (inline bytes) or an ``http(s)`` URL."""

    url: str

    @property
    def inline(self) -> tuple[str, str] | None:
        """``(media_type, base64 data)`` for a ``data:`` URL, None for a web URL."""
        if not self.url.startswith("data:"):
            return None
        head, _, data = self.url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding != "base64":
            raise ValueError("an image data: URL must be base64-encoded")
        return media_type or "application/octet-stream", data

    def validate(self) -> None:
        """Raise ValueError for a URL no provider can take."""
        inline = self.inline
        if inline is None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError("an image URL must be a data: URL or an http(s) URL")
            return
        media_type, data = inline
        if not media_type.startswith("image/"):
            raise ValueError(f"an image data: URL must hold an image/*, not {media_type!r}")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("an image data: URL holds invalid base64") from None


@dataclass(frozen=True)
class Message:
    """One turn. ``tool_calls`` on an assistant turn are the calls it made; a ``tool`` turn
    answers the call ``tool_call_id`` (``name``: that call's function, filled in from it)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and a JSON Schema of its
    arguments (OpenAI's function-tool format is the common one)."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass(frozen=True)
class ForcedTool:
    """``tool_choice`` naming one tool the model must call."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass(frozen=True)
class ResponseFormat:
    """Structured output: a JSON Schema the answer must match, or ``schema=None`` for any JSON
    object (JSON mode). ``strict`` asks providers that have a strict mode to enforce it."""

    name: str = "response"
    schema: Mapping[str, Any] | None = None
    strict: bool = False

    def schema_problem(self) -> SchemaProblem | None:
        """Why ``schema`` cannot be used, or None: within orkestra's size and depth limits, a
        valid JSON Schema (:func:`orkestra._schema.schema_problem`), with an object at its top
        (what every provider's structured output takes)."""
        if self.schema is None:
            return None
        problem = schema_problem(self.schema)
        if problem is None and self.schema.get("type") != "object":
            problem = SchemaProblem(
                "the schema's top level must be {'type': 'object', ...}", "invalid_schema"
            )
        return problem


ReasoningEffort = Literal["minimal", "low", "medium", "high"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = ("minimal", "low", "medium", "high")

PARAM_NAMES = (
    "stop",
    "top_p",
    "seed",
    "parallel_tool_calls",
    "reasoning_effort",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
)
"""The optional parameters a call may pass (:class:`ModelParams`), by the names the catalog's
``unsupported_params`` uses for the models that cannot take them."""


class ParamArgs(TypedDict, total=False):
    """The keyword arguments of :class:`ModelParams` as ``chat()`` and its siblings take them.

    Each is sent only to a model that takes it (translated into its provider's form); a model
    that cannot (the catalog's ``unsupported_params``) is called without it, which
    :attr:`Response.ignored_params` reports (and a warning, once per model and parameter).
    """

    stop: str | list[str] | tuple[str, ...]
    """Up to 4 sequences the answer stops before (OpenAI ``stop``, Anthropic
    ``stop_sequences``, Gemini ``stopSequences``)."""
    top_p: float
    """Nucleus sampling, in [0, 1]."""
    seed: int
    """Best-effort deterministic sampling (OpenAI, Gemini)."""
    parallel_tool_calls: bool
    """False: at most one tool call per answer (OpenAI ``parallel_tool_calls``, Anthropic
    ``disable_parallel_tool_use``). Only sent with tools; True is every provider's default."""
    reasoning_effort: ReasoningEffort
    """How hard a reasoning model thinks: OpenAI ``reasoning_effort``, Gemini
    ``thinkingConfig.thinkingBudget``."""
    presence_penalty: float
    """In [-2, 2]."""
    frequency_penalty: float
    """In [-2, 2]."""
    logit_bias: dict[str, float]
    """Token id (as a string) → bias in [-100, 100] (OpenAI's tokenizer ids)."""


@dataclass(frozen=True)
class ModelParams:
    """A call's optional generation parameters, checked (see :class:`ParamArgs`); None (and no
    stop sequence) means not set: the model's own default, nothing sent."""

    stop: tuple[str, ...] = ()
    top_p: float | None = None
    seed: int | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: ReasoningEffort | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None

    def given(self) -> tuple[str, ...]:
        """The names of the parameters set, in :data:`PARAM_NAMES` order."""
        return tuple(name for name in PARAM_NAMES if getattr(self, name) not in (None, ()))

    def without(self, names: frozenset[str] | set[str]) -> ModelParams:
        """These parameters with ``names`` unset."""
        if not names & set(self.given()):
            return self
        defaults = ModelParams()
        return dataclasses.replace(self, **{n: getattr(defaults, n) for n in names})


@dataclass(frozen=True)
class RequestOptions:
    """What a call asks for besides its messages, already checked: the output limit and
    temperature, tools, structured output, a sticky session and the optional parameters."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    response_format: ResponseFormat | None = None
    response_model: Any = None
    """The pydantic model class given as ``response_format``, if one was."""
    session: str | None = None
    params: ModelParams = field(default_factory=ModelParams)

    def needs(self, conversation: tuple[Message, ...] | None) -> frozenset[str]:
        """The catalog capabilities a model needs to serve this request."""
        needs = set()
        if self.tools or (conversation and any(m.tool_calls for m in conversation)):
            needs.add("tools")
        if self.response_format is not None:
            needs.add("json")
        if conversation and any(m.images for m in conversation):
            needs.add("vision")
        return frozenset(needs)
