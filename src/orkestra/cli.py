"""The ``orkestra`` command line. Thin: it parses, calls the library and prints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from orkestra._types import TIERS, Tier
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
        raise _fail(e) from e
    if stream.response is not None:
        typer.secho(stream.response.summary(), err=True, dim=True)


CatalogProviderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--provider", "-p", help="Provider(s) or preset(s) (default: every one). Repeatable."
    ),
]


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.3f}"


def _per_mtok(value: float) -> str:
    """Cents, or tenths of a cent where the price has them ($0.075)."""
    return f"${value:.2f}" if round(value, 2) == value else f"${value:.3f}"


@app.command()
def prices(provider: CatalogProviderOpt = None, as_json: JsonOpt = False) -> None:
    """Prices (USD per 1M tokens) of every catalog model: its own, else genai-prices'. Offline."""
    from orkestra.catalog import default_catalog, price_of

    rows: list[dict[str, Any]] = []
    try:
        catalog = default_catalog()
        for name in provider or list(catalog.providers):
            for m in catalog.provider_models(name):
                p = price_of(m)
                rows.append(
                    {
                        "provider": name,
                        "model": m.id,
                        "input": p.input,
                        "cached_input": p.cached_input,
                        "cache_write": p.cache_write,
                        "output": p.output,
                        "source": "catalog" if m.price is not None else "genai-prices",
                    }
                )
    except OrkestraError as e:
        raise _fail(e) from e
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    wp = max([len("provider"), *(len(r["provider"]) for r in rows)])
    wm = max([len("model"), *(len(r["model"]) for r in rows)])
    typer.echo(
        f"{'provider':<{wp}} {'model':<{wm}} {'input':>8} {'cached':>8} {'write':>8} "
        f"{'output':>8}  source"
    )
    for r in rows:
        typer.echo(
            f"{r['provider']:<{wp}} {r['model']:<{wm}} {_money(r['input']):>8} "
            f"{_money(r['cached_input']):>8} {_money(r['cache_write']):>8} "
            f"{_money(r['output']):>8}  {r['source']}"
        )


