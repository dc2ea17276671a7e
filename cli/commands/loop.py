"""The loop by hand: drain the logs into the lake, fold new events into the serving candidates, forget a user."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import render
from cli.options import ArtifactsOpt, StoreOpt, load_settings

app = typer.Typer()
users_app = typer.Typer(help="Users: forget one (GDPR-style erasure).")


def _run(job: str, store: str | None, artifacts: object) -> None:
    from jobs.definitions import DEFAULT_JOBS
    from jobs.runner import JobRunner
    from recsys.store import store_from_settings

    s = load_settings(store, artifacts)  # type: ignore[arg-type]
    run = JobRunner(s, store_from_settings(s), DEFAULT_JOBS).run(job)
    render.job_run(f"recsys {job}", run)
    if run is None or run.status != "ok":
        raise typer.Exit(code=1)


@app.command()
def ingest(store: StoreOpt = None, artifacts: ArtifactsOpt = None) -> None:
    """Drain the event and impression logs into the lake (RECSYS_LAKE_DIR), exactly once; apply forget
    requests and retention. Runs under the scheduler's ingest lock."""
    _run("ingest", store, artifacts)


@app.command()
def update(store: StoreOpt = None, artifacts: ArtifactsOpt = None) -> None:
    """Ingest, then fold every user's new events into the serving version's candidates (fixed item factors)."""
    _run("update", store, artifacts)


@users_app.command("forget")
def forget(user_id: Annotated[str, typer.Argument(help="The user id to forget")], store: StoreOpt = None) -> None:
    """Delete a user's session, candidates, history and waiting log entries now; the lake follows at the
    next ingest."""
    from recsys.events.forget import forget_user
    from recsys.store import store_from_settings

    result = forget_user(store_from_settings(load_settings(store)), user_id)
    render.forgotten(user_id, result.log_entries_deleted, result.feature_rows_deleted)
