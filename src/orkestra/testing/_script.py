"""What a test can script for the next request(s): a `Reply` or a `Fault`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal

FaultKind = Literal["status", "delay", "drop", "cut_stream", "stream_error", "malformed"]


@dataclass(frozen=True)
class Reply:
    """Override the default deterministic answer and usage for one request.

    ``text`` defaults to ``"[<model>] "`` followed by the first twelve words of the last user
    message. All counts are provider-independent *totals*; the server translates them into each
    provider's usage fields so that the same `Reply` bills the same on all three:

    - ``input_tokens``: the whole prompt, cache reads and cache writes included.
      Default: derived from the request text (about 4 characters a token), raised to at
      least ``cached_tokens + cache_write_tokens``.
    - ``output_tokens``: every billed output token, reasoning/thinking included.
      Default: ``ceil(len(text) / 4) + reasoning_tokens``.
    - ``cached_tokens``: prompt tokens read from the cache (part of ``input_tokens``).
    - ``cache_write_tokens``: prompt tokens written to the cache (part of ``input_tokens``).
    - ``reasoning_tokens``: hidden reasoning tokens (part of ``output_tokens``).

    How they land on the wire:

    - OpenAI chat: ``prompt_tokens`` = input_tokens, with ``cached_tokens`` and
      ``cache_write_tokens`` in ``prompt_tokens_details``; ``completion_tokens`` =
      output_tokens, with ``reasoning_tokens`` in ``completion_tokens_details``.
    - OpenAI Responses: the same, as ``input_tokens``/``output_tokens`` and their details.
    - Anthropic: ``input_tokens`` = input_tokens - cached - cache_write (it excludes the
      cache); ``cache_read_input_tokens`` = cached; ``cache_creation_input_tokens`` (and
      ``cache_creation.ephemeral_5m_input_tokens``) = cache_write; ``output_tokens`` =
      output_tokens, with ``output_tokens_details.thinking_tokens`` when there is reasoning.
    - Gemini: ``promptTokenCount`` = input_tokens, ``cachedContentTokenCount`` = cached (cache
      writes are ordinary prompt tokens); ``candidatesTokenCount`` = output_tokens - reasoning,
      ``thoughtsTokenCount`` = reasoning; ``totalTokenCount`` = prompt + candidates + thoughts.

    ``tool_calls``: answer with these calls instead of text, as ``(name, arguments)`` pairs
    (``finish_reason`` becomes the provider's "tool calls" reason). Without it a request with
    tools gets a call of its forced tool, else of its first tool (arguments sampled from the
    tool's schema) unless ``tool_choice`` is none or the last turn is a tool result (then the
    text answer quotes the results). A ``response_format`` request gets JSON sampled from its
    schema as its default text.

    ``finish_reason`` accepts ``"stop"`` or ``"length"`` (translated per provider) or any
    provider-native value, passed through verbatim (e.g. ``"content_filter"``, ``"SAFETY"``).
    The request's own output cap still applies: a reply longer than ``max_tokens`` is
    truncated and reported with the provider's "length" reason.

    ``logprobs``: the log probability of each answer token (the fake's tokens are 4-character
    pieces of the text), repeated in turn when there are fewer values than tokens; default
    -0.01 each. They are only sent when the request asks: OpenAI chat ``logprobs: true``
    (``choices[].logprobs.content``, with ``top_logprobs`` holding the chosen token) and Gemini
    ``generationConfig.responseLogprobs`` (``avgLogprobs`` and ``logprobsResult`` on the
    candidate), non-streaming.

    ``delay``: seconds to wait before answering (so that concurrent requests overlap).
    ``chunk_delay``: in a stream, seconds to wait before each frame after the first (a slow
    model: a client can leave mid-stream).

    >>> Reply("Hi!", input_tokens=1000, cached_tokens=800, reasoning_tokens=64)  # doctest: +SKIP
    """

    text: str | None = None
    _: KW_ONLY
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]] | None = None
    logprobs: Sequence[float] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.logprobs is not None and (
            not self.logprobs or not all(-math.inf < v <= 0 for v in self.logprobs)
        ):
            raise ValueError("Reply.logprobs must be a non-empty list of numbers <= 0")
        if self.delay < 0 or self.chunk_delay < 0:
            raise ValueError("Reply.delay and Reply.chunk_delay must be >= 0")
        for name in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"Reply.{name} must be >= 0")
        if self.input_tokens is not None and self.input_tokens < (
            self.cached_tokens + self.cache_write_tokens
        ):
            raise ValueError("Reply.input_tokens must include cached_tokens and cache_write_tokens")
        if self.output_tokens is not None and self.output_tokens < self.reasoning_tokens:
            raise ValueError("Reply.output_tokens must include reasoning_tokens")


@dataclass(frozen=True)
class Fault:
    """A failure to inject; build one with the classmethods, e.g. ``Fault.status(429)``."""

    kind: FaultKind
    status_code: int = 0
    retry_after: float | None = None
    retry_after_ms: float | None = None
    message: str | None = None
    seconds: float = 0.0
    after_chunks: int = 0
    error_type: str = "overloaded_error"
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        message: str | None = None,
    ) -> Fault:
        """Answer with HTTP ``code`` and the provider's real error body for it.

        ``retry_after`` (seconds) and ``retry_after_ms`` become the ``retry-after`` and
        ``retry-after-ms`` headers for OpenAI and Anthropic; Gemini gets the delay as a
        ``google.rpc.RetryInfo`` detail instead. For 429 and 5xx with neither given, OpenAI
        and Anthropic get ``retry-after-ms: 1`` so an SDK retry is instant. Keep hints small
        when the client retries: the Anthropic SDK sleeps for any positive hint, uncapped.
        """
        if not 400 <= code <= 599:
            raise ValueError("Fault.status needs an HTTP error status (400-599)")
        for value in (retry_after, retry_after_ms):
            if value is not None and value < 0:
                raise ValueError("retry hints must be >= 0")
        return cls(
            "status",
            status_code=code,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            message=message,
        )

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Sleep ``seconds`` before answering normally (to trigger client timeouts)."""
        if seconds < 0:
            raise ValueError("Fault.delay needs seconds >= 0")
        return cls("delay", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls("drop")

    @classmethod
    def cut_stream(cls, after_chunks: int = 1) -> Fault:
        """Send ``after_chunks`` content deltas, then close the socket mid-body.

        No usage or stop events and no terminating chunk follow, so the client sees an
        incomplete body. A non-streaming request gets its headers (with Content-Length) and
        half of its body instead.
        """
        if after_chunks < 0:
            raise ValueError("after_chunks must be >= 0")
        return cls("cut_stream", after_chunks=after_chunks)

    @classmethod
    def malformed(cls, body: bytes = b"[]", *, content_type: str = "application/json") -> Fault:
        """Answer ``200 OK`` with ``body`` instead of the provider's answer, streaming or not:
        what a wrong ``base_url``, a captive portal or a broken compatible server sends (the
        default is valid JSON that is not an object)."""
        return cls("malformed", body=bytes(body), content_type=content_type)

    @classmethod
    def stream_error(
        cls,
        after_chunks: int = 1,
        *,
        error_type: str = "overloaded_error",
        message: str = "Overloaded",
    ) -> Fault:
        """After ``after_chunks`` deltas, send the provider's in-stream error, then end the stream.

        ``error_type`` uses Anthropic's names (``overloaded_error``, ``rate_limit_error``,
        ``api_error``, ...); OpenAI and Gemini get the equivalent for the matching status.
        A non-streaming request gets that status as an ordinary error response.
        """
        if after_chunks < 0:
            raise ValueError("after_chunks must be >= 0")
        return cls(
            "stream_error", after_chunks=after_chunks, error_type=error_type, message=message
        )
