"""The model catalog (providers and presets, tiers, aliases, retirements, quirks) and prices.

Add or override models with ``Provider(name, models={...})``, :func:`register_model`, or a file
named by ``ORKESTRA_CATALOG`` (see docs/providers.md).
"""

from orkestra.catalog._catalog import Catalog
from orkestra.catalog._default import bundled_catalog, default_catalog, register_model
from orkestra.catalog._types import CAPABILITIES, ModelInfo, Price, ProviderInfo, Resolution, today
from orkestra.catalog.cost import cost_of, price_of

__all__ = [
    "CAPABILITIES",
    "Catalog",
    "ModelInfo",
    "Price",
    "ProviderInfo",
    "Resolution",
    "bundled_catalog",
    "cost_of",
    "default_catalog",
    "price_of",
    "register_model",
    "today",
]
