"""What the CLI's commands share: option types, the error exit, progress bars, parsers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from orkestra._types import TIERS, Tier
from orkestra.errors import OrkestraError

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


def fail(error: OrkestraError) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def parse_tiers(text: str | None) -> dict[Tier, str] | None:
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


def parse_prices(items: list[str] | None) -> dict[str, tuple[float, float]]:
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


def progress() -> Progress:

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
