"""The ranker models in the artifact registry: list, show, promote, roll back."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import render
from cli.options import ArtifactsOpt, load_settings

app = typer.Typer(help="Ranker models in the artifact registry: list, show, promote, roll back.",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


@app.command("list")
def list_models(artifacts: ArtifactsOpt = None, as_json: JsonOpt = False) -> None:
    """Every model with its validation nDCG@10, feature count and whether it serves (CURRENT)."""
    from recsys.artifacts import registry_for

    registry = registry_for(load_settings(None, artifacts))
    rows = registry.model_summaries()
    if as_json:
        render.print_json([r.model_dump() for r in rows])
    else:
        render.models(rows, registry.model_location())


@app.command()
def show(version: Annotated[str, typer.Argument(help="Model version (see `recsys models list`)")],
         artifacts: ArtifactsOpt = None) -> None:
    """The model's manifest: features, parameters, metrics, importances, pruning decision."""
    from recsys.artifacts import registry_for

    render.print_json(registry_for(load_settings(None, artifacts)).model_manifest(version).model_dump())


@app.command()
def promote(version: Annotated[str, typer.Argument(help="Model version to serve")],
            artifacts: ArtifactsOpt = None,
            reason: Annotated[str, typer.Option(help="Recorded with the promotion")] = "manual promotion") -> None:
    """Make VERSION the serving model (API replicas pick it up at their next reload)."""
    from jobs.tracking import record_promotion
    from recsys.artifacts import registry_for

    settings = load_settings(None, artifacts)
    registry = registry_for(settings)
    previous = registry.current_model()
    registry.promote(version, reason)
    record_promotion(settings, registry, version)
    render.promoted(version, previous)


@app.command()
def rollback(artifacts: ArtifactsOpt = None) -> None:
    """Serve the model promoted before the current one again."""
    from jobs.tracking import record_promotion
    from recsys.artifacts import registry_for

    settings = load_settings(None, artifacts)
    registry = registry_for(settings)
    previous = registry.current_model()
    version = registry.rollback()
    record_promotion(settings, registry, version)
    render.promoted(version, previous)
