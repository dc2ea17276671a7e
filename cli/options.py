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
UserColOpt = Annotated[str | None, typer.Option(help="Column holding the user id (env RECSYS_DATA__USER_COL, "
                                                "default user_id)")]
ItemColOpt = Annotated[str | None, typer.Option(help="Column holding the item id (env RECSYS_DATA__ITEM_COL, "
                                                "default item_id)")]
TimeColOpt = Annotated[str | None, typer.Option(help="Column holding the timestamp, unix seconds or ISO "
                                                "(env RECSYS_DATA__TIME_COL, default timestamp)")]
EventColOpt = Annotated[str | None, typer.Option(help="Column holding the event name (env "
                                                 "RECSYS_DATA__EVENT_COL, default event)")]
WeightColOpt = Annotated[str | None, typer.Option(help="Column holding the weight (env RECSYS_DATA__WEIGHT_COL, "
                                                  "default weight)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Publish even when the data fails the publish "
                                        "guardrails (recorded)")]
FactorsOpt = Annotated[int | None, typer.Option(help="ALS factors (env RECSYS_ALS__FACTORS)")]
HostOpt = Annotated[str | None, typer.Option(help="Bind address (env RECSYS_HOST)")]
PortOpt = Annotated[int | None, typer.Option(help="Port (env RECSYS_PORT)")]


def load_settings(store: str | None = None, artifacts: Path | None = None, *,
                  columns: dict[str, str | None] | None = None, **overrides: object) -> Settings:
    """Settings from the environment with the command's options on top (None = not given).

    `columns` are the --user-col/--item-col/… flags: each one given overrides the settings' column
    mapping (RECSYS_DATA__USER_COL …) for this run.
    """
    settings = get_settings(store_url=store, artifacts_dir=artifacts, **overrides)
    given = {k: v for k, v in (columns or {}).items() if v is not None}
    if given:
        settings.data = settings.data.model_copy(update=given)
    # Batch commands show progress bars; their INFO logs only clutter the terminal unless asked for.
    configure_logging(settings.log_level if "RECSYS_LOG_LEVEL" in os.environ else "WARNING")
    return settings
