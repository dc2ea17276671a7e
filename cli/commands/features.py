"""`recsys features …`: the ranker's features, their importances and pruning status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.options import ArtifactsOpt, load_settings

app = typer.Typer(help="Ranker features: importances, pruning status.", no_args_is_help=True)


@app.command("report")
def report(
    artifacts: ArtifactsOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here")] = None,
    runs: Annotated[int, typer.Option(help="Training runs shown in the trend column")] = 5,
) -> None:
    """Every registered feature: gain share, splits, trend over recent runs, status (active/candidate/pruned)."""
    from recsys.artifacts import registry_for
    from recsys.ranking.feature_report import build_feature_report
    from recsys.ranking.feature_report_html import write_feature_report

    s = load_settings(None, artifacts)
    feature_report = build_feature_report(registry_for(s), trend_runs=max(runs, 1))
    render.feature_report(feature_report, s.artifacts_dir, runs)
    if json_out is not None:
        render.write_json(json_out, feature_report.to_json_dict())
    if html_out is not None:
        render.written("html", write_feature_report(feature_report, html_out))
