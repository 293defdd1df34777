"""The errors orkestra raises, and the warnings it emits.

Every error is an :class:`OrkestraError`. Bad input is caught *before* any network call and raised
as a :class:`ConfigurationError`; what a provider answers is mapped, at one boundary
(``orkestra.providers._errors``), to a :class:`ProviderError`::

    OrkestraError
    ├── ConfigurationError          bad input, raised before any network call (also a ValueError)
    │   ├── UnknownProviderError    Provider("gemni")
    │   ├── UnknownModelError       a model id the catalog does not know
    │   ├── UnknownStrategyError    MultiProvider.chat(strategy="fastest")
    │   ├── MissingAPIKeyError      no key argument and no environment variable
    │   ├── InvalidRequestError     empty prompt, max_tokens < 1, temperature out of range,
    │   │                           text that is not valid Unicode (a lone surrogate)
    │   │   └── CapabilityError     no configured model has the tools/vision/JSON/context asked
    │   ├── PricingError            a model with no price: never billed as $0
    │   └── DataFormatError         a malformed routing-data or router-artifact file
    ├── ProviderError               the provider (or the way to it) failed
    │   ├── AuthenticationError     401/403, Gemini's 400 API_KEY_INVALID
    │   ├── BadRequestError         400/413/422: the provider refused the request
    │   ├── ModelNotFoundError      404: unknown or retired model
    │   ├── RateLimitError          429
    │   ├── ProviderUnavailableError  5xx and Anthropic's 529 "overloaded"
    │   │   └── CircuitOpenError    every candidate model is cooling down after repeated failures
    │   ├── ProviderTimeoutError    the call timed out
    │   ├── ProviderConnectionError the connection failed or was dropped
    │   └── StreamInterruptedError  a stream broke after text arrived (carries the partial text)
    ├── RoutingError                the router could not make a decision
    ├── PoolTimeoutError            all of a provider's max_connections stayed busy: not sent
    ├── StructuredOutputError       a response_format answer was not valid (carries the response)
    ├── BudgetExceededError         a spend cap would be passed: raised before the call
    └── BudgetUnavailableError      a shared budget's store (the usage database) is unreachable

An error raised after the resilience layer tried several times (retries, fallbacks) carries
every try in ``attempts`` (:class:`orkestra.Attempt`: model, error, usage and cost billed).
Messages never contain an API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orkestra._types import Attempt, Usage

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "BudgetUnavailableError",
    "CapabilityError",
    "CircuitOpenError",
    "ConfigurationError",
    "DataFormatError",
    "InvalidRequestError",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "ModelAliasWarning",
    "ModelNotFoundError",
    "ModelRetirementWarning",
    "OrkestraError",
    "OrkestraWarning",
    "PoolTimeoutError",
    "PricingError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitError",
    "RoutingError",
    "StreamInterruptedError",
    "StructuredOutputError",
    "UnknownModelError",
    "UnknownProviderError",
    "UnknownStrategyError",
]


class OrkestraError(Exception):
    """Base class of every error orkestra raises.

    ``attempts`` lists the calls made before the error was raised (empty when none was made).
    ``response`` is an answer that was made and billed all the same, when there is one: a
    :class:`StructuredOutputError`'s invalid answer, or the last answer of a cascade that could
    not climb to a stronger model (its check failed: see ``response.cascade``).
    """

    attempts: tuple[Attempt, ...] = ()
    response: Any = None


class ConfigurationError(OrkestraError, ValueError):
    """The call cannot be made as asked; nothing was sent to any provider."""


class UnknownProviderError(ConfigurationError):
    """The provider name is not one orkestra supports."""


class UnknownModelError(ConfigurationError):
    """The model id is not in the catalog (or not for that provider)."""


class UnknownStrategyError(ConfigurationError):
    """The multi-provider strategy is not one of the known strategies."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was given and the provider's environment variable is not set."""


class InvalidRequestError(ConfigurationError):
    """The request itself is malformed (empty prompt, bad max_tokens or temperature...)."""


