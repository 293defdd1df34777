"""``orkestra prices`` and ``orkestra models``: the catalog, offline."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from orkestra.cli._common import JsonOpt, fail
from orkestra.errors import OrkestraError

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
        raise fail(e) from e
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
        raise fail(e) from e
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
        raise fail(e) from e
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
