"""Provider adapters: one module per provider, each wrapping its official SDK.

The SDKs are imported inside the adapters, on first use, so ``import orkestra`` stays light.
"""

from __future__ import annotations

from importlib import import_module

from orkestra.errors import UnknownProviderError
from orkestra.providers.base import Adapter, ClientSettings

__all__ = ["ADAPTERS", "make_adapter"]

ADAPTERS: dict[str, str] = {
    "openai": "orkestra.providers.openai:OpenAIAdapter",
    "anthropic": "orkestra.providers.anthropic:AnthropicAdapter",
    "google": "orkestra.providers.google:GoogleAdapter",
}


def make_adapter(provider: str, settings: ClientSettings) -> Adapter:
    try:
        module_name, class_name = ADAPTERS[provider].split(":")
    except KeyError:
        raise UnknownProviderError(f"no adapter for provider {provider!r}") from None
    adapter: Adapter = getattr(import_module(module_name), class_name)(settings)
    return adapter