@app.command()
def models(
    provider: CatalogProviderOpt = None,
    as_json: JsonOpt = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only list tier models that retire within --days or whose successor has no "
            "price; exit 1 if there are any (for CI and cron).",
        ),
    ] = False,
    days: Annotated[
        int, typer.Option("--days", min=0, help="How far ahead --check looks, in days.")
    ] = 30,
) -> None:
    """The catalog: the providers and OpenAI-compatible presets, then every model with its
    tier, capabilities, prices, limits and retirement date. Offline.

    ORKESTRA_TODAY=YYYY-MM-DD shows the catalog of another day."""
    if check:
        _check_retirements(provider, days, as_json)
        return
    from orkestra.catalog import default_catalog, price_of, today

    rows: list[dict[str, Any]] = []
    try:
        catalog = default_catalog()
        names = provider or list(catalog.providers)
        presets = [catalog.provider(name) for name in names]
        for name in names:
            for m in catalog.provider_models(name):
                price = price_of(m)
                rows.append(
                    {
                        "provider": name,
                        "model": m.id,
                        "tier": catalog.tier_of(name, m.id),
                        "tiers": [
                            t
                            for t in catalog.provider(name).tiers
                            if catalog.tier_model(name, t).id == m.id
                        ],
                        "capabilities": sorted(m.capabilities),
                        "input_per_mtok": price.input,
                        "cached_input_per_mtok": price.cached_input,
                        "output_per_mtok": price.output,
                        "price_source": "catalog" if m.price is not None else "genai-prices",
                        "context_window": m.context_window,
                        "max_output_tokens": m.max_output_tokens,
                        "reasoning": m.reasoning,
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
    keys = {
        p.name: (" or ".join(p.env_keys) or "none")
        + (" (optional)" if p.env_keys and not p.requires_key else "")
        for p in presets
    }
    wp = max(len("provider"), *(len(p.name) for p in presets))
    wk = max(len("key"), *(len(k) for k in keys.values()))
    typer.echo(f"{'provider':<{wp}} {'adapter':<9} {'key':<{wk}} base URL")
    for p in presets:
        url = p.base_url or ("required: base_url=..." if p.compatible else "SDK default")
        typer.echo(
            f"{p.name:<{wp}} {p.adapter:<9} {keys[p.name]:<{wk}} {url} (or ${p.env_base_url})"
        )
    untiered = [p.name for p in presets if not p.tiers]
    if untiered:
        typer.echo(f"no models until you name them (models={{...}}): {', '.join(untiered)}")
    if not rows:
        return
    typer.echo()
    wm = max(len(r["model"]) for r in rows)
    wt = max(len(",".join(r["tiers"])) for r in rows)
    for r in rows:
        status = ""
        if r["retires"]:
            verb = "retired" if r["retired"] else "retires"
            status = f"  {verb} {r['retires']} → {r['successor']}"
        caps = ",".join(r["capabilities"]) or "-"
        typer.echo(
            f"{r['provider']:<{wp}} {r['model']:<{wm}} {','.join(r['tiers']):<{wt}} {caps:<17} "
            f"{_per_mtok(r['input_per_mtok']):>7}/{_per_mtok(r['output_per_mtok']):<7} "
            f"{r['context_window']:>9,} ctx{status}"
        )


def _check_retirements(providers: list[str] | None, days: int, as_json: bool) -> None:
    from orkestra.catalog import today
    from orkestra.catalog.lifecycle import upcoming_retirements

    try:
        notices = upcoming_retirements(providers=providers, within_days=days)
    except OrkestraError as e:
        raise _fail(e) from e
    if as_json:
        rows = [
            {
                "provider": n.provider,
                "tier": n.tier,
                "model": n.model,
                "retires": n.retires.isoformat(),
                "days_left": n.days_left,
                "successor": n.successor,
                "successor_priced": not n.successor_unpriced,
                "message": n.message,
            }
            for n in notices
        ]
        typer.echo(json.dumps(rows, indent=2))
    elif notices:
        for n in notices:
            typer.echo(f"{'!' if n.successor_unpriced else '-'} {n.message}")
    else:
        typer.echo(f"no tier model retires within {days} days of {today()}")
    if notices:
        raise typer.Exit(1)


def _parse_tiers(text: str | None) -> dict[Tier, str] | None:
    if not text:
        return None
    out: dict[Tier, str] = {}
    for part in text.split(","):
        name, _, model = part.partition("=")
        tier = next((t for t in TIERS if t == name.strip()), None)
        if tier is None or not model.strip():
            raise typer.BadParameter(f"expected budget=M1,balanced=M2,premium=M3, got {text!r}")
        out[tier] = model.strip()
    return out


def _parse_prices(items: list[str] | None) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for item in items or []:
        model, _, pair = item.rpartition("=")
        try:
            price_in, price_out = (float(x) for x in pair.split(","))
        except ValueError:
            raise typer.BadParameter(
                f"expected MODEL=IN,OUT (USD per 1M tokens), got {item!r}"
            ) from None
        out[model] = (price_in, price_out)
    return out


def _progress() -> Progress:

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )


@app.command()
def train(
    data: Annotated[list[Path], typer.Argument(help="JSONL files in the routing data format.")],
    out: Annotated[Path, typer.Option(help="Folder to write the router to.")],
    split: Annotated[
        str | None, typer.Option(help="Use only this split (train or test); default: all rows.")
    ] = None,
    tiers: Annotated[
        str | None,
        typer.Option(help="Data models for our tiers, e.g. budget=M1,premium=M2 (all files)."),
    ] = None,
    premium_share: Annotated[
        float, typer.Option(help="Calibrate the default knob to send this share premium.")
    ] = 0.2,
) -> None:
    """Build a router from graded prompts (e.g. your own traffic, graded by your judge)."""
    from orkestra.routing.data import DATASET_TIERS, load_rows
    from orkestra.routing.embedder import StaticEmbedder
    from orkestra.routing.index import sha256_file
    from orkestra.routing.train import train_router

    try:
        rows = load_rows(data, split=split)
        mapping: dict[str, Mapping[Tier, str]] = dict(DATASET_TIERS)
        custom = _parse_tiers(tiers)
        if custom:
            mapping.update({r.source: custom for r in rows})
        provenance = [{"file": p.name, "sha256": sha256_file(p)} for p in data]
        with _progress() as bar:
            task = bar.add_task(f"embedding {len(rows)} prompts", total=len(rows))
            index = train_router(
                rows,
                StaticEmbedder.default(),
                tiers=mapping,
                premium_share=premium_share,
                provenance=provenance,
                progress=lambda done, total: bar.update(task, completed=done),
            )
        folder = index.save(out)
    except OrkestraError as e:
        raise _fail(e) from e
    knob = index.manifest["router"].get("default_knob")
    typer.echo(f"router of {index.size} prompts written to {folder} (default knob {knob})")


@app.command("eval")
def evaluate_command(
    data: Annotated[list[Path], typer.Argument(help="JSONL files in the routing data format.")],
    split: Annotated[str, typer.Option(help="Rows of this split only.")] = "test",
    weak: Annotated[str | None, typer.Option(help="Weak data model (two-tier).")] = None,
    strong: Annotated[str | None, typer.Option(help="Strong data model (two-tier).")] = None,
    tiers: Annotated[
        str | None, typer.Option(help="Three data models: budget=M1,balanced=M2,premium=M3.")
    ] = None,
    router: Annotated[
        Path | None, typer.Option(help="Router folder (default: the bundled router).")
    ] = None,
    prices: Annotated[
        list[str] | None,
        typer.Option("--prices", help="MODEL=IN,OUT USD per 1M tokens, for rows without costs."),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Only rows whose task starts with this (e.g. mmlu).")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CIs.")] = 1000,
    as_json: JsonOpt = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write the cost-quality curve PNG here.")
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            help="CSV of real answer texts (prompt, <model>_response): measure a cascade "
            "(weak answer, verifier, escalate) against routing and random mixing."
        ),
    ] = None,
    target_quality: Annotated[
        float,
        typer.Option(
            help="With --answers: calibrate the verifier on the train rows for this share "
            "of the strong model's quality."
        ),
    ] = 0.95,
    prompt_overhead_tokens: Annotated[
        int,
        typer.Option(
            help="With --answers: prompt-template tokens every call also paid (few-shot examples).",
            min=0,
        ),
    ] = 0,
) -> None:
    """A router's cost-quality curve and headline figures (APGR, CPT, savings, AIQ) with CIs.

    With --answers, a cascade on the weak model's real answers, side by side with routing and
    random mixing (every escalation pays both calls and the verifier)."""
    from orkestra.evaluation.runner import evaluate, models_for
    from orkestra.routing.data import load_rows
    from orkestra.routing.knn import KNNRouter

    if plot:  # before the evaluation, not after minutes of it
        from orkestra.evaluation.plot import require_matplotlib

        try:
            require_matplotlib()
        except ImportError as e:
            typer.secho(f"error: --plot: {e}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2) from None

    try:
        rows = load_rows(data, split=split)
        if task:
            rows = [r for r in rows if r.task.startswith(task)]
        tier_map = _parse_tiers(tiers)
        models = models_for(rows, weak=weak, strong=strong, tiers=tier_map)
        knn = KNNRouter.load(router)
        if answers is not None:
            _eval_cascade(
                data,
                rows,
                knn,
                models,
                answers=answers,
                task=task,
                split=split,
                prices=_parse_prices(prices),
                target_quality=target_quality,
                overhead=prompt_overhead_tokens,
                n_boot=n_boot,
                as_json=as_json,
                plot=plot,
            )
            return
        with _progress() as bar:
            job = bar.add_task(f"routing {len(rows)} prompts", total=len(rows))
            result = evaluate(
                rows,
                knn,
                models,
                prices=_parse_prices(prices),
                n_boot=n_boot,
                progress=lambda done, total: bar.update(job, completed=done),
            )
    except OrkestraError as e:
        raise _fail(e) from e
    if plot:
        from orkestra.evaluation.plot import plot_result

        plot_result(result, plot)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    typer.echo(
        f"{result.n} prompts ({result.excluded} left out: in the router's index); "
        f"models {' < '.join(result.models)}"
    )
    for name, value in result.figures.items():
        lo, hi = result.intervals.get(name, (float("nan"), float("nan")))
        typer.echo(f"  {name:<24} {value:8.4f}   95% CI [{lo:.4f}, {hi:.4f}]")
    shares = ", ".join(f"{t} {s:.1%}" for t, s in result.tier_share_default.items())
    typer.echo(f"  tiers at the default knob: {shares}")
    lat = result.latency_ms
    typer.echo(f"  routing latency p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms")
    if plot:
        typer.echo(f"  plot: {plot}")


def _eval_cascade(
    data: list[Path],
    rows: list[Any],
    knn: Any,
    models: list[str],
    *,
    answers: Path,
    task: str | None,
    split: str,
    prices: dict[str, tuple[float, float]],
    target_quality: float,
    overhead: int,
    n_boot: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    from orkestra.evaluation.cascade import evaluate_cascade, load_answers, render_cascade
    from orkestra.routing.data import load_rows

    if len(models) != 2:
        raise typer.BadParameter("a cascade is measured between two models (--weak/--strong)")
    texts = load_answers(answers, models)
    train = [] if split == "train" else load_rows(data, split="train")
    if task:
        train = [r for r in train if r.task.startswith(task)]
    with _progress() as bar:
        job = bar.add_task(f"verifying {len(rows)} answers", total=len(rows))
        result = evaluate_cascade(
            rows,
            texts,
            knn,
            models,
            train_rows=train,
            prices=prices,
            prompt_overhead_tokens=overhead,
            target_quality=target_quality,
            n_boot=n_boot,
            progress=lambda done, total: bar.update(job, completed=done),
        )
    if plot:
        from orkestra.evaluation.plot import plot_cascade

        plot_cascade(result, plot)
    typer.echo(json.dumps(result.to_json(), indent=2) if as_json else render_cascade(result, split))
    if plot and not as_json:
        typer.echo(f"  plot: {plot}")


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
        raise _fail(e) from e
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
        raise _fail(e) from e


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
        raise _fail(e) from e


@app.command()
def demo() -> None:
    """The whole pipeline offline with no API key: fake providers, routing, calls, savings."""
    from orkestra.demo import run_demo

    run_demo()


def main() -> None:
    app()
