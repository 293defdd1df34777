"""``orkestra train`` and ``orkestra eval``: build a router, measure one (or a cascade)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from orkestra._types import Tier
from orkestra.cli._common import JsonOpt, fail, parse_prices, parse_tiers, progress
from orkestra.errors import OrkestraError


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
        custom = parse_tiers(tiers)
        if custom:
            mapping.update({r.source: custom for r in rows})
        provenance = [{"file": p.name, "sha256": sha256_file(p)} for p in data]
        with progress() as bar:
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
        raise fail(e) from e
    knob = index.manifest["router"].get("default_knob")
    typer.echo(f"router of {index.size} prompts written to {folder} (default knob {knob})")


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
        tier_map = parse_tiers(tiers)
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
                prices=parse_prices(prices),
                target_quality=target_quality,
                overhead=prompt_overhead_tokens,
                n_boot=n_boot,
                as_json=as_json,
                plot=plot,
            )
            return
        with progress() as bar:
            job = bar.add_task(f"routing {len(rows)} prompts", total=len(rows))
            result = evaluate(
                rows,
                knn,
                models,
                prices=parse_prices(prices),
                n_boot=n_boot,
                progress=lambda done, total: bar.update(job, completed=done),
            )
    except OrkestraError as e:
        raise fail(e) from e
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
    with progress() as bar:
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
