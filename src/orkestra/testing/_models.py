"""The models the fake server serves, and the facts it enforces about each.

Two sources, in this order:

- its own table of real provider facts (spec §5, checked 2026-11-26), kept independent of
  orkestra's catalog so the fake can catch a catalog that gets a quirk wrong: which snapshot
  the API reports back, the context and output limits, OpenAI reasoning models, Gemini ids
  served only on ``v1beta``;
- every other model the catalog can resolve to (bundled entries, ``ORKESTRA_CATALOG``,
  ``register_model``), with the catalog's limits and quirks, so a model the catalog starts to
  send on a retirement date is always served, with no list to keep in step by hand.

Retirement follows the clock the catalog uses (:func:`orkestra.catalog.today`, so
``ORKESTRA_TODAY`` moves both): on and after its date a model answers 404 as the real API does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

ProviderName = Literal["openai", "anthropic", "google"]


@dataclass(frozen=True)
class ModelFacts:
    """What the real API knows about one model id."""

    provider: ProviderName
    model_id: str
    context_window: int
    output_limit: int
    served_as: str  # the id the API reports in responses (OpenAI: the dated snapshot)
    retired: bool = False
    reasoning: bool = False  # OpenAI o-series / gpt-5*: max_completion_tokens, default temperature
    v1beta_only: bool = False  # Gemini preview ids that google-genai 3.x's /v1 does not serve
    retires_on: str | None = None  # announced shutdown date, ISO format
    display_name: str = ""

    def retired_on(self, day: dt.date) -> bool:
        """Shut down on ``day``: known retired, or its announced date has come."""
        return self.retired or (
            self.retires_on is not None and day >= dt.date.fromisoformat(self.retires_on)
        )


def _openai(
    model_id: str,
    snapshot: str,
    context: int,
    output: int,
    *,
    reasoning: bool = False,
    retired: bool = False,
    retires_on: str | None = None,
) -> list[ModelFacts]:
    facts = ModelFacts(
        "openai",
        model_id,
        context,
        output,
        snapshot,
        retired=retired,
        reasoning=reasoning,
        retires_on=retires_on,
        display_name=model_id,
    )
    entries = [facts]
    if snapshot != model_id:
        entries.append(
            ModelFacts(
                "openai",
                snapshot,
                context,
                output,
                snapshot,
                retired=retired,
                reasoning=reasoning,
                retires_on=retires_on,
                display_name=snapshot,
            )
        )
    return entries


def _claude(
    alias: str,
    snapshot: str | None,
    display_name: str,
    *,
    retired: bool = False,
    retires_on: str | None = None,
) -> list[ModelFacts]:
    served = snapshot or alias
    return [
        ModelFacts(
            "anthropic",
            model_id,
            200_000,
            64_000,
            served,
            retired=retired,
            retires_on=retires_on,
            display_name=display_name,
        )
        for model_id in ([alias, snapshot] if snapshot else [alias])
    ]


def _gemini(
    model_id: str,
    display_name: str,
    *,
    v1beta_only: bool = False,
    retired: bool = False,
    retires_on: str | None = None,
) -> ModelFacts:
    return ModelFacts(
        "google",
        model_id,
        1_048_576,
        65_536,
        model_id,
        retired=retired,
        v1beta_only=v1beta_only,
        retires_on=retires_on,
        display_name=display_name,
    )


_GPT4O = 128_000
_GPT41 = 1_047_576
_GPT5 = 272_000

_ENTRIES: list[ModelFacts] = [
    # OpenAI
    *_openai("gpt-4o-mini", "gpt-4o-mini-2024-07-18", _GPT4O, 16_384, retires_on="2027-01-14"),
    *_openai("gpt-4o", "gpt-4o-2024-08-06", _GPT4O, 16_384, retires_on="2027-01-14"),
    *_openai("gpt-4.1", "gpt-4.1-2025-04-14", _GPT41, 32_768, retires_on="2027-01-14"),
    *_openai("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", _GPT41, 32_768, retires_on="2027-01-14"),
    *_openai("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", _GPT41, 32_768, retired=True),
    *_openai("o3", "o3-2025-04-16", 200_000, 100_000, reasoning=True, retires_on="2026-12-11"),
    *_openai("o4-mini", "o4-mini-2025-04-16", 200_000, 100_000, reasoning=True, retired=True),
    *_openai("gpt-5", "gpt-5-2025-08-07", _GPT5, 128_000, reasoning=True, retires_on="2026-12-11"),
    *_openai(
        "gpt-5-mini",
        "gpt-5-mini-2025-08-07",
        _GPT5,
        128_000,
        reasoning=True,
        retires_on="2026-12-11",
    ),
    *_openai(
        "gpt-5-nano",
        "gpt-5-nano-2025-08-07",
        _GPT5,
        128_000,
        reasoning=True,
        retires_on="2026-12-11",
    ),
    *_openai("gpt-5.6-sol", "gpt-5.6-sol", _GPT5, 128_000, reasoning=True),
    *_openai("gpt-5.6-terra", "gpt-5.6-terra", _GPT5, 128_000, reasoning=True),
    *_openai("gpt-5.6-luna", "gpt-5.6-luna", _GPT5, 128_000, reasoning=True),
    # Anthropic
    *_claude("claude-haiku-4-5", "claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
    *_claude(
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        retires_on="2026-11-30",
    ),
    *_claude("claude-sonnet-4-6", None, "Claude Sonnet 4.6"),
    *_claude(
        "claude-opus-4-5", "claude-opus-4-5-20251101", "Claude Opus 4.5", retires_on="2027-01-22"
    ),
    *_claude("claude-opus-4-6", None, "Claude Opus 4.6"),
    *_claude("claude-opus-4-7", None, "Claude Opus 4.7"),
    *_claude("claude-opus-4-8", None, "Claude Opus 4.8"),
    *_claude("claude-opus-4-0", "claude-opus-4-20250514", "Claude Opus 4", retired=True),
    *_claude("claude-opus-4-1", "claude-opus-4-1-20250805", "Claude Opus 4.1", retired=True),
    *_claude(
        "claude-3-5-haiku-latest", "claude-3-5-haiku-20241022", "Claude Haiku 3.5", retired=True
    ),
    # Google
    _gemini("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite"),
    _gemini("gemini-2.5-flash", "Gemini 2.5 Flash", retires_on="2026-12-01"),
    _gemini("gemini-2.5-pro", "Gemini 2.5 Pro", retires_on="2026-12-01"),
    _gemini("gemini-3-flash-preview", "Gemini 3 Flash Preview", v1beta_only=True),
    _gemini("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview", v1beta_only=True),
    _gemini("gemini-3.5-flash", "Gemini 3.5 Flash"),
    _gemini("gemini-3.1-flash-lite", "Gemini 3.1 Flash-Lite"),
    _gemini("gemini-3-pro-preview", "Gemini 3 Pro Preview", v1beta_only=True, retired=True),
    _gemini("gemini-1.5-flash", "Gemini 1.5 Flash", retired=True),
]

MODELS: dict[tuple[ProviderName, str], ModelFacts] = {(m.provider, m.model_id): m for m in _ENTRIES}
"""The fake's own facts (the table above), by provider and id."""

