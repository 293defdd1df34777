"""The ``orkestra`` command line. Thin: it parses, calls the library and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orkestra.cli._common import ALL_PROVIDERS, JsonOpt, ProviderOpt, QualityOpt, fail
from orkestra.cli.catalog import models, prices
from orkestra.cli.router import evaluate_command, train
from orkestra.errors import OrkestraError

app = typer.Typer(
    name="orkestra",
    help="Route every LLM request to the cheapest model that will answer it well.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
        raise fail(e) from e
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
        raise fail(e) from e
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
def chat(
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt; read from stdin when omitted.")
    ] = None,
    provider: ProviderOpt = None,
    strategy: Annotated[
        str, typer.Option(help="Multi-provider strategy: cheapest, smartest, balanced.")
    ] = "cheapest",
    quality: QualityOpt = None,
    max_tokens: Annotated[int, typer.Option(help="Most output tokens.")] = 8192,
) -> None:
    """Route PROMPT, stream the answer, then print what it cost and saved. Needs API keys."""
    import sys

    import orkestra as o

    text = prompt if prompt is not None else sys.stdin.read()
    try:
        names = (
            provider
            or [n for n in ALL_PROVIDERS if o.Provider(n).api_key_available]
            or list(ALL_PROVIDERS)
        )
        providers = [o.Provider(name, quality=quality) for name in names]
        stream = (
            providers[0].stream(text, max_tokens=max_tokens)
            if len(providers) == 1
            else o.MultiProvider(providers).stream(text, strategy=strategy, max_tokens=max_tokens)
        )
        for chunk in stream:
            typer.echo(chunk, nl=False)
        typer.echo()
    except OrkestraError as e:
        raise fail(e) from e
    if stream.response is not None:
        typer.secho(stream.response.summary(), err=True, dim=True)


# The catalog and router commands live in their own modules; registered here, in this order.
app.command()(prices)
app.command()(models)
app.command()(train)
app.command("eval")(evaluate_command)


@app.command()
def usage(
    since: Annotated[
        str | None, typer.Option(help="Only calls since: 7d, 24h, 2026-11-01 ...")
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Group by model, provider, tier, key or day.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(help="Usage log URL (default: ORKESTRA_DATABASE_URL, else ~/.orkestra)."),
    ] = None,
    as_json: JsonOpt = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print the totals as CSV.")] = False,
    export: Annotated[
        Path | None, typer.Option(help="Write every call (not totals) as CSV to this file.")
    ] = None,
) -> None:
    """Totals of calls, cost and savings from the usage log."""
    import sys

    from orkestra.usage import open_usage_log, write_totals_csv

    try:
        log = open_usage_log(db)
        try:
            if export is not None:
                count = log.export_csv(export, since)
                typer.echo(f"{count} calls written to {export}")
                return
            totals = log.totals(since, by)
        finally:
            log.close()
    except OrkestraError as e:
        raise fail(e) from e
    if as_json:
        typer.echo(json.dumps([t.as_dict() for t in totals], indent=2, default=str))
    elif csv:
        write_totals_csv(totals, sys.stdout)
    else:
        typer.echo(
            f"{'group':<28} {'calls':>6} {'errors':>6} {'refused':>7} {'cost':>12} "
            f"{'saved':>12} {'saved %':>8} {'premium':>8}"
        )
        for t in totals:
            typer.echo(
                f"{t.group!s:<28} {t.calls:>6} {t.errors:>6} {t.refused:>7} {t.cost:>12.6f} "
                f"{t.savings:>12.6f} {t.savings_percent:>7.1f}% {t.premium_share:>7.1%}"
            )


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML or YAML config (default: providers from env keys).",
            envvar="ORKESTRA_CONFIG",
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to bind (default 127.0.0.1, or the config's).", envvar="ORKESTRA_HOST"
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port (default 8000, or the config's).", envvar="ORKESTRA_PORT"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes sharing the port (default 1, or the config's).",
            envvar="ORKESTRA_WORKERS",
        ),
    ] = None,
    print_config_schema: Annotated[
        bool,
        typer.Option(
            "--print-config-schema", help="Print the config file's JSON Schema (editors) and exit."
        ),
    ] = False,
) -> None:
    """An OpenAI-compatible routing proxy: point any OpenAI client's base URL at it."""
    if print_config_schema:
        from orkestra.server.config_schema import config_schema_text

        typer.echo(config_schema_text(), nl=False)
        return
    from orkestra.server import run_server

    try:
        run_server(config, host, port, workers=workers)
    except OrkestraError as e:
        raise fail(e) from e


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8333,
    host: Annotated[str, typer.Option(help="Address to bind (loopback only by default).")] = (
        "127.0.0.1"
    ),
    db: Annotated[
        str | None,
        typer.Option(help="Usage log URL (default: ORKESTRA_DATABASE_URL, else ~/.orkestra)."),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option(help="Allow a non-loopback --host (the page has no login).")
    ] = False,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """The live usage dashboard: calls as they happen, totals, cost over time, tiers."""
    from orkestra.dashboard import run_dashboard

    try:
        run_dashboard(
            host,
            port,
            db,
            allow_remote=allow_remote,
            open_browser=open_browser,
            on_ready=lambda url: typer.echo(f"orkestra dashboard on {url} (Ctrl-C to stop)"),
        )
    except OrkestraError as e:
        raise fail(e) from e


@app.command()
def demo() -> None:
    """The whole pipeline offline with no API key: fake providers, routing, calls, savings."""
    from orkestra.demo import run_demo

    run_demo()


def main() -> None:
    app()
