"""The SDKs' async clients against the fake server (the same wire, another HTTP stack path)."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from orkestra.testing import FakeProviderServer, Fault

USER = [{"role": "user", "content": "Hello from asyncio"}]


async def _exercise(server: FakeProviderServer) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    async with openai.AsyncOpenAI(
        api_key=server.api_key, base_url=server.openai_base_url, max_retries=0
    ) as oai:
        completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        stream = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        deltas = [c.choices[0].delta.content async for c in stream if c.choices]
        texts["openai"] = [
            completion.choices[0].message.content or "",
            "".join(filter(None, deltas)),
        ]
    async with anthropic.AsyncAnthropic(
        api_key=server.api_key, base_url=server.anthropic_base_url, max_retries=0
    ) as claude:
        message = await claude.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=USER
        )
        async with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=USER
        ) as stream_manager:
            streamed = "".join([t async for t in stream_manager.text_stream])
        texts["anthropic"] = [message.content[0].text, streamed]  # type: ignore[union-attr]
    client = genai.Client(
        api_key=server.api_key,
        http_options=types.HttpOptions(base_url=server.google_base_url, api_version="v1beta"),
    )
    try:
        response = await client.aio.models.generate_content(
            model="gemini-3.5-flash", contents=USER[0]["content"]
        )
        chunks = await client.aio.models.generate_content_stream(
            model="gemini-3.5-flash", contents=USER[0]["content"]
        )
        texts["google"] = [response.text or "", "".join([c.text or "" async for c in chunks])]
    finally:
        await client.aio.aclose()
        client.close()
    return texts


def test_async_clients_plain_and_streamed(server: FakeProviderServer) -> None:
    texts = asyncio.run(_exercise(server))
    assert texts == {
        "openai": ["[gpt-4o-mini] Hello from asyncio"] * 2,
        "anthropic": ["[claude-haiku-4-5] Hello from asyncio"] * 2,
        "google": ["[gemini-3.5-flash] Hello from asyncio"] * 2,
    }
    assert len(server.requests) == 6


def test_async_openai_sees_faults(server: FakeProviderServer) -> None:
    async def run() -> None:
        async with openai.AsyncOpenAI(
            api_key=server.api_key, base_url=server.openai_base_url, max_retries=0
        ) as oai:
            with pytest.raises(openai.RateLimitError):
                await oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
            with pytest.raises(openai.APIConnectionError):
                stream = await oai.chat.completions.create(
                    model="gpt-4o-mini", messages=USER, stream=True
                )
                async for _ in stream:
                    pass

    server.queue(Fault.status(429))
    server.queue(Fault.cut_stream(after_chunks=1))
    asyncio.run(run())
    assert len(server.requests) == 2
