"""``MultiProvider``'s public calls: ``chat``, ``stream``, ``stream_text`` and their async twins.

Each spells out its parameters (for editors and ``help()``) and hands them over as one typed
:class:`~orkestra._hooked.CallArgs`; :class:`~orkestra._hooked.HookedCalls` runs the hooks and
the multi-provider's ``_prepare`` does the rest.
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

__all__ = ["MultiProviderCalls"]


class MultiProviderCalls(HookedCalls):
    """The call methods of :class:`~orkestra.MultiProvider`."""

    def chat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
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
        """Pick a provider and model with the strategy, call it, return the answer.

        ``tools``, ``tool_choice``, ``response_format`` and ``session_id`` as in
        :meth:`Provider.chat`; only models that support what the request needs are considered.
        """
        return self._hooked_chat(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                strategy=strategy,
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
                multi=True,
            )
        )

    def stream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
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
        """Like :meth:`chat`, streaming: iterate for text chunks, then read ``.response``."""
        return self._hooked_stream(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                strategy=strategy,
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
                multi=True,
            )
        )

    def stream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
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
        """Stream the answer's text chunks (``str``) from the chosen model."""
        return iter(
            self._hooked_stream(
                CallArgs(
                    prompt,
                    messages,
                    max_tokens,
                    temperature,
                    strategy=strategy,
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
                    multi=True,
                )
            )
        )

    async def achat(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
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
        """:meth:`chat` for async code: ``response = await multi.achat(...)``. The same
        routing, retries, fallbacks, budgets, hooks and usage log, on the SDK's async client."""
        return await self._hooked_achat(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                strategy=strategy,
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
                multi=True,
            )
        )

    async def astream(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
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
        """:meth:`stream` for async code: ``stream = await multi.astream(...)`` runs the
        middleware and routes (errors in the request raise here, as with ``stream()``); then
        ``async for chunk in stream``, and ``stream.response`` when it ends. For the chunks
        alone in one line: ``async for chunk in multi.astream_text(...)``."""
        return await self._hooked_astream(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                strategy=strategy,
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
                multi=True,
            )
        )

    async def astream_text(
        self,
        prompt: str | None = None,
        *,
        messages: Messages | None = None,
        strategy: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
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
        """:meth:`stream_text` for async code: ``async for chunk in multi.astream_text(...)``
        (the stream is closed when the loop stops early)."""
        stream = await self._hooked_astream(
            CallArgs(
                prompt,
                messages,
                max_tokens,
                temperature,
                strategy=strategy,
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
                multi=True,
            )
        )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()