class CapabilityError(InvalidRequestError):
    """No configured model can serve the request (it needs tools, vision, JSON output or a
    longer context than they have); nothing was sent.

    ``needs`` names what the request needs (``{"tools", "vision", "json", "context"}``).
    """

    def __init__(self, message: str, *, needs: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.needs = needs


class PricingError(ConfigurationError):
    """The model has no known price, so its cost cannot be reported."""


class DataFormatError(ConfigurationError):
    """A routing data file or router artifact is malformed, truncated or does not match."""


class RoutingError(OrkestraError):
    """The router could not make a decision."""


class ProviderError(OrkestraError):
    """A provider returned an error, or could not be reached.

    Attributes:
        provider: ``"google"``, ``"anthropic"`` or ``"openai"``.
        model: the model the call was for.
        status_code: the HTTP status, when there was one.
        retryable: whether the same call may succeed if tried again.
        retry_after: the delay (seconds) the provider asked for, if it said.
    """

    retryable_by_default = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        self.retryable = self.retryable_by_default


class AuthenticationError(ProviderError):
    """The provider rejected the API key."""


class BadRequestError(ProviderError):
    """The provider refused the request as invalid."""


class ModelNotFoundError(ProviderError):
    """The provider does not serve this model (unknown, retired, or not on this API version)."""


class RateLimitError(ProviderError):
    """The provider is rate-limiting or the quota is used up."""

    retryable_by_default = True


class ProviderUnavailableError(ProviderError):
    """The provider had a server error or is overloaded."""

    retryable_by_default = True


class ProviderTimeoutError(ProviderError):
    """The call did not finish in time."""

    retryable_by_default = True


class ProviderConnectionError(ProviderError):
    """The connection failed or was dropped."""

    retryable_by_default = True


class MalformedResponseError(ProviderError):
    """The provider answered ``200 OK`` with something that is not its API's answer: not JSON, or
    JSON without the answer's parts (a ``base_url`` pointing at another service, a captive
    portal or proxy in the way, a broken OpenAI-compatible server). Retried and fallen back
    from like a dropped connection, since a glitch in between may pass; a wrong ``base_url``
    fails the same way every time, with this error."""

    retryable_by_default = True


class CircuitOpenError(ProviderUnavailableError):
    """Every candidate model failed repeatedly just before and is skipped for a cooldown.

    ``retry_after`` says when the first of them will be probed again.
    """


class StreamInterruptedError(ProviderError):
    """A stream failed after some text had already been received.

    ``partial_text`` holds what arrived before the failure; ``usage`` what the provider had
    reported by then (a :class:`~orkestra.Usage`, or None: OpenAI reports usage only at the end;
    Anthropic and Gemini report the prompt's tokens as the stream starts). The layer never retries
    such a stream: its text was already handed to the caller.
    """

    retryable_by_default = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        partial_text: str = "",
        usage: Usage | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, status_code=status_code)
        self.partial_text = partial_text
        self.usage = usage


class PoolTimeoutError(OrkestraError):
    """Every one of a provider's ``max_connections`` stayed busy while this call waited for one
    (``Timeouts.pool`` seconds): nothing was sent.

    The provider did not fail, this process is at the limit it was given: the call neither
    falls back nor counts against the circuit breaker. ``waited``: the seconds it waited.
    """

    def __init__(
        self, message: str, *, provider: str, model: str | None = None, waited: float
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.waited = waited


class StructuredOutputError(OrkestraError):
    """A ``response_format=`` answer was not valid JSON or did not match its schema.

    The call was made and billed: ``response`` is the whole answer (with its cost), ``text``
    its raw text, ``reason`` what was wrong with it.
    """

    def __init__(self, message: str, *, text: str, reason: str, response: Any = None) -> None:
        super().__init__(message)
        self.text = text
        self.reason = reason
        self.response = response


class BudgetExceededError(OrkestraError):
    """What the call may cost would take a budget past its cap; nothing was sent.

    Attributes:
        budget: the budget's name (``"process"``, ``"provider:openai"``, ...).
        cap: its cap in dollars.
        spent: dollars already spent (plus those reserved by calls in flight).
        expected_cost: the most this call could have cost (what it would have reserved).
    """

    def __init__(
        self, message: str, *, budget: str, cap: float, spent: float, expected_cost: float
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.cap = cap
        self.spent = spent
        self.expected_cost = expected_cost


class BudgetUnavailableError(OrkestraError):
    """A shared budget could not reserve: its store (the usage database) could not be reached,
    so whether the call fits is unknown and nothing was sent."""


class OrkestraWarning(UserWarning):
    """Base class of orkestra's warnings."""


class ModelAliasWarning(OrkestraWarning):
    """A model name was replaced by its current successor (an old, retired or wrong id)."""


class ModelRetirementWarning(OrkestraWarning, FutureWarning):
    """A tier's model retires soon (within 30 days) or its successor has no price: the tier will
    move to the successor on that date. ``orkestra models --check`` lists them all."""
