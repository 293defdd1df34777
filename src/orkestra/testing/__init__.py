"""A fake OpenAI / Anthropic / Gemini server on 127.0.0.1 for testing with the real SDKs.

One thread serves all three providers' wire protocols, so the official ``openai``,
``anthropic`` and ``google-genai`` clients work against it unmodified::

    from orkestra.testing import FakeProviderServer, Fault, Reply

    with FakeProviderServer() as server:
        client = openai.OpenAI(api_key=server.api_key, base_url=server.openai_base_url)
        server.queue(Fault.status(429), provider="openai")   # the next OpenAI call fails
        server.queue(Reply("Hi!", cached_tokens=10))          # the one after answers this
        ...
        assert server.requests[0].model == "gpt-4o-mini"

Requests are validated the way the real APIs do it (keys, model ids and retirements, output
limits, reasoning-model parameters, API versions), and answered deterministically.
Run ``python -m orkestra.testing`` to serve in the foreground; pytest users can enable the
``fake_providers`` fixture with ``pytest_plugins = ["orkestra.testing.pytest_plugin"]``.
"""

from ._script import Fault, Reply
from ._server import FakeProviderServer, RecordedRequest

__all__ = ["FakeProviderServer", "Fault", "RecordedRequest", "Reply"]