PROVIDER_NAMES: tuple[ProviderName, ...] = ("openai", "anthropic", "google")


def _today() -> dt.date:
    from orkestra.catalog import today

    return today()


_derived: list[tuple[object, dict[tuple[ProviderName, str], ModelFacts]]] = []


def _catalog_facts() -> dict[tuple[ProviderName, str], ModelFacts]:
    """Facts for every catalog model of the three APIs that the table above lacks (kept until
    the catalog changes: register_model() or ORKESTRA_CATALOG make a new one)."""
    from orkestra.catalog import default_catalog

    catalog = default_catalog()
    if _derived and _derived[0][0] is catalog:
        return _derived[0][1]
    found: dict[tuple[ProviderName, str], ModelFacts] = {}
    for provider in PROVIDER_NAMES:
        for m in catalog.provider_models(provider):
            for model_id in (m.id, *m.snapshots):
                if (provider, model_id) in MODELS:
                    continue
                found[(provider, model_id)] = ModelFacts(
                    provider,
                    model_id,
                    m.context_window,
                    m.max_output_tokens,
                    model_id,
                    reasoning=m.reasoning,
                    v1beta_only=m.api_version == "v1beta",
                    retires_on=m.retires.isoformat() if m.retires else None,
                    display_name=model_id,
                )
    _derived[:] = [(catalog, found)]
    return found


def lookup(provider: ProviderName, model_id: str) -> ModelFacts | None:
    """The facts for ``model_id`` at ``provider`` (retired ids included), or None if unknown."""
    return MODELS.get((provider, model_id)) or _catalog_facts().get((provider, model_id))


def served(provider: ProviderName, model_id: str) -> ModelFacts | None:
    """The facts for ``model_id`` if the provider still serves it today, else None."""
    facts = lookup(provider, model_id)
    return None if facts is None or facts.retired_on(_today()) else facts


def listed(provider: ProviderName) -> list[ModelFacts]:
    """The served models the provider's list-models endpoint reports.

    OpenAI and Google list every served id; Anthropic lists each model once, by the id it
    reports in responses (the dated snapshot where there is one).
    """
    day = _today()
    every = [*_ENTRIES, *_catalog_facts().values()]
    served_models = [m for m in every if m.provider == provider and not m.retired_on(day)]
    if provider == "anthropic":
        return [m for m in served_models if m.model_id == m.served_as]
    return served_models
