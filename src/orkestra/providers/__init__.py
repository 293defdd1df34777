"""Provider adapters: one module per API, each wrapping its official SDK.

The catalog says which adapter speaks to a provider (``ProviderInfo.adapter``): every
OpenAI-compatible preset (groq, deepseek, ollama, ...) is spoken to by the OpenAI adapter.
The SDKs are imported inside the adapters, on first use, so ``import orkestra`` stays light.
"""

from __future__ import annotations

import dataclasses
from importlib import import_module

from orkestra.catalog import ProviderInfo, default_catalog
from orkestra.errors import ConfigurationError, UnknownProviderError
from orkestra.providers.base import Adapter, ClientSettings

__all__ = ["ADAPTERS", "make_adapter"]

ADAPTERS: dict[str, str] = {
    "openai": "orkestra.providers.openai:OpenAIAdapter",
    "anthropic": "orkestra.providers.anthropic:AnthropicAdapter",
    "google": "orkestra.providers.google:GoogleAdapter",
}


def make_adapter(provider: ProviderInfo | str, settings: ClientSettings) -> Adapter:
    """The adapter for ``provider`` (a name in the default catalog, or a :class:`ProviderInfo`).

    The adapter is the one the catalog names, not the provider's name, so
    ``make_adapter("groq", ...)`` speaks OpenAI's protocol. Settings without a base URL get the
    preset's (so a Groq key is never sent to OpenAI's default address), and a compatible preset
    is flagged ``compatible``. An OpenAI-compatible provider with no address at all is refused.
    """
    info = default_catalog().provider(provider) if isinstance(provider, str) else provider
    try:
        module_name, class_name = ADAPTERS[info.adapter].split(":")
    except KeyError:
        raise UnknownProviderError(
            f"no adapter {info.adapter!r} for provider {info.name!r}; "
            f"use one of {', '.join(ADAPTERS)}"
        ) from None
    base_url = settings.base_url or info.base_url
    if base_url is None and info.compatible:
        raise ConfigurationError(
            f"{info.name} has no default address: pass base_url=..., "
            "e.g. 'http://localhost:8000/v1'"
        )
    settings = dataclasses.replace(
        settings, base_url=base_url, compatible=settings.compatible or info.compatible
    )
    adapter: Adapter = getattr(import_module(module_name), class_name)(settings)
    return adapter
