"""`recsys experiments create|list|stop|report`: online experiments (docs/experiments.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.options import ArtifactsOpt, StoreOpt, load_settings

app = typer.Typer(help="Online experiments: A/B tests and interleaving on live traffic.")

NameArg = Annotated[str, typer.Argument(help="Experiment name (letters, digits, _ . -)")]


@app.command()
def create(name: NameArg,
           variant: Annotated[list[str], typer.Option("--variant", help="NAME:RANKER:SHARE, repeated; RANKER is "
                                                      "model (the reranker) or als (candidates in ALS order); "
                                                      "the first variant is the control")],
           interleaving: Annotated[bool, typer.Option("--interleaving", help="Interleave the two variants' lists "
                                                      "(team draft) instead of splitting users")] = False,
           traffic: Annotated[float, typer.Option(help="Share of all users in the experiment, (0, 1]")] = 1.0,
           salt: Annotated[str, typer.Option(help="Assignment salt (default: the name)")] = "",
           mde: Annotated[float, typer.Option("--mde", help="Minimum detectable relative effect for the "
                                              "report's 'users needed' (0.05 = 5 %)")] = 0.05,
           store: StoreOpt = None) -> None:
    """Define and start an experiment; API replicas serve it from their next poll (seconds)."""
    from recsys.experiments.config import parse_variant_spec
    from recsys.experiments.manage import create_experiment
    from recsys.store import store_from_settings

    variants = [parse_variant_spec(v).model_dump() for v in variant]
    if interleaving:  # shares do not apply: every user of the experiment sees both lists
        for v in variants:
            v["share"] = 1.0 / len(variants)
    experiment = create_experiment(store_from_settings(load_settings(store)), {
        "name": name, "kind": "interleaving" if interleaving else "ab", "variants": variants, "traffic": traffic,
        "salt": salt, "min_detectable_effect": mde})
    render.experiments([experiment.to_dict()])


@app.command("list")
def list_(store: StoreOpt = None) -> None:
    """Every experiment, running first."""
    from recsys.experiments.manage import list_experiments
    from recsys.store import store_from_settings

    render.experiments([e.to_dict() for e in list_experiments(store_from_settings(load_settings(store)))])


@app.command()
def stop(name: NameArg, store: StoreOpt = None) -> None:
    """Stop serving an experiment; its definition and data stay for the report."""
    from recsys.experiments.manage import stop_experiment
    from recsys.store import store_from_settings

    render.experiments([stop_experiment(store_from_settings(load_settings(store)), name).to_dict()])


@app.command()
def report(name: NameArg,
           json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON")] = None,
           alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="Significance level")] = 0.05,
           store: StoreOpt = None, artifacts: ArtifactsOpt = None) -> None:
    """The analysis from the lake (impressions + events citing their rec_id); run `recsys ingest` first for
    the newest traffic."""
    from recsys.config import lake_dir
    from recsys.data.lake import Lake
    from recsys.experiments.manage import get_experiment
    from recsys.experiments.report import experiment_report
    from recsys.store import store_from_settings

    settings = load_settings(store, artifacts)
    experiment = get_experiment(store_from_settings(settings), name)
    result = experiment_report(experiment, Lake(lake_dir(settings)), alpha=alpha)
    render.experiment_report(result.to_dict())
    if json_out is not None:
        render.write_json(json_out, result.to_dict())
