"""Operations: the job scheduler, its job history, the drift check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import render
from cli.options import ArtifactsOpt, StoreOpt, load_settings

app = typer.Typer()


@app.command()
def schedule(store: StoreOpt = None, artifacts: ArtifactsOpt = None) -> None:
    """Run the job scheduler (refresh, train-ranker, drift on cron) until SIGTERM; = `python -m jobs`."""
    from jobs.scheduler import serve
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts)
    raise typer.Exit(code=serve(s, store_from_settings(s)))


@app.command("jobs")
def jobs_history(
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option(help="How many runs, newest first")] = 30,
    job: Annotated[str | None, typer.Option(help="Only this job (refresh, train-ranker, drift)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Job history of every scheduler on the store: job, start, end, status, error, version produced."""
    from recsys.store import store_from_settings

    runs = store_from_settings(load_settings(store)).jobs.runs(limit=limit, job=job)
    if as_json:
        render.print_json(runs)
    else:
        render.job_history(runs)


@app.command()
def drift(
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON summary here")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write evidently's HTML report")] = None,
    retrain: Annotated[bool, typer.Option(help="Run train-ranker when the drifted share exceeds the "
                                          "threshold (RECSYS_DRIFT__THRESHOLD)")] = True,
) -> None:
    """Data drift of served ranker features vs the ranker's training reference (evidently)."""
    from jobs.definitions import DEFAULT_JOBS
    from jobs.runner import JobRunner
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts)
    runner = JobRunner(s, store_from_settings(s), DEFAULT_JOBS)
    run = runner.run("drift", options={"json_path": json_out, "html_path": html_out, "retrain": retrain})
    if run is None or run.status != "ok":
        render.drift_not_run(run)
        raise typer.Exit(code=1)
    render.drift_check(run.details)
