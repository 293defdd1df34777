"""The Explore report (the seed README's "Explore" section), built from the live catalog and router.

Offline and keyless: it routes prompts and prices a simulated call, it never calls a model.
:func:`explore` returns the data; :func:`render` turns it into the README's plain-text layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orkestra._multi import MultiProvider
from orkestra._provider import Provider
from orkestra._types import TIERS, RoutingDecision
from orkestra.catalog import default_catalog, price_of

__all__ = ["EXAMPLE_PROMPTS", "ExploreReport", "explore", "render"]

EXAMPLE_PROMPTS: tuple[tuple[str, str], ...] = (
    ("Simple", "What is the capital of Japan?"),
    ("Moderate", "Explain how a hash table works with collision handling"),
    (
        "Complex",
        "Implement a B-tree with insert and search in Python. Handle node splitting, "
        "maintain sorted keys, and include a method to print the tree level by level.",
    ),
)
SIM_INPUT_TOKENS = 500
SIM_OUTPUT_TOKENS = 1000
STRATEGY_NAMES = ("cheapest", "smartest", "balanced")
RULE = "=" * 70
PUBLIC_API = """
  import orkestra as o

  # Single provider (routes within one provider's model family)
  provider = o.Provider("google", "API_KEY")
  response = provider.chat("your prompt")
  stream   = provider.stream_text("your prompt")

  # Multi-provider (picks best provider+model using a strategy)
  multi = o.MultiProvider([provider1, provider2])
  response = multi.chat("your prompt", strategy="cheapest")
  response = multi.chat("your prompt", strategy="smartest")
  response = multi.chat("your prompt", strategy="balanced")

  # Response fields
  response.text             # generated text
  response.model            # model used (e.g. "gemini-2.5-flash-lite")
  response.provider         # provider name (e.g. "google")
  response.cost             # total cost in dollars
  response.input_tokens     # input token count
  response.output_tokens    # output token count
  response.savings          # dollars saved vs premium model
  response.savings_percent  # savings as percentage
  response.routing          # why this model: tier scores, neighbours, knob, latency"""


@dataclass(frozen=True)
class SimulatedCost:
    provider: str
    model: str
    cost: float
    base_model: str
    base_cost: float

    @property
    def savings(self) -> float:
        return self.base_cost - self.cost

    @property
    def savings_percent(self) -> float:
        return 100.0 * self.savings / self.base_cost if self.base_cost else 0.0


@dataclass(frozen=True)
class PromptReport:
    label: str
    prompt: str
    routes: tuple[RoutingDecision, ...]
    costs: tuple[SimulatedCost, ...]
    strategies: tuple[tuple[str, RoutingDecision, float], ...]


@dataclass(frozen=True)
class ExploreReport:
    as_of: str
    catalog: tuple[tuple[str, tuple[tuple[str, str, float, float], ...]], ...]
    prompts: tuple[PromptReport, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "catalog": {
                provider: [
                    {"model": m, "tier": t, "input_per_mtok": i, "output_per_mtok": o}
                    for m, t, i, o in rows
                ]
                for provider, rows in self.catalog
            },
            "prompts": [
                {
                    "label": p.label,
                    "prompt": p.prompt,
                    "routes": [
                        {
                            "provider": d.provider,
                            "model": d.model,
                            "tier": d.tier,
                            "scores": dict(d.scores),
                            "reason": d.reason,
                        }
                        for d in p.routes
                    ],
                    "cost_simulation": [
                        {
                            "provider": c.provider,
                            "model": c.model,
                            "cost": c.cost,
                            "base_model": c.base_model,
                            "savings": c.savings,
                            "savings_percent": c.savings_percent,
                        }
                        for c in p.costs
                    ],
                    "strategies": {
                        name: {"provider": d.provider, "model": d.model, "tier": d.tier, "cost": c}
                        for name, d, c in p.strategies
                    },
                }
                for p in self.prompts
            ],
        }


def _sim_cost(provider: str, model_id: str) -> float:
    model = default_catalog().resolve(provider, model_id).model
    return price_of(model).estimate(SIM_INPUT_TOKENS, SIM_OUTPUT_TOKENS)


def explore(
    providers: Sequence[str] = ("google", "anthropic", "openai"),
    prompts: Sequence[tuple[str, str]] = EXAMPLE_PROMPTS,
    *,
    quality: float | None = None,
) -> ExploreReport:
    """Route each prompt for each provider and simulate the cost; no model is called."""
    catalog = default_catalog()
    objs = [Provider(name, quality=quality) for name in providers]
    rows = []
    for p in objs:
        models = p.tier_models()
        rows.append(
            (
                p.name,
                tuple(
                    (models[t].id, t, price_of(models[t]).input, price_of(models[t]).output)
                    for t in TIERS
                ),
            )
        )
    multi = MultiProvider(objs)
    reports = []
    for label, prompt in prompts:
        routes = tuple(p.route(prompt) for p in objs)
        costs = tuple(
            SimulatedCost(
                d.provider,
                d.model,
                _sim_cost(d.provider, d.model),
                p.premium_model.id,
                _sim_cost(d.provider, p.premium_model.id),
            )
            for p, d in zip(objs, routes, strict=True)
        )
        strategies = tuple(
            (name, d, _sim_cost(d.provider, d.model))
            for name in STRATEGY_NAMES
            for d in (multi.route(prompt, strategy=name),)
        )
        reports.append(PromptReport(label, prompt, routes, costs, strategies))
    return ExploreReport(catalog.as_of.isoformat(), tuple(rows), tuple(reports))


def _short(prompt: str, width: int = 60) -> str:
    return prompt if len(prompt) <= width else prompt[: width - 4].rstrip() + " ..."


def render(report: ExploreReport) -> str:
    """The report in the seed README's plain-text layout."""
    out: list[str] = []

    def section(title: str) -> None:
        out.extend(["", RULE, title, RULE])

    section(f"PROVIDER MODEL CATALOG (prices as of {report.as_of})")
    for provider, rows in report.catalog:
        out.extend(["", f"  {provider.upper()}"])
        for model, tier, price_in, price_out in rows:
            out.append(f"    {model:<28} {tier:<10} ${price_in:.2f}/${price_out:.2f} per 1M tokens")
    section("ROUTER PREDICTIONS (which model gets picked per prompt)")
    for p in report.prompts:
        out.extend(["", f"  [{p.label}] {_short(p.prompt)}"])
        for d in p.routes:
            out.append(f"    {d.provider:<12} → {d.model} ({d.tier})")
    section(f"COST SIMULATION ({SIM_INPUT_TOKENS} input tokens, {SIM_OUTPUT_TOKENS} output tokens)")
    for p in report.prompts:
        out.extend(["", f"  [{p.label}] {_short(p.prompt)}"])
        for c in p.costs:
            out.append(
                f"    {c.provider:<12} {c.model:<28} ${c.cost:.6f}  (saves ${c.savings:.6f}, "
                f"{c.savings_percent:.0f}% vs {c.base_model})"
            )
    section("STRATEGY COMPARISON (multi-provider selection)")
    for p in report.prompts:
        out.extend(["", f"  [{p.label}] {_short(p.prompt)}"])
        routes = ", ".join(f"{d.provider}→{d.model}" for d in p.routes)
        out.append(f"    Per-provider routes: {routes}")
        for name, d, cost in p.strategies:
            out.append(f"    {name:<10} → {d.provider}/{d.model} ({d.tier}) ${cost:.6f}")
    section("PUBLIC API")
    out.append(PUBLIC_API)
    out.append("")
    return "\n".join(out)
