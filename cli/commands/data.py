"""`recsys data …`: data utilities (the synthetic generator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.options import load_settings
from recsys.errors import ConfigError

app = typer.Typer(help="Data utilities (synthetic generator).", no_args_is_help=True)


@app.command("synth")
def synth(
    users: Annotated[int, typer.Option("--users", help="Number of users")] = 10_000,
    items: Annotated[int, typer.Option("--items", help="Number of items (>= 10)")] = 2_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same files")] = 42,
    out: Annotated[Path, typer.Option("--out", help="Output directory (interactions.parquet, items.parquet)")
                   ] = Path("data/generated/synthetic"),
    mean_events: Annotated[float, typer.Option("--mean-events", help="Mean interactions per user")] = 50.0,
    min_events: Annotated[int, typer.Option("--min-events", help="Minimum interactions per user")] = 5,
) -> None:
    """Write a deterministic synthetic data set (taste clusters, Zipf popularity, sessions) to --out."""
    from recsys.data.synthetic import SynthConfig, write_synthetic
    from recsys.progress import rich_progress

    load_settings()
    SynthConfig(n_users=users, n_items=items, seed=seed, mean_events=mean_events, min_events=min_events).validate()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    with rich_progress() as progress:
        summary = write_synthetic(out, users, items, seed, mean_events=mean_events, min_events=min_events,
                                  progress=progress.stage("generating users", users))
    render.synthetic_summary(summary)
