"""The model catalog (tiers, aliases, retirements, quirks) and prices."""

from orkestra.catalog._catalog import (
    Catalog,
    ModelInfo,
    ProviderInfo,
    Resolution,
    default_catalog,
    today,
)
from orkestra.catalog.cost import Price, cost_of, price_of

__all__ = [
    "Catalog",
    "ModelInfo",
    "Price",
    "ProviderInfo",
    "Resolution",
    "cost_of",
    "default_catalog",
    "price_of",
    "today",
]
