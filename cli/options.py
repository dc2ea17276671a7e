"""Options several commands share, and the one place a command gets its Settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from recsys.config import Settings, get_settings
from recsys.logging_setup import configure_logging

StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL (env RECSYS_STORE_URL): "
                                                  "redis://host:port/db or embedded://PATH")]
ArtifactsOpt = Annotated[Path | None, typer.Option("--artifacts", help="Artifacts dir (env RECSYS_ARTIFACTS_DIR)")]
DataOpt = Annotated[Path, typer.Option("--data", help="Interactions: a Parquet/CSV file or a directory "
                                       "(MovieLens ml-100k/ml-1m/ml-latest, or interactions.parquet)")]
UserColOpt = Annotated[str, typer.Option(help="Column holding the user id")]
ItemColOpt = Annotated[str, typer.Option(help="Column holding the item id")]
TimeColOpt = Annotated[str, typer.Option(help="Column holding the timestamp")]
FactorsOpt = Annotated[int | None, typer.Option(help="ALS factors (env RECSYS_ALS__FACTORS)")]
HostOpt = Annotated[str | None, typer.Option(help="Bind address (env RECSYS_HOST)")]
PortOpt = Annotated[int | None, typer.Option(help="Port (env RECSYS_PORT)")]


def load_settings(store: str | None = None, artifacts: Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment with the command's options on top (None = not given)."""
    settings = get_settings(store_url=store, artifacts_dir=artifacts, **overrides)
    # Batch commands show progress bars; their INFO logs only clutter the terminal unless asked for.
    configure_logging(settings.log_level if "RECSYS_LOG_LEVEL" in os.environ else "WARNING")
    return settings
