"""The ``orkestra`` command line. Thin: it parses, calls the library and prints."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orkestra.errors import OrkestraError

app = typer.Typer(
    name="orkestra",
    help="Route every LLM request to the cheapest model that will answer it well.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProviderOpt = Annotated[
    list[str] | None,
    typer.Option("--provider", "-p", help="Provider(s): google, anthropic, openai. Repeatable."),
]
QualityOpt = Annotated[
    float | None,
    typer.Option(help="Cost/quality knob 0..1 (default: the router's calibrated setting)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ALL_PROVIDERS = ("google", "anthropic", "openai")


def _fail(error: OrkestraError) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


@app.command()
def explore(
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", help="Extra prompt to route. Repeatable.")
    ] = None,
    provider: ProviderOpt = None,
    quality: QualityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The catalog, router predictions, cost simulation and strategy comparison. Offline."""
    from orkestra.explore import EXAMPLE_PROMPTS, explore, render

    prompts = list(EXAMPLE_PROMPTS) + [("Custom", p) for p in prompt or []]
    try:
        report = explore(provider or ALL_PROVIDERS, prompts, quality=quality)
    except OrkestraError as e:
        raise _fail(e) from e
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else render(report))


@app.command()
def route(
    prompt: Annotated[str, typer.Argument(help="The prompt to route.")],
    provider: ProviderOpt = None,
    strategy: Annotated[
        str, typer.Option(help="Multi-provider strategy: cheapest, smartest, balanced.")
    ] = "cheapest",
    quality: QualityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which model PROMPT goes to and why. No API call, no key needed."""
    import orkestra as o

    try:
        providers = [o.Provider(name, quality=quality) for name in provider or ALL_PROVIDERS]
        decision = (
            providers[0].route(prompt)
            if len(providers) == 1
            else o.MultiProvider(providers).route(prompt, strategy=strategy)
        )
    except OrkestraError as e:
        raise _fail(e) from e
    if as_json:
        payload = {
            "provider": decision.provider,
            "model": decision.model,
            "tier": decision.tier,
            "strategy": decision.strategy,
            "scores": dict(decision.scores),
            "knob": decision.knob,
            "reason": decision.reason,
            "latency_ms": decision.latency_ms,
            "candidates": [c.__dict__ for c in decision.candidates],
            "neighbors": [n.__dict__ for n in decision.neighbors],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"{decision.provider}/{decision.model} ({decision.tier})")
    typer.echo(f"  why:     {decision.reason}")
    scores = ", ".join(f"{t} {s:.3f}" for t, s in decision.scores.items())
    typer.echo(f"  scores:  {scores}   knob: {decision.knob}")
    for c in decision.candidates:
        typer.echo(
            f"  {c.provider:<10} {c.model:<26} {c.tier:<9} quality {c.predicted_quality:.3f}"
            f"  ~${c.expected_cost:.6f}"
        )
    for n in decision.neighbors[:5]:
        typer.echo(f"  near: [{n.task}] sim {n.similarity:.3f}  {n.prompt[:60]!r}")
    typer.echo(f"  decided in {decision.latency_ms:.3f} ms")


@app.command()
def models(provider: ProviderOpt = None, as_json: JsonOpt = False) -> None:
    """The catalog: every model, its tier, prices, limits and retirement date."""
    from orkestra.catalog import default_catalog, price_of, today

    catalog = default_catalog()
    rows = []
    try:
        for name in provider or ALL_PROVIDERS:
            for m in catalog.provider_models(name):
                price = price_of(m)
                rows.append(
                    {
                        "provider": name,
                        "model": m.id,
                        "tier": catalog.tier_of(name, m.id),
                        "input_per_mtok": price.input,
                        "output_per_mtok": price.output,
                        "context_window": m.context_window,
                        "max_output_tokens": m.max_output_tokens,
                        "retires": m.retires.isoformat() if m.retires else None,
                        "successor": m.successor,
                        "retired": m.retired_on(today()),
                    }
                )
    except OrkestraError as e:
        raise _fail(e) from e
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        status = ""
        if r["retires"]:
            verb = "retired" if r["retired"] else "retires"
            status = f"{verb} {r['retires']} → {r['successor']}"
        typer.echo(
            f"{r['provider']:<10} {r['model']:<26} {r['tier'] or '':<9} "
            f"${r['input_per_mtok']:.2f}/${r['output_per_mtok']:.2f}  {status}"
        )


@app.command()
def demo() -> None:
    """The whole pipeline offline with no API key: fake providers, routing, calls, savings."""
    from orkestra.demo import run_demo

    run_demo()


def main() -> None:
    app()
