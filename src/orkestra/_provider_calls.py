"""``Provider``'s public calls: ``chat``, ``stream``, ``stream_text`` and their async twins.

Each spells out its parameters (for editors and ``help()``) and hands them over as one typed
:class:`~orkestra._hooked.CallArgs`; :class:`~orkestra._hooked.HookedCalls` runs the hooks and
the provider's ``_prepare`` does the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from orkestra._conversation import Messages
from orkestra._hooked import CallArgs, HookedCalls
from orkestra._request import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from orkestra._types import Response
from orkestra.resilience.budget import Budget
from orkestra.resilience.call import AsyncResponseStream, ResponseStream
from orkestra.usage import UsageSink

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from orkestra._request import ParamArgs

__all__ = ["ProviderCalls"]


class ProviderCalls(HookedCalls):
    """The call methods of :class:`~orkestra.Provider` (its ``name`` goes with each call)."""

    name: str

    def chat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        cascade: bool | None = None,
        verifier: Any = None,
        **params: Unpack[ParamArgs],
    ) -> Response:
        """Route ``prompt`` (or a conversation: ``messages=[{"role", "content"}, ...]``), call
        the chosen model, return its answer with cost and savings.

        ``tools``: OpenAI-format function tools (or :class:`~orkestra.Tool`; the model's calls
        are in ``Response.tool_calls``); ``tool_choice``: ``"auto"``, ``"none"``,
        ``"required"`` or ``{"type": "function", "function": {"name": ...}}``.
        ``response_format``: a pydantic model, a JSON Schema, OpenAI's ``{"type":
        "json_schema" | "json_object"}`` or a :class:`~orkestra.ResponseFormat`; the validated
        answer is ``Response.parsed``. ``session_id``: keep a conversation on one model (see
        :class:`orkestra.Conversation`). ``budget``: a spend cap for this call too (a
        :class:`Budget`, e.g. one per user). ``usage_sink``: where this call is recorded
        (default: the provider's ``usage_sink``). ``cascade``: True asks the cheapest adequate
        tier first and climbs while ``verifier`` (default: the provider's) rejects the answer;
        False routes to one model; None: the provider's ``mode`` (``Response.cascade`` says
        what a cascade did).
        """
        return self._hooked_chat(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                model=model,
                quality=quality,
                tools=tools,
                tool_choice=tool_choice,
                response_format=response_format,
                session_id=session_id,
                params=params,
                budget=budget,
                usage_sink=usage_sink,
                cascade=cascade,
                verifier=verifier,
                provider=self.name,
            )
        )

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        cascade: bool | None = None,
        verifier: Any = None,
        cascade_streaming: str | None = None,
        **params: Unpack[ParamArgs],
    ) -> ResponseStream:
        """Like :meth:`chat`, streaming: iterate for text chunks, then read ``.response``.
        A cascade streams as ``cascade_streaming`` says (default: the policy's ``"buffer"``:
        an answer is held until its check passes; ``"replace"``: shown at once, and visibly
        replaced if its check fails — see ``stream.events()`` and docs/routing.md)."""
        return self._hooked_stream(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                model=model,
                quality=quality,
                tools=tools,
                tool_choice=tool_choice,
                response_format=response_format,
                session_id=session_id,
                params=params,
                budget=budget,
                usage_sink=usage_sink,
                cascade=cascade,
                verifier=verifier,
                cascade_streaming=cascade_streaming,
                provider=self.name,
            )
        )

    def stream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        cascade: bool | None = None,
        verifier: Any = None,
        cascade_streaming: str | None = None,
        **params: Unpack[ParamArgs],
    ) -> Iterator[str]:
        """Stream the answer's text chunks (``str``) from the routed model."""
        return iter(
            self._hooked_stream(
                CallArgs(
                    prompt,
                    messages,
                    max_tokens,
                    temperature,
                    model=model,
                    quality=quality,
                    tools=tools,
                    tool_choice=tool_choice,
                    response_format=response_format,
                    session_id=session_id,
                    params=params,
                    budget=budget,
                    usage_sink=usage_sink,
                    cascade=cascade,
                    verifier=verifier,
                    cascade_streaming=cascade_streaming,
                    provider=self.name,
                )
            )
        )

    async def achat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        cascade: bool | None = None,
        verifier: Any = None,
        **params: Unpack[ParamArgs],
    ) -> Response:
        """:meth:`chat` for async code: ``response = await provider.achat(...)``. The same
        routing, retries, fallbacks, budgets, hooks and usage log, on the SDK's async client."""
        return await self._hooked_achat(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                model=model,
                quality=quality,
                tools=tools,
                tool_choice=tool_choice,
                response_format=response_format,
                session_id=session_id,
                params=params,
                budget=budget,
                usage_sink=usage_sink,
                cascade=cascade,
                verifier=verifier,
                provider=self.name,
            )
        )

    async def astream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        cascade: bool | None = None,
        verifier: Any = None,
        cascade_streaming: str | None = None,
        **params: Unpack[ParamArgs],
    ) -> AsyncResponseStream:
        """:meth:`stream` for async code: ``stream = await provider.astream(...)`` runs the
        middleware and routes (errors in the request raise here, as with ``stream()``); then
        ``async for chunk in stream``, and ``stream.response`` when it ends. For the chunks
        alone in one line: ``async for chunk in provider.astream_text(...)``."""
        return await self._hooked_astream(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                model=model,
                quality=quality,
                tools=tools,
                tool_choice=tool_choice,
                response_format=response_format,
                session_id=session_id,
                params=params,
                budget=budget,
                usage_sink=usage_sink,
                cascade=cascade,
                verifier=verifier,
                cascade_streaming=cascade_streaming,
                provider=self.name,
            )
        )

    async def astream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        model: str | None = None,
        quality: float | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        session_id: str | None = None,
        budget: Budget | None = None,
        usage_sink: UsageSink | None = None,
        cascade: bool | None = None,
        verifier: Any = None,
        cascade_streaming: str | None = None,
        **params: Unpack[ParamArgs],
    ) -> AsyncIterator[str]:
        """:meth:`stream_text` for async code: ``async for chunk in provider.astream_text(...)``
        (the stream is closed when the loop stops early)."""
        stream = await self._hooked_astream(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                model=model,
                quality=quality,
                tools=tools,
                tool_choice=tool_choice,
                response_format=response_format,
                session_id=session_id,
                params=params,
                budget=budget,
                usage_sink=usage_sink,
                cascade=cascade,
                verifier=verifier,
                cascade_streaming=cascade_streaming,
                provider=self.name,
            )
        )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()
