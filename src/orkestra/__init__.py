"""orkestra: send every LLM request to the cheapest model that will answer it well.

>>> import orkestra as o
>>> provider = o.Provider("google")          # key from GOOGLE_API_KEY / GEMINI_API_KEY
>>> response = provider.chat("Explain quantum computing")
>>> print(response.model, f"${response.cost:.6f}", f"saved {response.savings_percent:.1f}%")

No provider SDK is imported until its provider makes its first call, and ``o.verifiers``
(checks of a cheap answer, for cascades) is imported on first use.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from orkestra._cascade import CascadePolicy
from orkestra._multi import MultiProvider
from orkestra._provider import Provider, ResponseStream
from orkestra._request import ForcedTool, Image, Message, ResponseFormat, Tool
from orkestra._session import Conversation, Pin, Sessions, SessionStore
from orkestra._types import (
    TIERS,
    Attempt,
    Candidate,
    CascadeReport,
    CascadeStep,
    Neighbor,
    Replaced,
    Response,
    RoutingDecision,
    StopReason,
    Tier,
    ToolCall,
    Usage,
)
from orkestra._version import __version__
from orkestra.analytics import set_analytics
from orkestra.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    BudgetUnavailableError,
    CapabilityError,
    CircuitOpenError,
    ConfigurationError,
    DataFormatError,
    InvalidRequestError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelAliasWarning,
    ModelNotFoundError,
    ModelRetirementWarning,
    OrkestraError,
    OrkestraWarning,
    PoolTimeoutError,
    PricingError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RoutingError,
    StreamInterruptedError,
    StructuredOutputError,
    UnknownModelError,
    UnknownProviderError,
    UnknownStrategyError,
)
from orkestra.hooks import register_event, register_middleware
from orkestra.resilience import (
    FALLBACK_ORDERS,
    Budget,
    CircuitBreaker,
    RetryPolicy,
    SharedBudget,
    Timeouts,
    process_budget,
    set_process_budget,
)
from orkestra.resilience.call import AsyncResponseStream

if _TYPE_CHECKING:
    from orkestra import verifiers

__all__ = [
    "FALLBACK_ORDERS",
    "TIERS",
    "AsyncResponseStream",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "Budget",
    "BudgetExceededError",
    "BudgetUnavailableError",
    "Candidate",
    "CapabilityError",
    "CascadePolicy",
    "CascadeReport",
    "CascadeStep",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigurationError",
    "Conversation",
    "DataFormatError",
    "ForcedTool",
    "Image",
    "InvalidRequestError",
    "MalformedResponseError",
    "Message",
    "MissingAPIKeyError",
    "ModelAliasWarning",
    "ModelNotFoundError",
    "ModelRetirementWarning",
    "MultiProvider",
    "Neighbor",
    "OrkestraError",
    "OrkestraWarning",
    "Pin",
    "PoolTimeoutError",
    "PricingError",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "Replaced",
    "Response",
    "ResponseFormat",
    "ResponseStream",
    "RetryPolicy",
    "RoutingDecision",
    "RoutingError",
    "SessionStore",
    "Sessions",
    "SharedBudget",
    "StopReason",
    "StreamInterruptedError",
    "StructuredOutputError",
    "Tier",
    "Timeouts",
    "Tool",
    "ToolCall",
    "UnknownModelError",
    "UnknownProviderError",
    "UnknownStrategyError",
    "Usage",
    "__version__",
    "process_budget",
    "register_event",
    "register_middleware",
    "set_analytics",
    "set_process_budget",
    "verifiers",
]

_LAZY_MODULES = ("verifiers",)


def __getattr__(name: str) -> _Any:
    """``o.verifiers``: a submodule imported when first used, not with ``import orkestra``."""
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f"orkestra.{name}")
    raise AttributeError(f"module 'orkestra' has no attribute {name!r}")
