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
    drift_days: Annotated[float | None, typer.Option("--drift-days", help="Taste drift: from this many days "
                                                     "after the start on, users' later events move to other "
                                                     "taste clusters (docs/loop.md, replay)")] = None,
    drift_share: Annotated[float, typer.Option("--drift-share", help="Share of users whose taste drifts")] = 1.0,
) -> None:
    """Write a deterministic synthetic data set (taste clusters, Zipf popularity, sessions) to --out."""
    from recsys.data.synthetic import SynthConfig, write_synthetic
    from recsys.progress import rich_progress

    load_settings()
    drift = {} if drift_days is None else {"drift_at": SynthConfig().start + int(drift_days * 86400),
                                            "drift_share": drift_share}
    if drift_days is not None and drift_days < 0:
        raise ConfigError(f"--drift-days must be >= 0, got {drift_days}")
    SynthConfig(n_users=users, n_items=items, seed=seed, mean_events=mean_events, min_events=min_events,
                **drift).validate()  # type: ignore[arg-type]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    with rich_progress() as progress:
        summary = write_synthetic(out, users, items, seed, mean_events=mean_events, min_events=min_events,
                                  progress=progress.stage("generating users", users), **drift)
    render.synthetic_summary(summary)
